// Package sessprom exports a sesscache engine's metrics to Prometheus: a
// Collector that reads the engine's Stats at scrape time, and a Recorder
// that keeps histograms of the latencies and sizes the engine reports as it
// works.
//
// It is a module of its own, so that sesscache does not depend on
// client_golang. Nothing is registered for you (no registration in init, no
// default registry): register both in main, with the registry you serve.
//
//	rec := sessprom.NewRecorder(sessprom.Options{})
//	store, err := engine.Open(engine.Options{Dir: dir, Recorder: rec})
//	...
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(rec, sessprom.NewCollector(store, sessprom.Options{}))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Counts come from the Collector, exactly: every lookup, write and removal.
// The Recorder's Get histogram is a sample (one lookup in
// engine.GetSampleEvery), so use it for latency, not for rates.
//
// To export several engines from one registry, give each its own
// Options.ConstLabels (for instance {"store": "web"}).
//
// The package's name is not prometheus, so that it does not shadow
// client_golang's package in the files that use both.
package sessprom

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sesscache/sesscache/engine"
)

// Options configures a Collector or a Recorder. The zero value names every
// metric sesscache_... with no constant labels.
type Options struct {
	// Namespace prefixes every metric name. Default "sesscache".
	Namespace string
	// ConstLabels are added to every metric: set them to tell engines
	// apart when one registry exports several.
	ConstLabels prometheus.Labels
}

func (o Options) namespace() string {
	if o.Namespace == "" {
		return "sesscache"
	}
	return o.Namespace
}

// metric is one of the Collector's metrics: its description and how to
// read it from Stats.
type metric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	// persistent metrics describe the log, snapshots and recovery, which an
	// in-memory engine does not have: they are left out rather than
	// exported as zeros that would look like a stalled log.
	persistent bool
	value      func(st *engine.Stats, now time.Time) (float64, bool)
}

