package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// runConfig is the run command's flags. It is also the "config" object of
// the JSON report, so durations are in nanoseconds there.
type runConfig struct {
	Sessions         int           `json:"sessions"`
	Duration         time.Duration `json:"duration_ns"`
	Read             float64       `json:"read_fraction"`
	Dist             string        `json:"distribution"`
	ZipfS            float64       `json:"zipf_s,omitempty"`
	Data             int           `json:"data_bytes"`
	Workers          int           `json:"workers"`
	PreloadWriters   int           `json:"preload_writers"`
	Sync             string        `json:"sync"`
	NoMap            bool          `json:"no_map,omitempty"`
	Dir              string        `json:"dir,omitempty"`
	SnapshotEvery    time.Duration `json:"snapshot_every_ns,omitempty"`
	SnapshotInterval time.Duration `json:"snapshot_interval_ns,omitempty"`
	SnapshotAfter    int64         `json:"snapshot_after_bytes,omitempty"`
	Idle             time.Duration `json:"idle_timeout_ns"`
	Absolute         time.Duration `json:"absolute_timeout_ns"`
	Seed             uint64        `json:"seed"`

	policy engine.SyncPolicy
	memory bool
	out    output
	trace  string
}

const runAbout = `
Preload sessions, then run a timed mix of Get and Update from every worker,
and report throughput and latency percentiles per operation, heap bytes per
session, garbage-collector cost and, on disk, the log's bytes and fsyncs.

By default the engine is persistent: a temporary data directory, removed
afterwards, with the engine's default sync policy (everysec) and snapshot
rules. -sync memory runs the in-memory engine; -dir keeps the data.

Snapshots: by default the engine takes them by its own rules (see
-snapshot-interval and -snapshot-after) and the report lists those that ran.
-snapshot-every turns those rules off and snapshots from the harness on a
timer instead, so each operation's latency is split by whether a snapshot
was running.

Set -idle or -absolute short (such as -idle 3s) to have the janitor reap
sessions during the workload; Gets of reaped sessions count as misses.`

func parseRunCommand(args []string, stderr io.Writer) (func(context.Context, io.Writer) error, error) {
	c, err := parseRun(args, stderr)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, stdout io.Writer) error { return runBenchmark(ctx, c, stdout) }, nil
}

func parseRun(args []string, stderr io.Writer) (runConfig, error) {
	var c runConfig
	fs := newFlagSet("run", runAbout, stderr)
	fs.IntVar(&c.Sessions, "sessions", 1_000_000, "sessions to preload")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "length of the timed workload")
	fs.Float64Var(&c.Read, "read", 0.9, "fraction of operations that are Gets; the rest are Updates of the drawn session")
	fs.StringVar(&c.Dist, "dist", "zipf", "key distribution: zipf or uniform")
	fs.Float64Var(&c.ZipfS, "zipf-s", 1.01, "Zipf skew, greater than 1; larger is more skewed")
	fs.IntVar(&c.Data, "data", 200, "bytes of data per session")
	fs.IntVar(&c.Workers, "workers", runtime.GOMAXPROCS(0), "concurrent workers in the timed workload (a closed loop: each waits for its call)")
	fs.IntVar(&c.PreloadWriters, "preload-writers", 0, "concurrent writers during preload (0: the workers, or 256 with -sync always so fsyncs are shared)")
	fs.StringVar(&c.Sync, "sync", "everysec", "durability: always, everysec, no (as Redis's appendfsync), or memory for the in-memory engine")
	fs.BoolVar(&c.NoMap, "no-map", false, "write the log's segments with write calls instead of mapping them (engine Options.NoMap)")
	fs.StringVar(&c.Dir, "dir", "", "data directory `PATH` to use and keep (default: a temporary one, removed afterwards)")
	fs.DurationVar(&c.SnapshotEvery, "snapshot-every", 0, "snapshot from the harness this often during the workload and split latencies by snapshot running or not (turns off the engine's own snapshot rules)")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", 0, "engine Options.SnapshotInterval (0: engine default, 1h; negative: never on a timer); it counts from the last snapshot, so on a fresh directory the first comes from the size rule")
	after := byteSize(0)
	fs.Var(&after, "snapshot-after", "engine Options.SnapshotAfterBytes: snapshot after `SIZE` of log, such as 64MiB (0: engine default, Redis's rule of 64 MiB and the last snapshot's size; negative: never)")
	fs.DurationVar(&c.Idle, "idle", 0, "idle timeout of every session (0: the engine's default, 30m)")
	fs.DurationVar(&c.Absolute, "absolute", 0, "absolute timeout of every session (0: the engine's default, 12h)")
	fs.Uint64Var(&c.Seed, "seed", 42, "seed of the key draws and of the Get/Update mix")
	fs.StringVar(&c.trace, "trace", "", "write an execution trace (runtime/trace) of the timed workload to `FILE`, with every operation slower than 1ms logged in it (category \"slow-op\"), to find what the slowest ones waited for")
	c.out.register(fs, true)
	if err := fs.parse(args); err != nil {
		return c, err
	}
	c.SnapshotAfter = int64(after)
	var err error
	if c.policy, c.memory, err = parseSync(c.Sync); err != nil {
		return c, badUsage(stderr, "run", "%v", err)
	}
	switch {
	case c.Sessions < 1:
		return c, badUsage(stderr, "run", "-sessions must be at least 1")
	case int64(c.Sessions) > 1<<31:
		return c, badUsage(stderr, "run", "-sessions must be at most %d", int64(1)<<31)
	case c.Duration <= 0:
		return c, badUsage(stderr, "run", "-duration must be positive")
	case c.Read < 0 || c.Read > 1:
		return c, badUsage(stderr, "run", "-read must be between 0 and 1")
	case c.Dist != "zipf" && c.Dist != "uniform":
		return c, badUsage(stderr, "run", "-dist must be zipf or uniform, not %q", c.Dist)
	case c.Dist == "zipf" && c.ZipfS <= 1:
		return c, badUsage(stderr, "run", "-zipf-s must be greater than 1")
	case c.Data < 0:
		return c, badUsage(stderr, "run", "-data must not be negative")
	case c.Workers < 1:
		return c, badUsage(stderr, "run", "-workers must be at least 1")
	case c.PreloadWriters < 0:
		return c, badUsage(stderr, "run", "-preload-writers must not be negative")
	case c.Idle < 0 || c.Absolute < 0:
		return c, badUsage(stderr, "run", "-idle and -absolute must not be negative")
	case c.SnapshotEvery < 0:
		return c, badUsage(stderr, "run", "-snapshot-every must not be negative")
	case c.memory && c.Dir != "":
		return c, badUsage(stderr, "run", "-dir needs a persistent engine, not -sync memory")
	case c.memory && (c.SnapshotEvery != 0 || c.SnapshotInterval != 0 || c.SnapshotAfter != 0):
		return c, badUsage(stderr, "run", "the in-memory engine takes no snapshots: drop the -snapshot flags or pick a -sync policy")
	case c.SnapshotEvery != 0 && (c.SnapshotInterval != 0 || c.SnapshotAfter != 0):
		return c, badUsage(stderr, "run", "-snapshot-every replaces the engine's snapshot rules; do not combine it with -snapshot-interval or -snapshot-after")
	}
	if c.Dist != "zipf" {
		c.ZipfS = 0
	}
	if c.PreloadWriters == 0 {
		c.PreloadWriters = c.Workers
		if !c.memory && c.policy == engine.SyncAlways {
			// Each Create waits for an fsync: only many writers sharing
			// each one (group commit) load a million in reasonable time.
			c.PreloadWriters = 256
		}
	}
	return c, nil
}

