package sessotel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	sessotel "github.com/sesscache/sesscache/adapters/otel"
	"github.com/sesscache/sesscache/engine"
)

// harness is an in-memory SDK pipeline: a MeterProvider whose only reader
// is a ManualReader, collected on demand.
type harness struct {
	t      *testing.T
	reader *sdkmetric.ManualReader
	opts   sessotel.Options
}

func newHarness(t *testing.T, attrs ...attribute.KeyValue) *harness {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return &harness{t: t, reader: reader, opts: sessotel.Options{MeterProvider: mp, Attributes: attrs}}
}

// open opens an engine with a Recorder and observes it, both from h's
// provider.
func (h *harness) open(o engine.Options) *engine.Engine {
	h.t.Helper()
	rec, err := sessotel.NewRecorder(h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	o.Recorder = rec
	e, err := engine.Open(o)
	if err != nil {
		h.t.Fatal(err)
	}
	reg, err := sessotel.Observe(e, h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		if err := reg.Unregister(); err != nil {
			h.t.Error(err)
		}
		e.Close()
	})
	return e
}

func (h *harness) collect() points {
	h.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		h.t.Fatal(err)
	}
	p := points{t: h.t, m: map[string]metricdata.Metrics{}}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != sessotel.ScopeName {
			h.t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			p.m[m.Name] = m
		}
	}
	return p
}

type points struct {
	t *testing.T
	m map[string]metricdata.Metrics
}

func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func (p points) get(name string) metricdata.Metrics {
	p.t.Helper()
	m, ok := p.m[name]
	if !ok {
		p.t.Fatalf("no metric %s", name)
	}
	return m
}

// int returns the value of an integer sum's point with attrs.
func (p points) int(name string, attrs ...attribute.KeyValue) int64 {
	p.t.Helper()
	s, ok := p.get(name).Data.(metricdata.Sum[int64])
	if !ok {
		p.t.Fatalf("%s is %T, not an int64 sum", name, p.get(name).Data)
	}
	for _, dp := range s.DataPoints {
		if matches(dp.Attributes, attrs) {
			return dp.Value
		}
	}
	p.t.Fatalf("%s has no point %v", name, attrs)
	return 0
}

// float returns the value of a float gauge's point.
func (p points) float(name string) float64 {
	p.t.Helper()
	g, ok := p.get(name).Data.(metricdata.Gauge[float64])
	if !ok || len(g.DataPoints) != 1 {
		p.t.Fatalf("%s is %+v, want one float64 gauge point", name, p.get(name).Data)
	}
	return g.DataPoints[0].Value
}

// hist returns the count and sum of a histogram's point with attrs.
func (p points) hist(name string, attrs ...attribute.KeyValue) (uint64, float64) {
	p.t.Helper()
	switch h := p.get(name).Data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range h.DataPoints {
			if matches(dp.Attributes, attrs) {
				return dp.Count, dp.Sum
			}
		}
	case metricdata.Histogram[int64]:
		for _, dp := range h.DataPoints {
			if matches(dp.Attributes, attrs) {
				return dp.Count, float64(dp.Sum)
			}
		}
	default:
		p.t.Fatalf("%s is %T, not a histogram", name, h)
	}
	p.t.Fatalf("%s has no point %v", name, attrs)
	return 0, 0
}

func (p points) has(name string) bool {
	_, ok := p.m[name]
	return ok
}

func str(k, v string) attribute.KeyValue { return attribute.String(k, v) }