// Collector is a prometheus.Collector over an engine's Stats. It reads
// Stats once per scrape, so it costs nothing between scrapes and always
// reports the engine as it is. Its metrics (with the default namespace):
//
//	sesscache_hits_total, sesscache_misses_total                counters
//	sesscache_sessions_created_total, sesscache_updates_total,
//	sesscache_rotations_total                                   counters
//	sesscache_sessions_ended_total{cause="deleted|revoked|evicted|expired"}
//	sesscache_binding_mismatches_total                          counter
//	sesscache_sessions, sesscache_anonymous_sessions            gauges
//
// and, for a persistent engine only:
//
//	sesscache_log_records_total, sesscache_log_bytes_total,
//	sesscache_log_writes_total, sesscache_log_fsyncs_total      counters
//	sesscache_log_records_per_fsync, sesscache_log_segments,
//	sesscache_log_disk_bytes, sesscache_log_unsynced_records,
//	sesscache_log_failed (1: the engine is read-only)           gauges
//	sesscache_log_bytes_since_snapshot                          gauge
//	sesscache_last_snapshot_bytes, sesscache_last_snapshot_sessions,
//	sesscache_last_snapshot_age_seconds (once there is one),
//	sesscache_last_snapshot_duration_seconds                    gauges
//	sesscache_last_recovery_duration_seconds,
//	sesscache_last_recovery_sessions                            gauges
//
// Register it with prometheus.Registerer.MustRegister.
type Collector struct {
	e       *engine.Engine
	metrics []metric
	ended   *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector for e.
func NewCollector(e *engine.Engine, o Options) *Collector {
	ns := o.namespace()
	c := &Collector{e: e}
	add := func(name, help string, typ prometheus.ValueType, persistent bool, v func(*engine.Stats, time.Time) (float64, bool)) {
		c.metrics = append(c.metrics, metric{
			desc:       prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, nil, o.ConstLabels),
			typ:        typ,
			persistent: persistent,
			value:      v,
		})
	}
	always := func(f func(*engine.Stats) float64) func(*engine.Stats, time.Time) (float64, bool) {
		return func(st *engine.Stats, _ time.Time) (float64, bool) { return f(st), true }
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue

	add("hits_total", "Lookups (Get, GetBound, Find) that returned a session.", counter, false,
		always(func(st *engine.Stats) float64 { return float64(st.Hits) }))
	add("misses_total", "Lookups that found no live session: unknown, expired, bound to another fingerprint, or malformed.", counter, false,
		always(func(st *engine.Stats) float64 { return float64(st.Misses) }))
	add("sessions_created_total", "Sessions created.", counter, false,
		always(func(st *engine.Stats) float64 { return float64(st.Created) }))
	add("updates_total", "Writes by Update.", counter, false,
		always(func(st *engine.Stats) float64 { return float64(st.Updated) }))
	add("rotations_total", "Sessions moved to a fresh ID.", counter, false,
		always(func(st *engine.Stats) float64 { return float64(st.Rotated) }))
	add("binding_mismatches_total", "Lookups refused because the session is bound to another client fingerprint.", counter, false,
		always(func(st *engine.Stats) float64 { return float64(st.BindingMismatches) }))
	add("sessions", "Sessions held, including ones past their deadline not yet reaped.", gauge, false,
		always(func(st *engine.Stats) float64 { return float64(st.Live) }))
	add("anonymous_sessions", "Sessions held that have no owner.", gauge, false,
		always(func(st *engine.Stats) float64 { return float64(st.Anonymous) }))

	add("log_records_total", "Records appended to the write-ahead log since Open.", counter, true,
		always(func(st *engine.Stats) float64 { return float64(st.Log.Records) }))
	add("log_bytes_total", "Bytes appended to the write-ahead log since Open.", counter, true,
		always(func(st *engine.Stats) float64 { return float64(st.Log.BytesAppended) }))
	add("log_writes_total", "Write calls to log segment files (one per group-commit batch).", counter, true,
		always(func(st *engine.Stats) float64 { return float64(st.Log.Writes) }))
	add("log_fsyncs_total", "Fsyncs of log segment data.", counter, true,
		always(func(st *engine.Stats) float64 { return float64(st.Log.Fsyncs) }))
	add("log_records_per_fsync", "Records per fsync since Open: the group commit factor.", gauge, true,
		always(func(st *engine.Stats) float64 { return st.Log.RecordsPerFsync() }))
	add("log_segments", "Log segment files.", gauge, true,
		always(func(st *engine.Stats) float64 { return float64(st.Log.Segments) }))
	add("log_disk_bytes", "Bytes of log segment data on disk.", gauge, true,
		always(func(st *engine.Stats) float64 { return float64(st.Log.DiskBytes) }))
	add("log_unsynced_records", "Log records assigned but not yet covered by an fsync: what a power cut would lose now.", gauge, true,
		always(func(st *engine.Stats) float64 {
			return float64(st.Log.LastLSN - min(st.Log.DurableLSN, st.Log.LastLSN))
		}))
	add("log_failed", "1 if a log write failed and the engine refuses writes (read-only).", gauge, true,
		always(func(st *engine.Stats) float64 {
			if st.Log.Failed {
				return 1
			}
			return 0
		}))
	add("log_bytes_since_snapshot", "Log written since the latest snapshot: what a restart would replay on top of it.", gauge, true,
		always(func(st *engine.Stats) float64 { return float64(st.Snapshot.LogBytesSince) }))
	add("last_snapshot_bytes", "Size of the latest snapshot file.", gauge, true,
		always(func(st *engine.Stats) float64 { return float64(st.Snapshot.Bytes) }))
	add("last_snapshot_sessions", "Sessions in the latest snapshot.", gauge, true,
		always(func(st *engine.Stats) float64 { return float64(st.Snapshot.Sessions) }))
	add("last_snapshot_duration_seconds", "How long writing the latest snapshot took.", gauge, true,
		always(func(st *engine.Stats) float64 { return st.Snapshot.Duration.Seconds() }))
	add("last_snapshot_age_seconds", "Time since the latest snapshot was written, by the engine's clock; absent until there is one.", gauge, true,
		func(st *engine.Stats, now time.Time) (float64, bool) {
			if st.Snapshot.Created.IsZero() {
				return 0, false
			}
			return max(now.Sub(st.Snapshot.Created).Seconds(), 0), true
		})
	add("last_recovery_duration_seconds", "How long Open's recovery took.", gauge, true,
		always(func(st *engine.Stats) float64 { return st.Recovery.Duration.Seconds() }))
	add("last_recovery_sessions", "Live sessions after Open's recovery.", gauge, true,
		always(func(st *engine.Stats) float64 { return float64(st.Recovery.Sessions) }))

	c.ended = prometheus.NewDesc(prometheus.BuildFQName(ns, "", "sessions_ended_total"),
		"Sessions removed, by cause: deleted (logout), revoked, evicted by a cap, expired.",
		[]string{"cause"}, o.ConstLabels)
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
	ch <- c.ended
}

// Collect implements prometheus.Collector: one Stats call per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.e.Stats()
	now := c.e.Now()
	// A persistent engine always has a log segment open.
	persistent := st.Log.Segments > 0
	for _, m := range c.metrics {
		if m.persistent && !persistent {
			continue
		}
		if v, ok := m.value(&st, now); ok {
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v)
		}
	}
	for _, e := range [...]struct {
		cause string
		n     uint64
	}{{"deleted", st.Deleted}, {"revoked", st.Revoked}, {"evicted", st.Evicted}, {"expired", st.Expired}} {
		ch <- prometheus.MustNewConstMetric(c.ended, prometheus.CounterValue, float64(e.n), e.cause)
	}
}

