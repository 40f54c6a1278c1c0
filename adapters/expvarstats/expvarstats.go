// Package expvarstats publishes a sesscache engine's metrics through the
// standard library's expvar: the engine's Stats, read afresh whenever
// /debug/vars is served, and a Recorder that keeps latency and size
// histograms.
//
// It is a package of its own, which the engine does not import, because
// importing expvar registers the /debug/vars handler on
// http.DefaultServeMux: only a program that asks for expvar should get it.
//
// Nothing is published until the program calls Publish (or expvar.Publish
// itself), so two engines in one process can be published under two names.
//
//	rec := expvarstats.NewRecorder()
//	store, err := engine.Open(engine.Options{Dir: dir, Recorder: rec})
//	...
//	expvarstats.Publish("sesscache", store, rec) // /debug/vars: "sesscache": {"stats": ..., "recorder": ...}
package expvarstats

import (
	"context"
	"errors"
	"expvar"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// Stats returns an expvar.Func that reads e.Stats each time it is read, so
// that a scrape sees the counters as they are then rather than as they were
// when published. Its JSON form is engine.Stats's (Go field names;
// durations in nanoseconds).
func Stats(e *engine.Engine) expvar.Func {
	return func() any { return e.Stats() }
}

// Publish publishes, under name, a map holding "stats" (see Stats) and, if
// rec is not nil, "recorder", and returns the map, to which the caller may
// add more. expvar cannot take a name back, so publishing a name again
// (a program that reopens its engine, a test run twice) points its map at
// the new e and rec. A name that something other than Publish published
// makes it panic, as expvar.Publish does: give each engine its own name.
func Publish(name string, e *engine.Engine, rec *Recorder) *expvar.Map {
	publishedMu.Lock()
	defer publishedMu.Unlock()
	m, ok := published[name]
	if !ok {
		m = new(expvar.Map)
	}
	m.Set("stats", Stats(e))
	if rec != nil {
		m.Set("recorder", rec)
	} else {
		m.Delete("recorder")
	}
	if !ok {
		expvar.Publish(name, m) // panics if the name is taken
		published[name] = m
	}
	return m
}

// published records the maps Publish put in expvar's registry, so that
// Publish can tell its own names, which it may reuse, from others'.
var (
	publishedMu sync.Mutex
	published   = map[string]*expvar.Map{}
)

// Bucket upper bounds. Durations are in seconds. They are fixed rather than
// configurable so that the JSON has the same shape in every program and a
// dashboard can be written once.
var (
	// A Get takes a fraction of a microsecond to a few.
	getBounds = exponential(100e-9, 4, 9) // 100ns .. 6.6ms
	// A write waits for the log: microseconds in memory, an fsync's
	// milliseconds under SyncAlways.
	writeBounds = exponential(1e-6, 4, 11)  // 1µs .. 1.05s
	fsyncBounds = exponential(10e-6, 4, 10) // 10µs .. 2.6s
	// A log write carries one batch of the group commit.
	recordBounds = exponential(1, 2, 13)  // 1 .. 4096 records
	byteBounds   = exponential(64, 4, 10) // 64 B .. 16 MiB
	// Snapshots and recovery take milliseconds to minutes.
	longBounds         = exponential(1e-3, 4, 9)  // 1ms .. 65s
	snapshotByteBounds = exponential(4096, 4, 11) // 4 KiB .. 4 GiB
)

func exponential(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// histogram counts observations into fixed buckets with atomic adds only,
// since the engine calls the Recorder from its hot paths, concurrently. It
// is an expvar.Var whose JSON is
//
//	{"count": n, "sum": s, "buckets": {"<upper bound>": n, ..., "+Inf": n}}
//
// with cumulative buckets, as Prometheus's are, so that "how many took at
// most 1ms" is one lookup.
type histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits, updated by compare-and-swap
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// String implements expvar.Var.
func (h *histogram) String() string {
	var b strings.Builder
	b.WriteString(`{"count": `)
	b.WriteString(strconv.FormatUint(h.count.Load(), 10))
	b.WriteString(`, "sum": `)
	b.WriteString(strconv.FormatFloat(math.Float64frombits(h.sum.Load()), 'g', -1, 64))
	b.WriteString(`, "buckets": {`)
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if i > 0 {
			b.WriteString(", ")
		}
		if i < len(h.bounds) {
			b.WriteString(strconv.Quote(strconv.FormatFloat(h.bounds[i], 'g', -1, 64)))
		} else {
			b.WriteString(`"+Inf"`)
		}
		b.WriteString(": ")
		b.WriteString(strconv.FormatUint(cum, 10))
	}
	b.WriteString("}}")
	return b.String()
}

// Recorder implements engine.Recorder by keeping histograms and counters
// in an expvar map. It is an expvar.Var itself: publish it with Publish, or
// with expvar.Publish, under a name of your choosing. Its JSON holds
//
//	get_seconds        {"hit": histogram, "miss": histogram}, sampled: one
//	                   lookup in engine.GetSampleEvery (Stats counts them all)
//	write_seconds      {"create": histogram, "update": ..., "delete": ...,
//	                   "rotate": ..., "revoke": ...}, failed writes included
//	write_errors       {"<op>": {"<kind>": count}}, kinds such as
//	                   "not_found", "version_conflict", "read_only" (see
//	                   ErrorKind)
//	log_write_records  histogram of records per log write: the group commit
//	log_write_bytes    histogram of bytes per log write
//	fsync_seconds      histogram of the log's fsyncs
//	snapshot_seconds   histogram of snapshots' durations, failed ones included
//	snapshot_bytes     histogram of the sizes of snapshots written
//	snapshot_errors    count of snapshots that failed
//	recovery_seconds   histogram of Open's recoveries (one per Open)
//	recovered_sessions sessions the last recovery brought back
//	evictions          sessions evicted by a cap
//
// A histogram reads as {"count", "sum", "buckets"} with cumulative buckets
// keyed by their upper bound. The zero Recorder is not usable; use
// NewRecorder.
type Recorder struct {
	vars expvar.Map

	getHit, getMiss             *histogram
	logRecords, logBytes, fsync *histogram
	snapshot, snapshotBytes     *histogram
	recovery                    *histogram
	writes, writeErrors         *expvar.Map
	snapshotErrors, evictions   *expvar.Int
	recoveredSessions           *expvar.Int
	writeMu                     sync.Mutex // creating a write histogram
}

var _ engine.Recorder = (*Recorder)(nil)

// NewRecorder returns a Recorder with every histogram empty. Pass it in
// engine.Options.Recorder; one Recorder per engine, or the engines' figures
// are summed.
func NewRecorder() *Recorder {
	r := &Recorder{
		getHit:            newHistogram(getBounds),
		getMiss:           newHistogram(getBounds),
		logRecords:        newHistogram(recordBounds),
		logBytes:          newHistogram(byteBounds),
		fsync:             newHistogram(fsyncBounds),
		snapshot:          newHistogram(longBounds),
		snapshotBytes:     newHistogram(snapshotByteBounds),
		recovery:          newHistogram(longBounds),
		writes:            new(expvar.Map),
		writeErrors:       new(expvar.Map),
		snapshotErrors:    new(expvar.Int),
		evictions:         new(expvar.Int),
		recoveredSessions: new(expvar.Int),
	}
	get := new(expvar.Map)
	get.Set("hit", r.getHit)
	get.Set("miss", r.getMiss)
	// The write ops are created up front so that the JSON has them all,
	// at zero, before the first write: a dashboard needs no special case.
	for _, op := range []engine.WriteOp{engine.OpCreate, engine.OpUpdate, engine.OpDelete, engine.OpRotate, engine.OpRevoke} {
		r.writes.Set(op.String(), newHistogram(writeBounds))
		r.writeErrors.Set(op.String(), new(expvar.Map))
	}
	r.vars.Set("get_seconds", get)
	r.vars.Set("write_seconds", r.writes)
	r.vars.Set("write_errors", r.writeErrors)
	r.vars.Set("log_write_records", r.logRecords)
	r.vars.Set("log_write_bytes", r.logBytes)
	r.vars.Set("fsync_seconds", r.fsync)
	r.vars.Set("snapshot_seconds", r.snapshot)
	r.vars.Set("snapshot_bytes", r.snapshotBytes)
	r.vars.Set("snapshot_errors", r.snapshotErrors)
	r.vars.Set("recovery_seconds", r.recovery)
	r.vars.Set("recovered_sessions", r.recoveredSessions)
	r.vars.Set("evictions", r.evictions)
	return r
}

// String implements expvar.Var: the Recorder's figures as JSON.
func (r *Recorder) String() string { return r.vars.String() }

// ObserveGet implements engine.Recorder.
func (r *Recorder) ObserveGet(d time.Duration, found bool) {
	if found {
		r.getHit.observe(d.Seconds())
	} else {
		r.getMiss.observe(d.Seconds())
	}
}

// ObserveWrite implements engine.Recorder.
func (r *Recorder) ObserveWrite(op engine.WriteOp, d time.Duration, err error) {
	name := op.String()
	h, ok := r.writes.Get(name).(*histogram)
	if !ok {
		// An operation newer than this package: give it its own entry
		// rather than lose it.
		r.writeMu.Lock()
		if h, ok = r.writes.Get(name).(*histogram); !ok {
			h = newHistogram(writeBounds)
			r.writes.Set(name, h)
			r.writeErrors.Set(name, new(expvar.Map))
		}
		r.writeMu.Unlock()
	}
	h.observe(d.Seconds())
	if err != nil {
		r.writeErrors.Get(name).(*expvar.Map).Add(ErrorKind(err), 1)
	}
}

// ObserveLogWrite implements engine.Recorder.
func (r *Recorder) ObserveLogWrite(records uint64, bytes int) {
	r.logRecords.observe(float64(records))
	r.logBytes.observe(float64(bytes))
}

// ObserveFsync implements engine.Recorder.
func (r *Recorder) ObserveFsync(d time.Duration) { r.fsync.observe(d.Seconds()) }

// ObserveSnapshot implements engine.Recorder. A failed snapshot's time is
// counted, since it was spent; its size is not, since nothing was kept.
func (r *Recorder) ObserveSnapshot(d time.Duration, bytes int64, err error) {
	r.snapshot.observe(d.Seconds())
	if err != nil {
		r.snapshotErrors.Add(1)
		return
	}
	r.snapshotBytes.observe(float64(bytes))
}

// ObserveRecovery implements engine.Recorder.
func (r *Recorder) ObserveRecovery(d time.Duration, sessions int) {
	r.recovery.observe(d.Seconds())
	r.recoveredSessions.Set(int64(sessions))
}

// ObserveEviction implements engine.Recorder.
func (r *Recorder) ObserveEviction() { r.evictions.Add(1) }

// ErrorKind names the kind of an engine error in a few fixed words, for a
// metric's label: a label made of error text would grow without bound.
// It returns "" for nil and "other" for an error that is none of the
// engine's (such as one returned by an Update function).
func ErrorKind(err error) string {
	switch {
	case err == nil:
		return ""
	// ErrRotated and ErrExpired also match ErrNotFound: test them first.
	case errors.Is(err, engine.ErrRotated):
		return "rotated"
	case errors.Is(err, engine.ErrExpired):
		return "expired"
	case errors.Is(err, engine.ErrNotFound):
		return "not_found"
	case errors.Is(err, engine.ErrVersionConflict):
		return "version_conflict"
	case errors.Is(err, engine.ErrFull):
		return "full"
	case errors.Is(err, engine.ErrTooLarge):
		return "too_large"
	case errors.Is(err, engine.ErrMalformedToken):
		return "malformed_token"
	case errors.Is(err, engine.ErrInvalid):
		return "invalid"
	case errors.Is(err, engine.ErrReadOnly):
		return "read_only"
	case errors.Is(err, engine.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return "other"
}