func TestObserveCountsWhatTheEngineDid(t *testing.T) {
	h := newHarness(t)
	e := h.open(engine.Options{})
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
	p := h.collect()
	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"sesscache.lookups", []attribute.KeyValue{str("result", "hit")}, 3},
		{"sesscache.lookups", []attribute.KeyValue{str("result", "miss")}, 1},
		{"sesscache.session.created", nil, 2},
		{"sesscache.session.live", nil, 2},
		{"sesscache.session.anonymous", nil, 1},
		{"sesscache.binding_mismatches", nil, 0},
	} {
		if got := p.int(c.name, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.attrs, got, c.want)
		}
	}
	if n, _ := p.hist("sesscache.write.duration", str("op", "create")); n != 2 {
		t.Errorf("write.duration{op=create} count %d, want 2", n)
	}
	// An in-memory engine has no log: its instruments report nothing.
	for _, name := range []string{"sesscache.log.records", "sesscache.snapshot.last.age", "sesscache.recovery.last.sessions"} {
		if p.has(name) {
			t.Errorf("in-memory engine reports %s", name)
		}
	}

	if _, err := e.GetBound(bound.ID(), []byte("ua-2")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("GetBound(other fingerprint) = %v", err)
	}
	alice, err = e.Update(ctx, alice.ID(), 0, func(engine.Session) ([]byte, error) { return []byte("x"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Rotate(ctx, alice.ID()); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(ctx, bound.ID()); err != nil {
		t.Fatal(err)
	}
	if n, err := e.RevokeUser(ctx, "alice"); n != 1 || err != nil {
		t.Fatalf("RevokeUser = %d, %v", n, err)
	}
	p = h.collect()
	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"sesscache.lookups", []attribute.KeyValue{str("result", "miss")}, 2},
		{"sesscache.binding_mismatches", nil, 1},
		{"sesscache.session.updates", nil, 1},
		{"sesscache.session.rotations", nil, 1},
		{"sesscache.session.ended", []attribute.KeyValue{str("cause", "deleted")}, 1},
		{"sesscache.session.ended", []attribute.KeyValue{str("cause", "revoked")}, 1},
		{"sesscache.session.ended", []attribute.KeyValue{str("cause", "evicted")}, 0},
		{"sesscache.session.ended", []attribute.KeyValue{str("cause", "expired")}, 0},
		{"sesscache.session.live", nil, 0},
	} {
		if got := p.int(c.name, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.attrs, got, c.want)
		}
	}
	for op, want := range map[string]uint64{"create": 2, "update": 1, "rotate": 1, "delete": 1, "revoke": 1} {
		if n, sum := p.hist("sesscache.write.duration", str("op", op)); n != want || sum <= 0 {
			t.Errorf("write.duration{op=%s}: count %d sum %g, want %d and a positive sum", op, n, sum, want)
		}
	}
}

