// Package sessotel exports a sesscache engine's metrics through the
// OpenTelemetry metrics API: observable instruments that read the
// engine's Stats at each collection (Observe), and a Recorder that
// records histograms of the latencies and sizes the engine reports as it
// works.
//
// It is a module of its own, so that sesscache does not depend on
// OpenTelemetry. It uses only the API (go.opentelemetry.io/otel/metric);
// the program chooses the SDK and the exporter.
//
//	rec, err := sessotel.NewRecorder(sessotel.Options{MeterProvider: mp})
//	store, err := engine.Open(engine.Options{Dir: dir, Recorder: rec})
//	reg, err := sessotel.Observe(store, sessotel.Options{MeterProvider: mp})
//	defer reg.Unregister()
//
// Counts come from Observe, exactly: every lookup, write and removal. The
// Recorder's Get histogram is a sample (one lookup in
// engine.GetSampleEvery), so use it for latency, not for rates.
//
// The package's name is not otel, so that it does not shadow
// OpenTelemetry's package in the files that use both.
package sessotel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sesscache/sesscache/engine"
)

// ScopeName is the instrumentation scope of every instrument: the Meter's
// name.
const ScopeName = "github.com/sesscache/sesscache/adapters/otel"

// Options configures Observe and NewRecorder. The zero value uses the
// global MeterProvider with no extra attributes.
type Options struct {
	// MeterProvider supplies the Meter. Nil means otel.GetMeterProvider(),
	// as OpenTelemetry's own instrumentation libraries do: a no-op until
	// the program installs one with otel.SetMeterProvider.
	MeterProvider metric.MeterProvider
	// Attributes are added to every measurement: set them to tell engines
	// apart when one program has several (for instance
	// attribute.String("sesscache.store", "web")).
	Attributes []attribute.KeyValue
}

func (o Options) meter() metric.Meter {
	mp := o.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(ScopeName)
}

// with returns the measurement option for Options.Attributes plus kv,
// built once so that recording does not allocate it again.
func (o Options) with(kv ...attribute.KeyValue) metric.MeasurementOption {
	all := make([]attribute.KeyValue, 0, len(o.Attributes)+len(kv))
	all = append(append(all, o.Attributes...), kv...)
	return metric.WithAttributeSet(attribute.NewSet(all...))
}

