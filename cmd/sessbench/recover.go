package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// recoverConfig is the recover command's flags, and the "config" of its
// JSON report.
type recoverConfig struct {
	Sessions int    `json:"sessions"`
	Data     int    `json:"data_bytes"`
	Tail     int    `json:"tail_records"`
	From     string `json:"from"`
	Repeat   int    `json:"repeat"`
	Writers  int    `json:"writers"`
	Dir      string `json:"dir,omitempty"`

	out output
}

const recoverAbout = `
Write a data set, close the engine, and time a fresh Open: how long a
restart takes before the first request can be served.

The data set is -sessions Creates of -data bytes each (sync no: the policy
changes how writes wait, not what recovery reads). With -from both, the
default, one data set serves both figures: Open is timed on the log alone,
then the last recovered engine takes a snapshot (timed too), -tail Updates of
random sessions land in the log after it, and Open is timed again, now from
the snapshot plus that tail. Each Open is repeated -repeat times; the report
gives the median and sessions/s. The engine's own snapshot rules are off
throughout, so the files are exactly what is described.

Open reads files that were just written, so they are in the page cache: the
figures leave out the disk's read speed.`

func parseRecoverCommand(args []string, stderr io.Writer) (func(context.Context, io.Writer) error, error) {
	c, err := parseRecover(args, stderr)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, stdout io.Writer) error { return runRecover(ctx, c, stdout) }, nil
}

func parseRecover(args []string, stderr io.Writer) (recoverConfig, error) {
	var c recoverConfig
	fs := newFlagSet("recover", recoverAbout, stderr)
	fs.IntVar(&c.Sessions, "sessions", 1_000_000, "sessions in the data set")
	fs.IntVar(&c.Data, "data", 200, "bytes of data per session")
	fs.IntVar(&c.Tail, "tail", 100_000, "Updates logged after the snapshot (the log tail replayed on top of it)")
	fs.StringVar(&c.From, "from", "both", "what to recover from: wal (the log alone), snapshot (a snapshot plus the tail), or both")
	fs.IntVar(&c.Repeat, "repeat", 3, "times to time each Open")
	fs.IntVar(&c.Writers, "writers", runtime.GOMAXPROCS(0), "concurrent writers building the data set")
	fs.StringVar(&c.Dir, "dir", "", "build in directory `PATH`, which must be empty or absent, and keep it (default: a temporary one, removed afterwards)")
	c.out.register(fs, false)
	if err := fs.parse(args); err != nil {
		return c, err
	}
	switch {
	case c.Sessions < 1:
		return c, badUsage(stderr, "recover", "-sessions must be at least 1")
	case c.Data < 0:
		return c, badUsage(stderr, "recover", "-data must not be negative")
	case c.Tail < 0:
		return c, badUsage(stderr, "recover", "-tail must not be negative")
	case c.From != "both" && c.From != "wal" && c.From != "snapshot":
		return c, badUsage(stderr, "recover", "-from must be wal, snapshot or both, not %q", c.From)
	case c.Repeat < 1:
		return c, badUsage(stderr, "recover", "-repeat must be at least 1")
	case c.Writers < 1:
		return c, badUsage(stderr, "recover", "-writers must be at least 1")
	}
	if c.Dir != "" {
		if ents, err := os.ReadDir(c.Dir); err == nil && len(ents) > 0 {
			return c, badUsage(stderr, "recover", "-dir %s is not empty: recover builds its own data set", c.Dir)
		}
	}
	return c, nil
}

// recoverResult is everything the recover command measured.
type recoverResult struct {
	Command     string        `json:"command"`
	Config      recoverConfig `json:"config"`
	Environment environment   `json:"environment"`
	Build       buildResult   `json:"build"`
	// Snapshot and Tail are present when recovering from a snapshot.
	Snapshot   *snapshotBuild   `json:"snapshot,omitempty"`
	Tail       *tailResult      `json:"tail,omitempty"`
	Recoveries []recoveryResult `json:"recoveries"`
	TotalNs    time.Duration    `json:"total_ns"`
}

