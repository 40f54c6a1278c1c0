package sessprom_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	sessprom "github.com/sesscache/sesscache/adapters/prometheus"
	"github.com/sesscache/sesscache/engine"
)

// scraper serves a fresh registry holding a Collector and a Recorder over
// one engine, as a program's /metrics would.
type scraper struct {
	t   *testing.T
	srv *httptest.Server
}

func serve(t *testing.T, cs ...prometheus.Collector) *scraper {
	t.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatalf("Register: %v", err)
		}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	t.Cleanup(srv.Close)
	return &scraper{t: t, srv: srv}
}

// scrape fetches the text exposition and parses it as Prometheus would.
func (s *scraper) scrape() families {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.srv.URL, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatalf("scrape: %v", err)
	}
	return families{s.t, fams}
}

type families struct {
	t    *testing.T
	fams map[string]*dto.MetricFamily
}

// metric returns the series of family name whose labels include labels
// (name, value, name, value...), failing the test if there is none.
func (f families) metric(name string, labels ...string) *dto.Metric {
	f.t.Helper()
	fam, ok := f.fams[name]
	if !ok {
		f.t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return m
	}
	f.t.Fatalf("no series %s%v", name, labels)
	return nil
}

// value returns a counter's or gauge's value.
func (f families) value(name string, labels ...string) float64 {
	f.t.Helper()
	m := f.metric(name, labels...)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	f.t.Fatalf("%s is neither counter nor gauge", name)
	return 0
}

// hist returns a histogram's sample count and sum.
func (f families) hist(name string, labels ...string) (uint64, float64) {
	f.t.Helper()
	h := f.metric(name, labels...).GetHistogram()
	if h == nil {
		f.t.Fatalf("%s is not a histogram", name)
	}
	return h.GetSampleCount(), h.GetSampleSum()
}

func (f families) has(name string) bool {
	_, ok := f.fams[name]
	return ok
}

// expect checks counters and gauges against want.
func (f families) expect(want map[string]float64) {
	f.t.Helper()
	for key, v := range want {
		name, labels := key, []string(nil)
		if i := strings.IndexByte(key, '{'); i >= 0 {
			name = key[:i]
			for _, kv := range strings.Split(strings.TrimSuffix(key[i+1:], "}"), ",") {
				k, val, _ := strings.Cut(kv, "=")
				labels = append(labels, k, val)
			}
		}
		if got := f.value(name, labels...); got != v {
			f.t.Errorf("%s = %g, want %g", key, got, v)
		}
	}
}