// Observe creates observable instruments over e's Stats, which one callback
// reads once per collection, and returns their registration: Unregister it
// to stop observing (before or after closing the engine). The instruments:
//
//	sesscache.lookups{result=hit|miss}                     counter
//	sesscache.binding_mismatches                           counter
//	sesscache.session.created, sesscache.session.updates,
//	sesscache.session.rotations                            counters
//	sesscache.session.ended{cause=deleted|revoked|evicted|expired}  counter
//	sesscache.session.live, sesscache.session.anonymous    up-down counters
//
// and, for a persistent engine only:
//
//	sesscache.log.records, sesscache.log.appended (By),
//	sesscache.log.writes, sesscache.log.fsyncs             counters
//	sesscache.log.records_per_fsync                        gauge
//	sesscache.log.segments, sesscache.log.disk.usage (By),
//	sesscache.log.unsynced (records not yet fsynced),
//	sesscache.log.since_snapshot (By)                      up-down counters
//	sesscache.log.failed (1: the engine is read-only)      gauge
//	sesscache.snapshot.last.size (By), .sessions,
//	.duration (s), .age (s, once there is a snapshot)      gauges
//	sesscache.recovery.last.duration (s), .sessions        gauges
func Observe(e *engine.Engine, o Options) (metric.Registration, error) {
	m := o.meter()
	var errs []error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	updown := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		c, err := m.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, unit, desc string) metric.Float64ObservableGauge {
		g, err := m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	var (
		lookups    = counter("sesscache.lookups", "{lookup}", "Lookups (Get, GetBound, Find), by whether they returned a session.")
		mismatches = counter("sesscache.binding_mismatches", "{lookup}", "Lookups refused because the session is bound to another client fingerprint.")
		created    = counter("sesscache.session.created", "{session}", "Sessions created.")
		updates    = counter("sesscache.session.updates", "{update}", "Writes by Update.")
		rotations  = counter("sesscache.session.rotations", "{rotation}", "Sessions moved to a fresh ID.")
		ended      = counter("sesscache.session.ended", "{session}", "Sessions removed, by cause: deleted (logout), revoked, evicted by a cap, expired.")
		live       = updown("sesscache.session.live", "{session}", "Sessions held, including ones past their deadline not yet reaped.")
		anonymous  = updown("sesscache.session.anonymous", "{session}", "Sessions held that have no owner.")

		logRecords    = counter("sesscache.log.records", "{record}", "Records appended to the write-ahead log since Open.")
		logAppended   = counter("sesscache.log.appended", "By", "Bytes appended to the write-ahead log since Open.")
		logWrites     = counter("sesscache.log.writes", "{write}", "Write calls to log segment files (one per group-commit batch).")
		logFsyncs     = counter("sesscache.log.fsyncs", "{fsync}", "Fsyncs of log segment data.")
		perFsync      = gauge("sesscache.log.records_per_fsync", "{record}", "Records per fsync since Open: the group commit factor.")
		segments      = updown("sesscache.log.segments", "{segment}", "Log segment files.")
		diskUsage     = updown("sesscache.log.disk.usage", "By", "Bytes of log segment data on disk.")
		unsynced      = updown("sesscache.log.unsynced", "{record}", "Log records not yet covered by an fsync: what a power cut would lose now.")
		sinceSnapshot = updown("sesscache.log.since_snapshot", "By", "Log written since the latest snapshot: what a restart would replay on top of it.")
		failed        = gauge("sesscache.log.failed", "1", "1 if a log write failed and the engine refuses writes (read-only).")
		snapSize      = gauge("sesscache.snapshot.last.size", "By", "Size of the latest snapshot file.")
		snapSessions  = gauge("sesscache.snapshot.last.sessions", "{session}", "Sessions in the latest snapshot.")
		snapDuration  = gauge("sesscache.snapshot.last.duration", "s", "How long writing the latest snapshot took.")
		snapAge       = gauge("sesscache.snapshot.last.age", "s", "Time since the latest snapshot was written, by the engine's clock.")
		recDuration   = gauge("sesscache.recovery.last.duration", "s", "How long Open's recovery took.")
		recSessions   = gauge("sesscache.recovery.last.sessions", "{session}", "Live sessions after Open's recovery.")
	)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("sessotel: creating instruments: %w", err)
	}
	base := o.with()
	hit, miss := o.with(attribute.String("result", "hit")), o.with(attribute.String("result", "miss"))
	byCause := [4]metric.MeasurementOption{
		o.with(attribute.String("cause", "deleted")), o.with(attribute.String("cause", "revoked")),
		o.with(attribute.String("cause", "evicted")), o.with(attribute.String("cause", "expired")),
	}
	cb := func(_ context.Context, ob metric.Observer) error {
		st := e.Stats()
		ob.ObserveInt64(lookups, int64(st.Hits), hit)
		ob.ObserveInt64(lookups, int64(st.Misses), miss)
		ob.ObserveInt64(mismatches, int64(st.BindingMismatches), base)
		ob.ObserveInt64(created, int64(st.Created), base)
		ob.ObserveInt64(updates, int64(st.Updated), base)
		ob.ObserveInt64(rotations, int64(st.Rotated), base)
		for i, n := range [4]uint64{st.Deleted, st.Revoked, st.Evicted, st.Expired} {
			ob.ObserveInt64(ended, int64(n), byCause[i])
		}
		ob.ObserveInt64(live, int64(st.Live), base)
		ob.ObserveInt64(anonymous, int64(st.Anonymous), base)
		// An in-memory engine has no log, snapshots or recovery: leave
		// them out rather than report zeros that look like a stalled log.
		// A persistent engine always has a segment open.
		if st.Log.Segments == 0 {
			return nil
		}
		l := st.Log
		ob.ObserveInt64(logRecords, int64(l.Records), base)
		ob.ObserveInt64(logAppended, int64(l.BytesAppended), base)
		ob.ObserveInt64(logWrites, int64(l.Writes), base)
		ob.ObserveInt64(logFsyncs, int64(l.Fsyncs), base)
		ob.ObserveFloat64(perFsync, l.RecordsPerFsync(), base)
		ob.ObserveInt64(segments, int64(l.Segments), base)
		ob.ObserveInt64(diskUsage, l.DiskBytes, base)
		ob.ObserveInt64(unsynced, int64(l.LastLSN-min(l.DurableLSN, l.LastLSN)), base)
		ob.ObserveInt64(sinceSnapshot, st.Snapshot.LogBytesSince, base)
		var f float64
		if l.Failed {
			f = 1
		}
		ob.ObserveFloat64(failed, f, base)
		ob.ObserveFloat64(snapSize, float64(st.Snapshot.Bytes), base)
		ob.ObserveFloat64(snapSessions, float64(st.Snapshot.Sessions), base)
		ob.ObserveFloat64(snapDuration, st.Snapshot.Duration.Seconds(), base)
		if !st.Snapshot.Created.IsZero() {
			ob.ObserveFloat64(snapAge, max(e.Now().Sub(st.Snapshot.Created).Seconds(), 0), base)
		}
		ob.ObserveFloat64(recDuration, st.Recovery.Duration.Seconds(), base)
		ob.ObserveFloat64(recSessions, float64(st.Recovery.Sessions), base)
		return nil
	}
	reg, err := m.RegisterCallback(cb, lookups, mismatches, created, updates, rotations, ended, live, anonymous,
		logRecords, logAppended, logWrites, logFsyncs, perFsync, segments, diskUsage, unsynced, sinceSnapshot,
		failed, snapSize, snapSessions, snapDuration, snapAge, recDuration, recSessions)
	if err != nil {
		return nil, fmt.Errorf("sessotel: registering the Stats callback: %w", err)
	}
	return reg, nil
}