type buildResult struct {
	Sessions      int           `json:"sessions"`
	DurationNs    time.Duration `json:"duration_ns"`
	CreatesPerSec float64       `json:"creates_per_sec"`
	LogBytes      int64         `json:"log_bytes"`
	LogSegments   int           `json:"log_segments"`
}

type snapshotBuild struct {
	// DurationNs is the wall time of Engine.Snapshot; the engine's own
	// figure, which starts after it waits for its lock, is EngineNs.
	DurationNs time.Duration `json:"duration_ns"`
	EngineNs   time.Duration `json:"engine_duration_ns"`
	Bytes      int64         `json:"bytes"`
	Sessions   uint64        `json:"sessions"`
	// Engine says which engine took it: "building" (sessions created in
	// this process) or "recovered" (loaded from the log, keyed by digest).
	Engine string `json:"engine"`
}

type tailResult struct {
	Records    uint64        `json:"records"`
	Bytes      uint64        `json:"bytes"`
	DurationNs time.Duration `json:"duration_ns"`
}

type recoveryResult struct {
	// From is "wal" or "snapshot+tail".
	From             string          `json:"from"`
	Sessions         int             `json:"sessions"`
	SnapshotSessions int             `json:"snapshot_sessions"`
	SnapshotBytes    int64           `json:"snapshot_bytes"`
	LogRecords       uint64          `json:"log_records"`
	LogBytes         int64           `json:"log_bytes"`
	OpenNs           []time.Duration `json:"open_ns"`
	MedianNs         time.Duration   `json:"median_ns"`
	MinNs            time.Duration   `json:"min_ns"`
	MaxNs            time.Duration   `json:"max_ns"`
	SessionsPerSec   float64         `json:"sessions_per_sec"`
}

// recoverOptions opens the data set with the engine's snapshot rules off:
// the default size rule would otherwise snapshot a freshly recovered log of
// more than 64 MiB within a second, and change what the next Open reads.
func recoverOptions(dir string) engine.Options {
	return engine.Options{Dir: dir, Sync: engine.SyncNo, SnapshotInterval: -1, SnapshotAfterBytes: -1, Logger: quietLogger(os.Stderr)}
}

func runRecover(ctx context.Context, c recoverConfig, stdout io.Writer) (err error) {
	start := time.Now()
	dir, cleanup, err := dataDir(false, c.Dir)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := cleanup(); err == nil && rerr != nil {
			err = fmt.Errorf("removing the temporary directory: %w", rerr)
		}
	}()
	prog := newProgress(stdout)
	defer prog.stop()
	res := &recoverResult{Command: "recover", Config: c, Environment: currentEnvironment()}

	eng, err := engine.Open(recoverOptions(dir))
	if err != nil {
		return err
	}
	defer func() {
		if eng != nil {
			_ = eng.Close() // an earlier error is the one to report
		}
	}()
	ids, err := build(ctx, eng, c, &res.Build, prog)
	if err != nil {
		return err
	}
	takenOn := "building"
	if c.From != "snapshot" {
		err := eng.Close()
		eng = nil
		if err != nil {
			return err
		}
		// The last recovered engine stays open for the snapshot.
		var r recoveryResult
		if eng, r, err = timeOpens(ctx, dir, "wal", c.Sessions, c.Repeat, c.From == "both", prog); err != nil {
			return err
		}
		res.Recoveries = append(res.Recoveries, r)
		takenOn = "recovered"
	}
	if c.From != "wal" {
		prog.show(func() string { return "snapshot of " + si(float64(c.Sessions)) + " sessions" })
		t := time.Now()
		st, err := eng.Snapshot(context.Background())
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		res.Snapshot = &snapshotBuild{DurationNs: time.Since(t), EngineNs: st.Duration, Bytes: st.Bytes, Sessions: st.Sessions, Engine: takenOn}
		if res.Tail, err = writeTail(ctx, eng, ids, c, prog); err != nil {
			return err
		}
		err = eng.Close()
		eng = nil
		if err != nil {
			return err
		}
		var r recoveryResult
		if _, r, err = timeOpens(ctx, dir, "snapshot+tail", c.Sessions, c.Repeat, false, prog); err != nil {
			return err
		}
		res.Recoveries = append(res.Recoveries, r)
	}
	prog.stop()
	if err := cleanup(); err != nil {
		return fmt.Errorf("removing the temporary directory: %w", err)
	}
	cleanup = func() error { return nil }
	res.TotalNs = time.Since(start)
	if c.out.json {
		return writeJSON(stdout, res)
	}
	printRecover(stdout, res)
	return nil
}

