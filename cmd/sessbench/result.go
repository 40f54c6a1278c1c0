package main

import (
	"encoding/json"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// The JSON report: one document per command. Durations are integer
// nanoseconds in fields ending in _ns, sizes are bytes, rates are per
// second.

// runResult is everything the run command measured.
type runResult struct {
	Command     string         `json:"command"`
	Config      runConfig      `json:"config"`
	Environment environment    `json:"environment"`
	Storage     string         `json:"storage"`
	Preload     preloadResult  `json:"preload"`
	Workload    workloadResult `json:"workload"`
	// Ops holds the latency of each operation over the whole workload, then
	// "all" operations together.
	Ops []opResult `json:"ops"`
	// SnapshotSplit is present with -snapshot-every.
	SnapshotSplit *snapshotSplit  `json:"snapshot_split,omitempty"`
	Snapshots     []snapshotEvent `json:"snapshots"`
	Memory        memoryResult    `json:"memory"`
	GC            gcResult        `json:"gc"`
	WAL           *walResult      `json:"wal,omitempty"`
	Expiry        expiryResult    `json:"expiry"`
	Timing        timing          `json:"timing"`

	// plot holds the histograms behind Ops and SnapshotSplit for -svg.
	plot []plotSeries
}

type environment struct {
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	// LoadAverage is /proc/loadavg's 1, 5 and 15 minute figures when the
	// run started, where there is one: a loaded machine gives slower,
	// noisier numbers.
	LoadAverage string `json:"load_average,omitempty"`
}

func currentEnvironment() environment {
	env := environment{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			env.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	return env
}

type preloadResult struct {
	Sessions      int           `json:"sessions"`
	Writers       int           `json:"writers"`
	DurationNs    time.Duration `json:"duration_ns"`
	CreatesPerSec float64       `json:"creates_per_sec"`
}

type workloadResult struct {
	DurationNs time.Duration `json:"duration_ns"`
	Ops        uint64        `json:"ops"`
	OpsPerSec  float64       `json:"ops_per_sec"`
}

// latency summarizes one histogram. Percentiles are bucket upper bounds,
// within about 3% of the exact value; the maximum is exact.
type latency struct {
	Count     uint64  `json:"count"`
	OpsPerSec float64 `json:"ops_per_sec"`
	MeanNs    float64 `json:"mean_ns"`
	P50Ns     uint64  `json:"p50_ns"`
	P90Ns     uint64  `json:"p90_ns"`
	P99Ns     uint64  `json:"p99_ns"`
	P999Ns    uint64  `json:"p99_9_ns"`
	MaxNs     uint64  `json:"max_ns"`
}

func summarize(h *hist, over time.Duration) latency {
	l := latency{Count: h.n, MeanNs: h.mean(), P50Ns: h.quantile(.5), P90Ns: h.quantile(.9),
		P99Ns: h.quantile(.99), P999Ns: h.quantile(.999), MaxNs: h.max}
	if over > 0 {
		l.OpsPerSec = float64(h.n) / over.Seconds()
	}
	return l
}

type opResult struct {
	Name string `json:"name"`
	latency
	// Misses counts calls that found no session: it had expired or been
	// reaped.
	Misses uint64 `json:"misses"`
}

// snapshotSplit compares each operation's latency while a harness snapshot
// ran with its latency while none did, in the same run.
type snapshotSplit struct {
	SnapshotRunningNs time.Duration `json:"snapshot_running_ns"`
	QuietNs           time.Duration `json:"quiet_ns"`
	// During and Quiet hold one entry per operation, in the order of Ops.
	During []opResult `json:"during_snapshot"`
	Quiet  []opResult `json:"without_snapshot"`
	// GetP99Ratio and GetP999Ratio are Get's p99 and p99.9 during a
	// snapshot over the same without one; 0 when either side is empty.
	GetP99Ratio  float64 `json:"get_p99_ratio"`
	GetP999Ratio float64 `json:"get_p99_9_ratio"`
}

type memoryResult struct {
	// HeapBytes is the live heap the preloaded sessions added, after a full
	// collection, without the harness's own list of IDs.
	HeapBytes       int64   `json:"heap_bytes"`
	BytesPerSession float64 `json:"heap_bytes_per_session"`
	DataBytes       int     `json:"data_bytes_per_session"`
}

type gcResult struct {
	Cycles       uint64        `json:"cycles"`
	PauseTotalNs time.Duration `json:"pause_total_ns"`
	// CPUFraction is the garbage collector's share of all CPU time the
	// process used during the workload (runtime/metrics).
	CPUFraction float64 `json:"cpu_fraction"`
}

type walCounters struct {
	Records         uint64  `json:"records"`
	BytesAppended   uint64  `json:"bytes_appended"`
	Writes          uint64  `json:"writes"`
	Fsyncs          uint64  `json:"fsyncs"`
	RecordsPerFsync float64 `json:"records_per_fsync"`
}

func walDelta(a, b engine.LogStats) walCounters {
	d := walCounters{Records: b.Records - a.Records, BytesAppended: b.BytesAppended - a.BytesAppended,
		Writes: b.Writes - a.Writes, Fsyncs: b.Fsyncs - a.Fsyncs}
	if d.Fsyncs > 0 {
		d.RecordsPerFsync = float64(d.Records) / float64(d.Fsyncs)
	}
	return d
}

type walResult struct {
	Preload  walCounters `json:"preload"`
	Workload walCounters `json:"workload"`
	// Segments, DiskBytes and SnapshotBytes describe the data directory at
	// the end of the workload: log segments, log bytes, the latest snapshot.
	Segments      int   `json:"segments"`
	DiskBytes     int64 `json:"disk_bytes"`
	SnapshotBytes int64 `json:"snapshot_bytes"`
}

type expiryResult struct {
	IdleTimeoutNs     time.Duration `json:"idle_timeout_ns"`
	AbsoluteTimeoutNs time.Duration `json:"absolute_timeout_ns"`
	// Expired and Misses are the engine's counters over the workload:
	// sessions found or reaped past their deadline, and Gets that found
	// no live session.
	Expired     uint64 `json:"expired"`
	Misses      uint64 `json:"misses"`
	LiveAtStart int    `json:"live_at_start"`
	LiveAtEnd   int    `json:"live_at_end"`
}

type timing struct {
	PreloadNs  time.Duration `json:"preload_ns"`
	WorkloadNs time.Duration `json:"workload_ns"`
	CloseNs    time.Duration `json:"close_ns"`
	CleanupNs  time.Duration `json:"cleanup_ns"`
	TotalNs    time.Duration `json:"total_ns"`
}

// summarize fills Workload, Ops and, with -snapshot-every, SnapshotSplit
// from the merged worker histograms.
func (res *runResult) summarize(t *worker, elapsed, snapRunning time.Duration) {
	var all hist
	var perOp [numOps]hist
	for op := range numOps {
		for ph := range numPhases {
			perOp[op].merge(&t.h[ph][op])
		}
		all.merge(&perOp[op])
	}
	for op := range numOps {
		if perOp[op].n == 0 {
			continue
		}
		res.Ops = append(res.Ops, opResult{Name: opNames[op], latency: summarize(&perOp[op], elapsed), Misses: t.misses[op]})
		if res.Config.SnapshotEvery == 0 {
			res.plot = append(res.plot, plotSeries{name: opNames[op], h: &perOp[op]})
		}
	}
	res.Ops = append(res.Ops, opResult{Name: "all", latency: summarize(&all, elapsed), Misses: t.misses[opGet] + t.misses[opUpdate]})
	res.Workload = workloadResult{DurationNs: elapsed, Ops: all.n, OpsPerSec: float64(all.n) / elapsed.Seconds()}
	if res.Config.SnapshotEvery == 0 {
		return
	}
	sp := &snapshotSplit{SnapshotRunningNs: snapRunning, QuietNs: elapsed - snapRunning}
	for op := range numOps {
		if perOp[op].n == 0 {
			continue
		}
		during, quiet := &t.h[phaseSnapshot][op], &t.h[phaseQuiet][op]
		sp.During = append(sp.During, opResult{Name: opNames[op], latency: summarize(during, sp.SnapshotRunningNs)})
		sp.Quiet = append(sp.Quiet, opResult{Name: opNames[op], latency: summarize(quiet, sp.QuietNs)})
		if quiet.n > 0 {
			res.plot = append(res.plot, plotSeries{name: opNames[op] + ", no snapshot", h: quiet})
		}
		if during.n > 0 {
			res.plot = append(res.plot, plotSeries{name: opNames[op] + ", snapshot running", h: during})
		}
		if op == opGet && during.n > 0 && quiet.n > 0 {
			sp.GetP99Ratio = float64(during.quantile(.99)) / float64(quiet.quantile(.99))
			sp.GetP999Ratio = float64(during.quantile(.999)) / float64(quiet.quantile(.999))
		}
	}
	res.SnapshotSplit = sp
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