func TestPersistentEngine(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t)
	e := h.open(engine.Options{Dir: dir, Sync: engine.SyncAlways})
	ctx := context.Background()
	if _, err := e.Create(ctx, engine.CreateOptions{UserID: "alice", Data: []byte("theme=dark")}); err != nil {
		t.Fatal(err)
	}
	p := h.collect()
	// SyncAlways: Create returned once an fsync covered its record, and the
	// engine reports an fsync before it releases the writers it covers.
	if n, sum := p.hist("sesscache.log.fsync.duration"); n == 0 || sum <= 0 {
		t.Errorf("log.fsync.duration: count %d sum %g, want an fsync", n, sum)
	}
	if n, sum := p.hist("sesscache.log.write.records"); n == 0 || sum < 1 {
		t.Errorf("log.write.records: count %d sum %g, want the Create's record", n, sum)
	}
	st := e.Stats()
	if st.Log.Records == 0 || st.Log.Fsyncs == 0 {
		t.Fatalf("log: %+v", st.Log)
	}
	for name, want := range map[string]int64{
		"sesscache.log.records":    int64(st.Log.Records),
		"sesscache.log.appended":   int64(st.Log.BytesAppended),
		"sesscache.log.writes":     int64(st.Log.Writes),
		"sesscache.log.fsyncs":     int64(st.Log.Fsyncs),
		"sesscache.log.segments":   int64(st.Log.Segments),
		"sesscache.log.disk.usage": st.Log.DiskBytes,
		"sesscache.log.unsynced":   0,
	} {
		if got := p.int(name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if got := p.float("sesscache.log.records_per_fsync"); got != st.Log.RecordsPerFsync() || got <= 0 {
		t.Errorf("log.records_per_fsync = %g, want %g", got, st.Log.RecordsPerFsync())
	}
	if got := p.float("sesscache.log.failed"); got != 0 {
		t.Errorf("log.failed = %g", got)
	}
	if p.has("sesscache.snapshot.last.age") {
		t.Error("snapshot age reported before any snapshot")
	}

	snap, err := e.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p = h.collect()
	if n, _ := p.hist("sesscache.snapshot.duration"); n != 1 {
		t.Errorf("snapshot.duration count %d, want 1", n)
	}
	if n, sum := p.hist("sesscache.snapshot.size"); n != 1 || sum != float64(snap.Bytes) {
		t.Errorf("snapshot.size: count %d sum %g, want 1 of %d", n, sum, snap.Bytes)
	}
	if got := p.float("sesscache.snapshot.last.size"); got != float64(snap.Bytes) {
		t.Errorf("snapshot.last.size = %g, want %d", got, snap.Bytes)
	}
	if got := p.float("sesscache.snapshot.last.sessions"); got != 1 {
		t.Errorf("snapshot.last.sessions = %g, want 1", got)
	}
	if age := p.float("sesscache.snapshot.last.age"); age < 0 || age > 3600 {
		t.Errorf("snapshot.last.age = %g", age)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen under a fresh pipeline: one recovery, described by Stats.
	h2 := newHarness(t)
	e2 := h2.open(engine.Options{Dir: dir})
	p = h2.collect()
	d := e2.Stats().Recovery.Duration.Seconds()
	if n, sum := p.hist("sesscache.recovery.duration"); n != 1 || sum != d {
		t.Errorf("recovery.duration: count %d sum %g, want 1 of %g", n, sum, d)
	}
	if got := p.float("sesscache.recovery.last.duration"); got != d {
		t.Errorf("recovery.last.duration = %g, want %g", got, d)
	}
	if got := p.float("sesscache.recovery.last.sessions"); got != 1 {
		t.Errorf("recovery.last.sessions = %g, want 1", got)
	}
}

func TestRecorderSamplesGets(t *testing.T) {
	h := newHarness(t)
	e := h.open(engine.Options{})
	s, err := e.Create(context.Background(), engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// One lookup in GetSampleEvery is timed, at random; with this many,
	// seeing none of either kind has a probability below e^-100.
	const n = 100 * engine.GetSampleEvery
	missing := e.NewID()
	for range n {
		e.Get(s.ID())
		e.Get(missing)
	}
	p := h.collect()
	for _, result := range []string{"hit", "miss"} {
		if c, _ := p.hist("sesscache.get.duration", str("result", result)); c == 0 || c >= n {
			t.Errorf("get.duration{result=%s} count %d of %d lookups: want a sample", result, c, n)
		}
		if got := p.int("sesscache.lookups", str("result", result)); got != n {
			t.Errorf("lookups{result=%s} = %d, want %d", result, got, n)
		}
	}
}

func TestRecorderErrorsAndEvictions(t *testing.T) {
	h := newHarness(t, attribute.String("sesscache.store", "web"))
	e := h.open(engine.Options{MaxAnonymousSessions: 1, MaxDataSize: 8})
	ctx := context.Background()
	for range 3 {
		if _, err := e.Create(ctx, engine.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Create(ctx, engine.CreateOptions{Data: make([]byte, 9)}); !errors.Is(err, engine.ErrTooLarge) {
		t.Fatalf("Create(9 bytes) = %v", err)
	}
	p := h.collect()
	web := str("sesscache.store", "web")
	if got := p.int("sesscache.evictions", web); got != 2 {
		t.Errorf("evictions = %d, want 2", got)
	}
	if got := p.int("sesscache.session.ended", web, str("cause", "evicted")); got != 2 {
		t.Errorf("session.ended{cause=evicted} = %d, want 2", got)
	}
	if n, _ := p.hist("sesscache.write.duration", web, str("op", "create"), str("error.type", "too_large")); n != 1 {
		t.Errorf("write.duration{op=create,error.type=too_large} count %d, want 1", n)
	}
	// The successful creates carry no error.type.
	wd := p.get("sesscache.write.duration").Data.(metricdata.Histogram[float64])
	var ok uint64
	for _, dp := range wd.DataPoints {
		if _, failed := dp.Attributes.Value("error.type"); !failed {
			ok += dp.Count
		}
		if v, _ := dp.Attributes.Value("sesscache.store"); v.AsString() != "web" {
			t.Errorf("point without Options.Attributes: %v", dp.Attributes)
		}
	}
	if ok != 3 {
		t.Errorf("%d successful writes recorded, want 3", ok)
	}
}

func TestUnregisterStopsObserving(t *testing.T) {
	h := newHarness(t)
	e, err := engine.Open(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	reg, err := sessotel.Observe(e, h.opts)
	if err != nil {
		t.Fatal(err)
	}
	if !h.collect().has("sesscache.lookups") {
		t.Fatal("no lookups before Unregister")
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if h.collect().has("sesscache.lookups") {
		t.Fatal("lookups still observed after Unregister")
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
		if got := sessotel.ErrorKind(c.err); got != c.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