// build creates the data set's sessions and returns their IDs.
func build(ctx context.Context, eng *engine.Engine, c recoverConfig, b *buildResult, prog *progress) ([]string, error) {
	ids := make([]string, c.Sessions)
	var done atomic.Int64
	t := time.Now()
	prog.show(func() string {
		return fmt.Sprintf("build    %s / %s sessions  %.1f s", si(float64(done.Load())), si(float64(c.Sessions)), time.Since(t).Seconds())
	})
	err := parallel(ctx, c.Sessions, c.Writers, &done, func(i int, data []byte) error {
		s, err := eng.Create(context.Background(), engine.CreateOptions{Data: data})
		ids[i] = s.ID()
		return err
	}, c.Data)
	prog.stop()
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	wst := eng.Stats().Log
	*b = buildResult{Sessions: c.Sessions, DurationNs: time.Since(t), LogBytes: wst.DiskBytes, LogSegments: wst.Segments}
	b.CreatesPerSec = float64(c.Sessions) / b.DurationNs.Seconds()
	return ids, nil
}

// writeTail updates random sessions, each with fresh data, c.Tail times.
func writeTail(ctx context.Context, eng *engine.Engine, ids []string, c recoverConfig, prog *progress) (*tailResult, error) {
	before := eng.Stats().Log
	var done atomic.Int64
	t := time.Now()
	prog.show(func() string {
		return fmt.Sprintf("tail     %s / %s updates", si(float64(done.Load())), si(float64(c.Tail)))
	})
	err := parallel(ctx, c.Tail, c.Writers, &done, func(i int, data []byte) error {
		data[0] = byte(i) // every tail record is a new state of its session
		_, err := eng.Update(context.Background(), ids[rand.IntN(len(ids))], 0, func(engine.Session) ([]byte, error) { return data, nil })
		return err
	}, max(c.Data, 1))
	prog.stop()
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	after := eng.Stats().Log
	return &tailResult{Records: after.Records - before.Records, Bytes: after.BytesAppended - before.BytesAppended, DurationNs: time.Since(t)}, nil
}

