package expvarstats_test

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sesscache/sesscache/adapters/expvarstats"
	"github.com/sesscache/sesscache/engine"
)

// hist is a histogram as the Recorder's JSON shows it.
type hist struct {
	Count   uint64            `json:"count"`
	Sum     float64           `json:"sum"`
	Buckets map[string]uint64 `json:"buckets"`
}

// published is what Publish puts under its name.
type published struct {
	Stats    engine.Stats `json:"stats"`
	Recorder struct {
		GetSeconds        map[string]hist              `json:"get_seconds"`
		WriteSeconds      map[string]hist              `json:"write_seconds"`
		WriteErrors       map[string]map[string]uint64 `json:"write_errors"`
		LogWriteRecords   hist                         `json:"log_write_records"`
		LogWriteBytes     hist                         `json:"log_write_bytes"`
		FsyncSeconds      hist                         `json:"fsync_seconds"`
		SnapshotSeconds   hist                         `json:"snapshot_seconds"`
		SnapshotBytes     hist                         `json:"snapshot_bytes"`
		SnapshotErrors    uint64                       `json:"snapshot_errors"`
		RecoverySeconds   hist                         `json:"recovery_seconds"`
		RecoveredSessions int                          `json:"recovered_sessions"`
		Evictions         uint64                       `json:"evictions"`
	} `json:"recorder"`
}

// scrape fetches /debug/vars from a server running expvar.Handler, as a
// monitoring agent would, and decodes the variable name.
func scrape(t *testing.T, srv *httptest.Server, name string) published {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var all map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatalf("/debug/vars is not JSON: %v", err)
	}
	raw, ok := all[name]
	if !ok {
		t.Fatalf("%q not published", name)
	}
	var p published
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("%s: %v in %s", name, err, raw)
	}
	return p
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