// quietLogger passes on the engine's warnings and errors (a failed
// snapshot, a failed write) but not its routine recovery report.
func quietLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// dataDir returns the directory to run in and a function that removes it if
// it is temporary. An empty directory means the in-memory engine.
func dataDir(memory bool, dir string) (string, func() error, error) {
	if memory {
		return "", func() error { return nil }, nil
	}
	if dir != "" {
		return dir, func() error { return nil }, nil
	}
	tmp, err := os.MkdirTemp("", "sessbench-")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() error { return os.RemoveAll(tmp) }, nil
}

// engineOptions is the engine configuration of a run.
func (c runConfig) engineOptions(dir string) engine.Options {
	o := engine.Options{
		Dir:                dir,
		Sync:               c.policy,
		NoMap:              c.NoMap,
		IdleTimeout:        c.Idle,
		AbsoluteTimeout:    c.Absolute,
		SnapshotInterval:   c.SnapshotInterval,
		SnapshotAfterBytes: c.SnapshotAfter,
		Logger:             quietLogger(os.Stderr),
	}
	if c.SnapshotEvery > 0 {
		o.SnapshotInterval, o.SnapshotAfterBytes = -1, -1
	}
	return o
}

// storageLabel describes where the run's engine keeps its data.
func (c runConfig) storageLabel() string {
	switch {
	case c.memory:
		return "in-memory engine"
	case c.Dir != "":
		return fmt.Sprintf("persistent engine in %s (kept), sync %s%s", c.Dir, c.Sync, c.logMode())
	}
	return fmt.Sprintf("persistent engine in a temporary directory (removed afterwards), sync %s%s", c.Sync, c.logMode())
}

func (c runConfig) logMode() string {
	if c.NoMap {
		return ", log written (-no-map)"
	}
	return ""
}

// runBenchmark runs the run command and writes its report.
func runBenchmark(ctx context.Context, c runConfig, stdout io.Writer) (err error) {
	start := time.Now()
	dir, cleanup, err := dataDir(c.memory, c.Dir)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := cleanup(); err == nil && rerr != nil {
			err = fmt.Errorf("removing the temporary directory: %w", rerr)
		}
	}()
	eng, err := engine.Open(c.engineOptions(dir))
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = eng.Close() // an earlier error is the one to report
		}
	}()

	prog := newProgress(stdout)
	defer prog.stop()
	res, err := measure(ctx, eng, c, prog)
	if err != nil {
		return err
	}
	prog.stop()

	t := time.Now()
	closed = true
	if err := eng.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	res.Timing.CloseNs = time.Since(t)
	t = time.Now()
	if err := cleanup(); err != nil {
		return fmt.Errorf("removing the temporary directory: %w", err)
	}
	cleanup = func() error { return nil }
	res.Timing.CleanupNs = time.Since(t)
	res.Timing.TotalNs = time.Since(start)

	if c.out.svg != "" {
		if err := writeSVGFile(c.out.svg, latencyPlot(c, res)); err != nil {
			return err
		}
	}
	if c.out.json {
		return writeJSON(stdout, res)
	}
	printRun(stdout, res)
	return nil
}