// parallel calls fn for i in [0, n) from the given number of goroutines,
// each with its own data buffer of size bytes, and returns the first error.
func parallel(ctx context.Context, n, workers int, done *atomic.Int64, fn func(i int, data []byte) error, size int) error {
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	workers = max(min(workers, n), 1)
	per := (n + workers - 1) / workers
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := make([]byte, size)
			for i := lo; i < hi; i++ {
				if (i-lo)&1023 == 1023 {
					done.Add(1024)
					if ctx.Err() != nil || firstErr.Load() != nil {
						return
					}
				}
				if err := fn(i, data); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return nil
}

// timeOpens opens dir repeat times, checks that each recovers want
// sessions, and returns the timings; with keep, the last engine is left
// open and returned.
func timeOpens(ctx context.Context, dir, from string, want, repeat int, keep bool, prog *progress) (*engine.Engine, recoveryResult, error) {
	r := recoveryResult{From: from}
	var n atomic.Int64
	prog.show(func() string { return fmt.Sprintf("open     %s: %d / %d", from, n.Load()+1, repeat) })
	defer prog.stop()
	for i := range repeat {
		if ctx.Err() != nil {
			return nil, r, errors.New("interrupted")
		}
		runtime.GC() // the previous engine's heap must not be collected on this Open's time
		t := time.Now()
		eng, err := engine.Open(recoverOptions(dir))
		took := time.Since(t)
		if err != nil {
			return nil, r, fmt.Errorf("recovering from %s: %w", from, err)
		}
		r.OpenNs = append(r.OpenNs, took)
		st := eng.Stats().Recovery
		r.Sessions, r.SnapshotSessions, r.SnapshotBytes = st.Sessions, st.SnapshotSessions, st.SnapshotBytes
		r.LogRecords, r.LogBytes = st.Records, st.Bytes
		if st.Sessions != want {
			_ = eng.Close()
			return nil, r, fmt.Errorf("recovering from %s: %d sessions, want %d", from, st.Sessions, want)
		}
		n.Add(1)
		if keep && i == repeat-1 {
			r.summarize()
			return eng, r, nil
		}
		if err := eng.Close(); err != nil {
			return nil, r, err
		}
	}
	r.summarize()
	return nil, r, nil
}

func (r *recoveryResult) summarize() {
	s := slices.Clone(r.OpenNs)
	slices.Sort(s)
	r.MinNs, r.MaxNs = s[0], s[len(s)-1]
	r.MedianNs = s[len(s)/2]
	if len(s)%2 == 0 {
		r.MedianNs = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	r.SessionsPerSec = float64(r.Sessions) / r.MedianNs.Seconds()
}

// printRecover writes the recover command's report for people.
func printRecover(out io.Writer, r *recoverResult) {
	c := r.Config
	fmt.Fprintf(out, "sessbench recover: %d sessions × %d B, each Open timed %d times\n", c.Sessions, c.Data, c.Repeat)
	printEnvironment(out, r.Environment)
	b := r.Build
	fmt.Fprintf(out, "\nbuild     %d Creates in %.2f s (%s/s, %d writers, sync no): %s of log in %d segments\n",
		b.Sessions, b.DurationNs.Seconds(), si(b.CreatesPerSec), c.Writers, bytesHuman(b.LogBytes), b.LogSegments)
	if s := r.Snapshot; s != nil {
		fmt.Fprintf(out, "snapshot  %d sessions in %.2f s: %s (taken on the %s engine)\n",
			s.Sessions, s.DurationNs.Seconds(), bytesHuman(s.Bytes), s.Engine)
	}
	if t := r.Tail; t != nil {
		fmt.Fprintf(out, "tail      %d Updates after the snapshot in %.2f s: %s of log\n",
			t.Records, t.DurationNs.Seconds(), bytesHuman(int64(t.Bytes)))
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	// The last column has no closing tab, so tabwriter leaves it unaligned:
	// left-aligned text after the right-aligned numbers.
	fmt.Fprintln(tw, "recovery from\tsessions\tmedian\tmin\tmax\tsessions/s\t  replayed")
	for _, rec := range r.Recoveries {
		what := fmt.Sprintf("%s log records (%s)", si(float64(rec.LogRecords)), bytesHuman(rec.LogBytes))
		if rec.SnapshotSessions > 0 {
			what = fmt.Sprintf("snapshot of %s (%s) + %s", si(float64(rec.SnapshotSessions)), bytesHuman(rec.SnapshotBytes), what)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t  %s\n", rec.From, rec.Sessions, seconds(rec.MedianNs),
			seconds(rec.MinNs), seconds(rec.MaxNs), si(rec.SessionsPerSec), what)
	}
	_ = tw.Flush() // a report to stdout: see report.go
	fmt.Fprintf(out, "\ntime      %.1f s in all\n", r.TotalNs.Seconds())
	fmt.Fprintln(out, "\nOpen is timed from the call to its return, with the files in the page cache (just written).")
}