func open(t *testing.T, o engine.Options) *engine.Engine {
	t.Helper()
	e, err := engine.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestCollectorCountsWhatTheEngineDid(t *testing.T) {
	rec := sessprom.NewRecorder(sessprom.Options{})
	e := open(t, engine.Options{Recorder: rec})
	s := serve(t, sessprom.NewCollector(e, sessprom.Options{}), rec)
	ctx := context.Background()

	alice, err := e.Create(ctx, engine.CreateOptions{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	bound, err := e.Create(ctx, engine.CreateOptions{Fingerprint: []byte("ua-1")})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.Get(alice.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Get(e.NewID()); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v", err)
	}
	f := s.scrape()
	f.expect(map[string]float64{
		"sesscache_hits_total":                          3,
		"sesscache_misses_total":                        1,
		"sesscache_sessions_created_total":              2,
		"sesscache_sessions":                            2,
		"sesscache_anonymous_sessions":                  1,
		"sesscache_binding_mismatches_total":            0,
		"sesscache_sessions_ended_total{cause=deleted}": 0,
	})
	if n, _ := f.hist("sesscache_write_duration_seconds", "op", "create"); n != 2 {
		t.Errorf("write_duration_seconds{op=create} count %d, want 2", n)
	}
	// An in-memory engine has no log: its metrics are left out, not zero.
	for _, name := range []string{"sesscache_log_records_total", "sesscache_last_snapshot_age_seconds", "sesscache_last_recovery_sessions"} {
		if f.has(name) {
			t.Errorf("in-memory engine exports %s", name)
		}
	}

	if _, err := e.GetBound(bound.ID(), []byte("ua-2")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("GetBound(other fingerprint) = %v", err)
	}
	alice, err = e.Update(ctx, alice.ID(), 0, func(engine.Session) ([]byte, error) { return []byte("x"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err = e.Rotate(ctx, alice.ID()); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(ctx, bound.ID()); err != nil {
		t.Fatal(err)
	}
	if n, err := e.RevokeUser(ctx, "alice"); n != 1 || err != nil {
		t.Fatalf("RevokeUser = %d, %v", n, err)
	}
	// The same Collector, scraped again, reads the engine afresh.
	f = s.scrape()
	f.expect(map[string]float64{
		"sesscache_hits_total":                          3,
		"sesscache_misses_total":                        2,
		"sesscache_binding_mismatches_total":            1,
		"sesscache_updates_total":                       1,
		"sesscache_rotations_total":                     1,
		"sesscache_sessions_ended_total{cause=deleted}": 1,
		"sesscache_sessions_ended_total{cause=revoked}": 1,
		"sesscache_sessions_ended_total{cause=evicted}": 0,
		"sesscache_sessions_ended_total{cause=expired}": 0,
		"sesscache_sessions":                            0,
		"sesscache_anonymous_sessions":                  0,
	})
	for op, want := range map[string]uint64{"create": 2, "update": 1, "rotate": 1, "delete": 1, "revoke": 1} {
		if n, sum := f.hist("sesscache_write_duration_seconds", "op", op); n != want || sum <= 0 {
			t.Errorf("write_duration_seconds{op=%s}: count %d sum %g, want %d and a positive sum", op, n, sum, want)
		}
	}
	if f.has("sesscache_write_errors_total") {
		t.Errorf("write errors reported, none happened: %v", f.fams["sesscache_write_errors_total"])
	}
}

func TestPersistentEngine(t *testing.T) {
	dir := t.TempDir()
	rec := sessprom.NewRecorder(sessprom.Options{})
	e, err := engine.Open(engine.Options{Dir: dir, Sync: engine.SyncAlways, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, sessprom.NewCollector(e, sessprom.Options{}), rec)
	ctx := context.Background()
	if _, err := e.Create(ctx, engine.CreateOptions{UserID: "alice", Data: []byte("theme=dark")}); err != nil {
		t.Fatal(err)
	}

	f := s.scrape()
	// SyncAlways: Create returned once an fsync covered its record, and the
	// engine reports an fsync before it releases the writers it covers.
	if n, sum := f.hist("sesscache_log_fsync_duration_seconds"); n == 0 || sum <= 0 {
		t.Errorf("log_fsync_duration_seconds: count %d sum %g, want an fsync", n, sum)
	}
	if n, sum := f.hist("sesscache_log_write_records"); n == 0 || sum < 1 {
		t.Errorf("log_write_records: count %d sum %g, want the Create's record", n, sum)
	}
	// One ObserveLogWrite feeds both histograms. (Its byte count is not
	// checked: a memory-mapped log reports its batches with 0 bytes.)
	nr, _ := f.hist("sesscache_log_write_records")
	if nb, _ := f.hist("sesscache_log_write_bytes"); nb != nr {
		t.Errorf("log_write_bytes count %d, log_write_records count %d", nb, nr)
	}
	st := e.Stats()
	f.expect(map[string]float64{
		"sesscache_log_records_total":     float64(st.Log.Records),
		"sesscache_log_writes_total":      float64(st.Log.Writes),
		"sesscache_log_fsyncs_total":      float64(st.Log.Fsyncs),
		"sesscache_log_bytes_total":       float64(st.Log.BytesAppended),
		"sesscache_log_records_per_fsync": st.Log.RecordsPerFsync(),
		"sesscache_log_disk_bytes":        float64(st.Log.DiskBytes),
		"sesscache_log_segments":          float64(st.Log.Segments),
		"sesscache_log_failed":            0,
		"sesscache_log_unsynced_records":  0,
	})
	if st.Log.Records == 0 || st.Log.Fsyncs == 0 || f.value("sesscache_log_records_per_fsync") <= 0 {
		t.Errorf("log: %+v", st.Log)
	}
	if f.has("sesscache_last_snapshot_age_seconds") {
		t.Error("snapshot age exported before any snapshot")
	}

	snap, err := e.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f = s.scrape()
	if n, _ := f.hist("sesscache_snapshot_duration_seconds"); n != 1 {
		t.Errorf("snapshot_duration_seconds count %d, want 1", n)
	}
	if n, sum := f.hist("sesscache_snapshot_size_bytes"); n != 1 || sum != float64(snap.Bytes) {
		t.Errorf("snapshot_size_bytes: count %d sum %g, want 1 of %d", n, sum, snap.Bytes)
	}
	f.expect(map[string]float64{
		"sesscache_last_snapshot_bytes":            float64(snap.Bytes),
		"sesscache_last_snapshot_sessions":         1,
		"sesscache_last_snapshot_duration_seconds": snap.Duration.Seconds(),
		"sesscache_snapshot_errors_total":          0,
	})
	if age := f.value("sesscache_last_snapshot_age_seconds"); age < 0 || age > 3600 {
		t.Errorf("last_snapshot_age_seconds = %g", age)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: the recovery is observed once and described by Stats.
	rec2 := sessprom.NewRecorder(sessprom.Options{})
	e2 := open(t, engine.Options{Dir: dir, Recorder: rec2})
	f = serve(t, sessprom.NewCollector(e2, sessprom.Options{}), rec2).scrape()
	if n, sum := f.hist("sesscache_recovery_duration_seconds"); n != 1 || sum != e2.Stats().Recovery.Duration.Seconds() {
		t.Errorf("recovery_duration_seconds: count %d sum %g, want 1 of %v", n, sum, e2.Stats().Recovery.Duration)
	}
	f.expect(map[string]float64{
		"sesscache_last_recovery_sessions":         1,
		"sesscache_last_recovery_duration_seconds": e2.Stats().Recovery.Duration.Seconds(),
		"sesscache_sessions":                       1,
	})
}

func TestRecorderSamplesGets(t *testing.T) {
	rec := sessprom.NewRecorder(sessprom.Options{})
	e := open(t, engine.Options{Recorder: rec})
	s := serve(t, sessprom.NewCollector(e, sessprom.Options{}), rec)
	sess, err := e.Create(context.Background(), engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// One lookup in GetSampleEvery is timed, at random; with this many,
	// seeing none of either kind has a probability below e^-100.
	const n = 100 * engine.GetSampleEvery
	missing := e.NewID()
	for range n {
		e.Get(sess.ID())
		e.Get(missing)
	}
	f := s.scrape()
	for _, result := range []string{"hit", "miss"} {
		if c, _ := f.hist("sesscache_get_duration_seconds", "result", result); c == 0 || c >= n {
			t.Errorf("get_duration_seconds{result=%s} count %d of %d lookups: want a sample", result, c, n)
		}
	}
	f.expect(map[string]float64{"sesscache_hits_total": n, "sesscache_misses_total": n})
}

func TestRecorderErrorsAndEvictions(t *testing.T) {
	rec := sessprom.NewRecorder(sessprom.Options{})
	e := open(t, engine.Options{Recorder: rec, MaxAnonymousSessions: 1, MaxDataSize: 8})
	s := serve(t, sessprom.NewCollector(e, sessprom.Options{}), rec)
	ctx := context.Background()
	for range 3 {
		if _, err := e.Create(ctx, engine.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Create(ctx, engine.CreateOptions{Data: make([]byte, 9)}); !errors.Is(err, engine.ErrTooLarge) {
		t.Fatalf("Create(9 bytes) = %v", err)
	}
	if _, err := e.Update(ctx, e.NewID(), 0, func(engine.Session) ([]byte, error) { return nil, nil }); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Update(unknown) = %v", err)
	}
	f := s.scrape()
	f.expect(map[string]float64{
		"sesscache_evictions_total":                               2,
		"sesscache_sessions_ended_total{cause=evicted}":           2,
		"sesscache_write_errors_total{op=create,error=too_large}": 1,
		"sesscache_write_errors_total{op=update,error=not_found}": 1,
		"sesscache_anonymous_sessions":                            1,
	})
	if n, _ := f.hist("sesscache_write_duration_seconds", "op", "create"); n != 4 {
		t.Errorf("write_duration_seconds{op=create} count %d, want 4, the failed one included", n)
	}
}

func TestTwoEnginesInOneRegistry(t *testing.T) {
	var cs []prometheus.Collector
	var engines []*engine.Engine
	for _, name := range []string{"web", "api"} {
		o := sessprom.Options{Namespace: "app_sessions", ConstLabels: prometheus.Labels{"store": name}}
		rec := sessprom.NewRecorder(o)
		e := open(t, engine.Options{Recorder: rec})
		cs = append(cs, rec, sessprom.NewCollector(e, o))
		engines = append(engines, e)
	}
	s := serve(t, cs...)
	if _, err := engines[1].Create(context.Background(), engine.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := s.scrape()
	f.expect(map[string]float64{
		"app_sessions_sessions_created_total{store=web}": 0,
		"app_sessions_sessions_created_total{store=api}": 1,
	})
	if f.has("sesscache_sessions") {
		t.Error("Namespace ignored")
	}
}

// TestLint runs client_golang's metric linter (names, units, help) over
// both collectors.
func TestLint(t *testing.T) {
	rec := sessprom.NewRecorder(sessprom.Options{})
	e := open(t, engine.Options{Dir: t.TempDir(), Recorder: rec})
	if _, err := e.Create(context.Background(), engine.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []prometheus.Collector{rec, sessprom.NewCollector(e, sessprom.Options{})} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// TestDescribeCoversCollect: a registry checks that what Collect sends was
// described; a pedantic one also checks consistency.
func TestDescribeCoversCollect(t *testing.T) {
	rec := sessprom.NewRecorder(sessprom.Options{})
	e := open(t, engine.Options{Dir: t.TempDir(), Recorder: rec})
	if _, err := e.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(rec, sessprom.NewCollector(e, sessprom.Options{}))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) < 30 {
		t.Fatalf("gathered %d families", len(fams))
	}
}

func TestErrorKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{engine.ErrNotFound, "not_found"},
		{engine.ErrExpired, "expired"},
		{engine.ErrRotated, "rotated"},
		{fmt.Errorf("wrapped: %w", engine.ErrVersionConflict), "version_conflict"},
		{engine.ErrFull, "full"},
		{engine.ErrTooLarge, "too_large"},
		{engine.ErrMalformedToken, "malformed_token"},
		{engine.ErrInvalid, "invalid"},
		{fmt.Errorf("%w: %w", engine.ErrReadOnly, errors.New("no space")), "read_only"},
		{engine.ErrClosed, "closed"},
		{context.Canceled, "canceled"},
		{context.DeadlineExceeded, "deadline_exceeded"},
		{errors.New("from an Update function"), "other"},
	} {
		if got := sessprom.ErrorKind(c.err); got != c.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestScrapeAfterClose: a program that closes its engine while its
// /metrics is still served (during shutdown) must not fail the scrape.
func TestScrapeAfterClose(t *testing.T) {
	rec := sessprom.NewRecorder(sessprom.Options{})
	e, err := engine.Open(engine.Options{Dir: t.TempDir(), Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, sessprom.NewCollector(e, sessprom.Options{}), rec)
	if _, err := e.Create(context.Background(), engine.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	f := s.scrape()
	f.expect(map[string]float64{"sesscache_sessions_created_total": 1})
}