// Bucket bounds, in seconds for durations. Fixed, so that dashboards and
// alerts written for one program work for the next.
var (
	// A Get takes a fraction of a microsecond to a few.
	getBuckets = prometheus.ExponentialBuckets(100e-9, 4, 9) // 100ns .. 6.6ms
	// A write waits for the log: microseconds in memory, an fsync's
	// milliseconds under SyncAlways.
	writeBuckets  = prometheus.ExponentialBuckets(1e-6, 4, 11)  // 1µs .. 1.05s
	fsyncBuckets  = prometheus.ExponentialBuckets(10e-6, 4, 10) // 10µs .. 2.6s
	recordBuckets = prometheus.ExponentialBuckets(1, 2, 13)     // 1 .. 4096 records
	byteBuckets   = prometheus.ExponentialBuckets(64, 4, 10)    // 64 B .. 16 MiB
	// Snapshots and recovery take milliseconds to minutes.
	longBuckets         = prometheus.ExponentialBuckets(1e-3, 4, 9)  // 1ms .. 65s
	snapshotByteBuckets = prometheus.ExponentialBuckets(4096, 4, 11) // 4 KiB .. 4 GiB
)

// Recorder implements engine.Recorder with Prometheus histograms, and is a
// prometheus.Collector of them. Its metrics (with the default namespace):
//
//	sesscache_get_duration_seconds{result="hit|miss"}       histogram, sampled
//	sesscache_write_duration_seconds{op}                    histogram
//	sesscache_write_errors_total{op,error}                  counter; error is ErrorKind's
//	sesscache_log_write_records                             histogram: records per log write
//	sesscache_log_write_bytes                               histogram: bytes per log write
//	sesscache_log_fsync_duration_seconds                    histogram
//	sesscache_snapshot_duration_seconds                     histogram, failed ones included
//	sesscache_snapshot_size_bytes                           histogram of snapshots written
//	sesscache_snapshot_errors_total                         counter
//	sesscache_recovery_duration_seconds                     histogram, one per Open
//	sesscache_evictions_total                               counter
//
// op is create, update, delete, rotate or revoke. evictions_total counts
// what the Collector's sessions_ended_total{cause="evicted"} does; it is
// here so that the Recorder alone is complete.
type Recorder struct {
	getHit, getMiss      prometheus.Observer
	writes               *prometheus.HistogramVec
	writeErrors          *prometheus.CounterVec
	logRecords, logBytes prometheus.Histogram
	fsync                prometheus.Histogram
	snapshot             prometheus.Histogram
	snapshotBytes        prometheus.Histogram
	snapshotErrors       prometheus.Counter
	recovery             prometheus.Histogram
	evictions            prometheus.Counter
	// byOp holds the write histogram of each known op, looked up once
	// rather than on every write.
	byOp       [8]prometheus.Observer
	collectors []prometheus.Collector
}

var (
	_ engine.Recorder      = (*Recorder)(nil)
	_ prometheus.Collector = (*Recorder)(nil)
)