func TestPublishReadsStatsOnEveryScrape(t *testing.T) {
	rec := expvarstats.NewRecorder()
	e := open(t, engine.Options{Recorder: rec})
	expvarstats.Publish("sesscache_test_memory", e, rec)
	srv := httptest.NewServer(expvar.Handler())
	defer srv.Close()
	ctx := context.Background()

	s, err := e.Create(ctx, engine.CreateOptions{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.Get(s.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Get(e.NewID()); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v", err)
	}
	p := scrape(t, srv, "sesscache_test_memory")
	if st := p.Stats; st.Hits != 3 || st.Misses != 1 || st.Created != 1 || st.Live != 1 || st.Anonymous != 0 {
		t.Fatalf("stats: hits %d misses %d created %d live %d anonymous %d, want 3 1 1 1 0",
			st.Hits, st.Misses, st.Created, st.Live, st.Anonymous)
	}
	if got := p.Recorder.WriteSeconds["create"].Count; got != 1 {
		t.Errorf("write_seconds.create count %d, want 1", got)
	}

	// The same variable, scraped after more activity, shows it: Stats is
	// read at scrape time, not at Publish.
	if err := e.Delete(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	p = scrape(t, srv, "sesscache_test_memory")
	if st := p.Stats; st.Deleted != 1 || st.Live != 0 {
		t.Fatalf("after Delete: deleted %d live %d, want 1 0", st.Deleted, st.Live)
	}
	if got := p.Recorder.WriteSeconds["delete"].Count; got != 1 {
		t.Errorf("write_seconds.delete count %d, want 1", got)
	}
	// Every op is there from the start, at zero.
	for _, op := range []string{"create", "update", "delete", "rotate", "revoke"} {
		if _, ok := p.Recorder.WriteSeconds[op]; !ok {
			t.Errorf("write_seconds has no %q", op)
		}
	}
	if h := p.Recorder.WriteSeconds["rotate"]; h.Count != 0 || h.Buckets["+Inf"] != 0 {
		t.Errorf("write_seconds.rotate = %+v, want empty", h)
	}
}

func TestPublishWithoutRecorder(t *testing.T) {
	e := open(t, engine.Options{})
	m := expvarstats.Publish("sesscache_test_norecorder", e, nil)
	if m.Get("recorder") != nil {
		t.Fatal("a nil Recorder was published")
	}
	if _, err := e.Get(e.NewID()); err == nil {
		t.Fatal("Get(unknown) found a session")
	}
	var st engine.Stats
	if err := json.Unmarshal([]byte(m.Get("stats").String()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Misses != 1 {
		t.Fatalf("misses %d, want 1", st.Misses)
	}
}

func TestPublishAgainRepoints(t *testing.T) {
	first := open(t, engine.Options{})
	m := expvarstats.Publish("sesscache_test_again", first, expvarstats.NewRecorder())
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// The program reopens its engine and publishes it under the same name.
	second := open(t, engine.Options{})
	if _, err := second.Create(context.Background(), engine.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if m2 := expvarstats.Publish("sesscache_test_again", second, nil); m2 != m || expvar.Get("sesscache_test_again") != m {
		t.Fatal("publishing again made a second map")
	}
	var st engine.Stats
	if err := json.Unmarshal([]byte(m.Get("stats").String()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Created != 1 || m.Get("recorder") != nil {
		t.Fatalf("after publishing again: created %d, recorder %v; want the second engine's 1 and none", st.Created, m.Get("recorder"))
	}
}

func TestPublishOverOthersNamePanics(t *testing.T) {
	if expvar.Get("sesscache_test_taken") == nil {
		expvar.NewInt("sesscache_test_taken")
	}
	e := open(t, engine.Options{})
	defer func() {
		if recover() == nil {
			t.Fatal("publishing over a name expvar.NewInt took did not panic")
		}
	}()
	expvarstats.Publish("sesscache_test_taken", e, nil)
}

func TestRecorderPersistent(t *testing.T) {
	dir := t.TempDir()
	rec := expvarstats.NewRecorder()
	e, err := engine.Open(engine.Options{Dir: dir, Sync: engine.SyncAlways, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for range 3 {
		s, err := e.Create(ctx, engine.CreateOptions{Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID())
	}
	if _, err := e.Update(ctx, e.NewID(), 0, func(engine.Session) ([]byte, error) { return nil, nil }); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Update(unknown) = %v", err)
	}
	snap, err := e.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got published
	if err := json.Unmarshal([]byte(rec.String()), &got.Recorder); err != nil {
		t.Fatalf("Recorder.String is not JSON: %v", err)
	}
	r := got.Recorder
	// SyncAlways: each Create returned only after an fsync covered it, and
	// the engine reports the fsync before releasing the writer.
	if r.FsyncSeconds.Count == 0 || r.FsyncSeconds.Sum <= 0 {
		t.Errorf("fsync_seconds = %+v, want observations", r.FsyncSeconds)
	}
	if r.LogWriteRecords.Count == 0 || r.LogWriteRecords.Sum < 3 {
		t.Errorf("log_write_records = %+v, want at least the 3 creates", r.LogWriteRecords)
	}
	if r.LogWriteBytes.Count != r.LogWriteRecords.Count {
		t.Errorf("log_write_bytes count %d, log_write_records count %d", r.LogWriteBytes.Count, r.LogWriteRecords.Count)
	}
	if h := r.WriteSeconds["create"]; h.Count != 3 || h.Buckets["+Inf"] != 3 {
		t.Errorf("write_seconds.create = %+v, want 3", h)
	}
	if n := r.WriteErrors["update"]["not_found"]; n != 1 {
		t.Errorf("write_errors.update = %v, want not_found: 1", r.WriteErrors["update"])
	}
	if r.SnapshotSeconds.Count != 1 || r.SnapshotBytes.Count != 1 || r.SnapshotBytes.Sum != float64(snap.Bytes) {
		t.Errorf("snapshot: seconds %+v bytes %+v, want one of %d bytes", r.SnapshotSeconds, r.SnapshotBytes, snap.Bytes)
	}
	if r.SnapshotErrors != 0 {
		t.Errorf("snapshot_errors %d", r.SnapshotErrors)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening recovers the three sessions and reports it.
	rec2 := expvarstats.NewRecorder()
	e2 := open(t, engine.Options{Dir: dir, Recorder: rec2})
	var got2 published
	if err := json.Unmarshal([]byte(rec2.String()), &got2.Recorder); err != nil {
		t.Fatal(err)
	}
	if r := got2.Recorder; r.RecoverySeconds.Count != 1 || r.RecoveredSessions != len(ids) {
		t.Errorf("recovery_seconds %+v recovered_sessions %d, want one recovery of %d", r.RecoverySeconds, r.RecoveredSessions, len(ids))
	}
	if e2.Stats().Recovery.Sessions != len(ids) {
		t.Errorf("Stats.Recovery.Sessions = %d", e2.Stats().Recovery.Sessions)
	}
}

func TestRecorderGetIsSampled(t *testing.T) {
	rec := expvarstats.NewRecorder()
	e := open(t, engine.Options{Recorder: rec})
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
	var r struct {
		Get map[string]hist `json:"get_seconds"`
	}
	if err := json.Unmarshal([]byte(rec.String()), &r); err != nil {
		t.Fatal(err)
	}
	hit, miss := r.Get["hit"], r.Get["miss"]
	if hit.Count == 0 || hit.Count >= n || miss.Count == 0 || miss.Count >= n {
		t.Fatalf("get_seconds hit %d miss %d of %d each: want a sample of each", hit.Count, miss.Count, n)
	}
	if hit.Buckets["+Inf"] != hit.Count {
		t.Errorf("+Inf bucket %d, count %d", hit.Buckets["+Inf"], hit.Count)
	}
}

func TestRecorderEvictions(t *testing.T) {
	rec := expvarstats.NewRecorder()
	e := open(t, engine.Options{Recorder: rec, MaxAnonymousSessions: 1})
	for range 3 {
		if _, err := e.Create(context.Background(), engine.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var r struct {
		Evictions uint64 `json:"evictions"`
	}
	if err := json.Unmarshal([]byte(rec.String()), &r); err != nil {
		t.Fatal(err)
	}
	if r.Evictions != 2 || e.Stats().Evicted != 2 {
		t.Fatalf("evictions %d, Stats.Evicted %d, want 2", r.Evictions, e.Stats().Evicted)
	}
}

// TestHistogramBuckets drives the Recorder directly, with values on and
// around the bucket bounds, and checks the cumulative counts and the sum.
func TestHistogramBuckets(t *testing.T) {
	rec := expvarstats.NewRecorder()
	for _, n := range []uint64{1, 2, 3, 5000} {
		rec.ObserveLogWrite(n, 100)
	}
	var r struct {
		Records hist `json:"log_write_records"`
	}
	if err := json.Unmarshal([]byte(rec.String()), &r); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"1": 1, "2": 2, "4": 3, "4096": 3, "+Inf": 4}
	for le, n := range want {
		if r.Records.Buckets[le] != n {
			t.Errorf("bucket le=%s: %d, want %d (all: %v)", le, r.Records.Buckets[le], n, r.Records.Buckets)
		}
	}
	if r.Records.Count != 4 || r.Records.Sum != 5006 {
		t.Errorf("count %d sum %g, want 4 5006", r.Records.Count, r.Records.Sum)
	}
}

func TestRecorderSnapshotError(t *testing.T) {
	rec := expvarstats.NewRecorder()
	rec.ObserveSnapshot(1e6, 0, errors.New("disk full"))
	var r struct {
		Seconds hist   `json:"snapshot_seconds"`
		Bytes   hist   `json:"snapshot_bytes"`
		Errors  uint64 `json:"snapshot_errors"`
	}
	if err := json.Unmarshal([]byte(rec.String()), &r); err != nil {
		t.Fatal(err)
	}
	if r.Errors != 1 || r.Seconds.Count != 1 || r.Bytes.Count != 0 {
		t.Fatalf("errors %d seconds %d bytes %d, want 1 1 0", r.Errors, r.Seconds.Count, r.Bytes.Count)
	}
}

func TestRecorderUnknownOp(t *testing.T) {
	rec := expvarstats.NewRecorder()
	rec.ObserveWrite(engine.WriteOp(200), 1000, engine.ErrClosed)
	var r struct {
		Writes map[string]hist              `json:"write_seconds"`
		Errors map[string]map[string]uint64 `json:"write_errors"`
	}
	if err := json.Unmarshal([]byte(rec.String()), &r); err != nil {
		t.Fatal(err)
	}
	if r.Writes["unknown"].Count != 1 || r.Errors["unknown"]["closed"] != 1 {
		t.Fatalf("write_seconds %v write_errors %v", r.Writes, r.Errors)
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
		if got := expvarstats.ErrorKind(c.err); got != c.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