// Bucket boundaries, in seconds for durations: fixed, so that dashboards
// written for one program work for the next. A View in the SDK can
// replace them.
var (
	// A Get takes a fraction of a microsecond to a few.
	getBounds = exponential(100e-9, 4, 9) // 100ns .. 6.6ms
	// A write waits for the log: microseconds in memory, an fsync's
	// milliseconds under SyncAlways.
	writeBounds  = exponential(1e-6, 4, 11)  // 1µs .. 1.05s
	fsyncBounds  = exponential(10e-6, 4, 10) // 10µs .. 2.6s
	recordBounds = exponential(1, 2, 13)     // 1 .. 4096 records
	byteBounds   = exponential(64, 4, 10)    // 64 B .. 16 MiB
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

// Recorder implements engine.Recorder with OpenTelemetry instruments:
//
//	sesscache.get.duration{result=hit|miss} (s)         histogram, sampled
//	sesscache.write.duration{op, error.type} (s)        histogram; error.type
//	                                                    (ErrorKind's) only on failure
//	sesscache.log.write.records ({record})              histogram: records per log write
//	sesscache.log.write.size (By)                       histogram: bytes per log write
//	sesscache.log.fsync.duration (s)                    histogram
//	sesscache.snapshot.duration{error.type} (s)         histogram, failed ones included
//	sesscache.snapshot.size (By)                        histogram of snapshots written
//	sesscache.recovery.duration (s)                     histogram, one per Open
//	sesscache.evictions ({session})                     counter
//
// op is create, update, delete, rotate or revoke. sesscache.evictions
// counts what Observe's sesscache.session.ended{cause=evicted} does; it is
// here so that the Recorder alone is complete.
type Recorder struct {
	o                    Options
	get, write           metric.Float64Histogram
	logRecords, logBytes metric.Int64Histogram
	fsync                metric.Float64Histogram
	snapshot             metric.Float64Histogram
	snapshotBytes        metric.Int64Histogram
	recovery             metric.Float64Histogram
	evictions            metric.Int64Counter

	// Attribute sets built once, so that recording does not allocate them.
	base, hit, miss metric.MeasurementOption
	byOp            [8]metric.MeasurementOption
}

var _ engine.Recorder = (*Recorder)(nil)

// NewRecorder returns a Recorder whose instruments come from o's
// MeterProvider. Pass it in engine.Options.Recorder; one Recorder per
// engine (use Options.Attributes to tell them apart).
func NewRecorder(o Options) (*Recorder, error) {
	m := o.meter()
	var errs []error
	fhist := func(name, unit, desc string, bounds []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
		return h
	}
	ihist := func(name, unit, desc string, bounds []float64) metric.Int64Histogram {
		h, err := m.Int64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
		return h
	}
	r := &Recorder{
		o:             o,
		get:           fhist("sesscache.get.duration", "s", "Lookup latency, sampled: one lookup in engine.GetSampleEvery.", getBounds),
		write:         fhist("sesscache.write.duration", "s", "Write call latency, the wait for the log included; failed writes included.", writeBounds),
		logRecords:    ihist("sesscache.log.write.records", "{record}", "Records per write of the log: the group commit's batch size.", recordBounds),
		logBytes:      ihist("sesscache.log.write.size", "By", "Bytes per write of the log.", byteBounds),
		fsync:         fhist("sesscache.log.fsync.duration", "s", "Latency of fsyncs of the log's data.", fsyncBounds),
		snapshot:      fhist("sesscache.snapshot.duration", "s", "Time to write a snapshot, fsyncs included; failed snapshots included.", longBounds),
		snapshotBytes: ihist("sesscache.snapshot.size", "By", "Size of each snapshot written.", snapshotByteBounds),
		recovery:      fhist("sesscache.recovery.duration", "s", "Time Open spent recovering the data directory.", longBounds),
		base:          o.with(),
		hit:           o.with(attribute.String("result", "hit")),
		miss:          o.with(attribute.String("result", "miss")),
	}
	ev, err := m.Int64Counter("sesscache.evictions", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions evicted by a cap (MaxSessions, MaxAnonymousSessions, MaxSessionsPerUser)."))
	r.evictions = ev
	if err := errors.Join(append(errs, err)...); err != nil {
		return nil, fmt.Errorf("sessotel: creating instruments: %w", err)
	}
	for _, op := range []engine.WriteOp{engine.OpCreate, engine.OpUpdate, engine.OpDelete, engine.OpRotate, engine.OpRevoke} {
		r.byOp[op] = o.with(attribute.String("op", op.String()))
	}
	return r, nil
}

// ObserveGet implements engine.Recorder.
func (r *Recorder) ObserveGet(d time.Duration, found bool) {
	if found {
		r.get.Record(context.Background(), d.Seconds(), r.hit)
	} else {
		r.get.Record(context.Background(), d.Seconds(), r.miss)
	}
}

// ObserveWrite implements engine.Recorder.
func (r *Recorder) ObserveWrite(op engine.WriteOp, d time.Duration, err error) {
	if err != nil {
		r.write.Record(context.Background(), d.Seconds(),
			r.o.with(attribute.String("op", op.String()), attribute.String("error.type", ErrorKind(err))))
		return
	}
	var opt metric.MeasurementOption
	if int(op) < len(r.byOp) {
		opt = r.byOp[op]
	}
	if opt == nil {
		// An op newer than this package: its own series, not a lost one.
		opt = r.o.with(attribute.String("op", op.String()))
	}
	r.write.Record(context.Background(), d.Seconds(), opt)
}

// ObserveLogWrite implements engine.Recorder.
func (r *Recorder) ObserveLogWrite(records uint64, bytes int) {
	r.logRecords.Record(context.Background(), int64(records), r.base)
	r.logBytes.Record(context.Background(), int64(bytes), r.base)
}

// ObserveFsync implements engine.Recorder.
func (r *Recorder) ObserveFsync(d time.Duration) {
	r.fsync.Record(context.Background(), d.Seconds(), r.base)
}

// ObserveSnapshot implements engine.Recorder. A failed snapshot's time is
// recorded, with its error.type, since it was spent; its size is not,
// since nothing was kept.
func (r *Recorder) ObserveSnapshot(d time.Duration, bytes int64, err error) {
	if err != nil {
		r.snapshot.Record(context.Background(), d.Seconds(), r.o.with(attribute.String("error.type", ErrorKind(err))))
		return
	}
	r.snapshot.Record(context.Background(), d.Seconds(), r.base)
	r.snapshotBytes.Record(context.Background(), bytes, r.base)
}

// ObserveRecovery implements engine.Recorder. The sessions recovered are
// Observe's sesscache.recovery.last.sessions.
func (r *Recorder) ObserveRecovery(d time.Duration, _ int) {
	r.recovery.Record(context.Background(), d.Seconds(), r.base)
}

// ObserveEviction implements engine.Recorder.
func (r *Recorder) ObserveEviction() { r.evictions.Add(context.Background(), 1, r.base) }

// ErrorKind names the kind of an engine error in a few fixed words, the
// error.type attribute of a failed write: an attribute made of error text
// would grow without bound. It returns "" for nil and "other" for an error
// that is none of the engine's (such as one returned by an Update
// function).
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