// NewRecorder returns a Recorder. Pass it in engine.Options.Recorder and
// register it; one Recorder per engine (use Options.ConstLabels to tell
// them apart).
func NewRecorder(o Options) *Recorder {
	ns := o.namespace()
	hist := func(name, help string, buckets []float64) prometheus.HistogramOpts {
		return prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, Buckets: buckets, ConstLabels: o.ConstLabels}
	}
	get := prometheus.NewHistogramVec(hist("get_duration_seconds",
		"Lookup latency, sampled: one lookup in engine.GetSampleEvery.", getBuckets), []string{"result"})
	r := &Recorder{
		getHit:  get.WithLabelValues("hit"),
		getMiss: get.WithLabelValues("miss"),
		writes: prometheus.NewHistogramVec(hist("write_duration_seconds",
			"Write call latency, the wait for the log included; failed writes included.", writeBuckets), []string{"op"}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "write_errors_total",
			Help: "Write calls that failed, by operation and kind of error.", ConstLabels: o.ConstLabels}, []string{"op", "error"}),
		logRecords: prometheus.NewHistogram(hist("log_write_records",
			"Records per write of the log: the group commit's batch size.", recordBuckets)),
		logBytes: prometheus.NewHistogram(hist("log_write_bytes",
			"Bytes per write of the log.", byteBuckets)),
		fsync: prometheus.NewHistogram(hist("log_fsync_duration_seconds",
			"Latency of fsyncs of the log's data.", fsyncBuckets)),
		snapshot: prometheus.NewHistogram(hist("snapshot_duration_seconds",
			"Time to write a snapshot, fsyncs included; failed snapshots included.", longBuckets)),
		snapshotBytes: prometheus.NewHistogram(hist("snapshot_size_bytes",
			"Size of each snapshot written.", snapshotByteBuckets)),
		snapshotErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "snapshot_errors_total",
			Help: "Snapshots that failed.", ConstLabels: o.ConstLabels}),
		recovery: prometheus.NewHistogram(hist("recovery_duration_seconds",
			"Time Open spent recovering the data directory.", longBuckets)),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "evictions_total",
			Help: "Sessions evicted by a cap (MaxSessions, MaxAnonymousSessions, MaxSessionsPerUser).", ConstLabels: o.ConstLabels}),
	}
	// Every known op is created up front, so that each series exists at
	// zero before its first write and rate() has a starting point.
	for _, op := range []engine.WriteOp{engine.OpCreate, engine.OpUpdate, engine.OpDelete, engine.OpRotate, engine.OpRevoke} {
		r.byOp[op] = r.writes.WithLabelValues(op.String())
	}
	r.collectors = []prometheus.Collector{get, r.writes, r.writeErrors, r.logRecords, r.logBytes,
		r.fsync, r.snapshot, r.snapshotBytes, r.snapshotErrors, r.recovery, r.evictions}
	return r
}

// Describe implements prometheus.Collector.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range r.collectors {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	for _, c := range r.collectors {
		c.Collect(ch)
	}
}

// ObserveGet implements engine.Recorder.
func (r *Recorder) ObserveGet(d time.Duration, found bool) {
	if found {
		r.getHit.Observe(d.Seconds())
	} else {
		r.getMiss.Observe(d.Seconds())
	}
}

// ObserveWrite implements engine.Recorder.
func (r *Recorder) ObserveWrite(op engine.WriteOp, d time.Duration, err error) {
	var h prometheus.Observer
	if int(op) < len(r.byOp) {
		h = r.byOp[op]
	}
	if h == nil {
		// An op newer than this package: its own series, not a lost one.
		h = r.writes.WithLabelValues(op.String())
	}
	h.Observe(d.Seconds())
	if err != nil {
		r.writeErrors.WithLabelValues(op.String(), ErrorKind(err)).Inc()
	}
}

// ObserveLogWrite implements engine.Recorder.
func (r *Recorder) ObserveLogWrite(records uint64, bytes int) {
	r.logRecords.Observe(float64(records))
	r.logBytes.Observe(float64(bytes))
}

// ObserveFsync implements engine.Recorder.
func (r *Recorder) ObserveFsync(d time.Duration) { r.fsync.Observe(d.Seconds()) }

// ObserveSnapshot implements engine.Recorder. A failed snapshot's time is
// counted, since it was spent; its size is not, since nothing was kept.
func (r *Recorder) ObserveSnapshot(d time.Duration, bytes int64, err error) {
	r.snapshot.Observe(d.Seconds())
	if err != nil {
		r.snapshotErrors.Inc()
		return
	}
	r.snapshotBytes.Observe(float64(bytes))
}

// ObserveRecovery implements engine.Recorder. The sessions recovered are
// the Collector's sesscache_last_recovery_sessions.
func (r *Recorder) ObserveRecovery(d time.Duration, _ int) { r.recovery.Observe(d.Seconds()) }

// ObserveEviction implements engine.Recorder.
func (r *Recorder) ObserveEviction() { r.evictions.Inc() }

// ErrorKind names the kind of an engine error in a few fixed words, the
// error label of sesscache_write_errors_total: a label made of error text
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
