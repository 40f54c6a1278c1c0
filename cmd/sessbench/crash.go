package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sesscache/sesscache/internal/crashcheck"
)

// crashConfig is the crash command's flags, and the "config" of its JSON
// report.
type crashConfig struct {
	Cycles       int            `json:"cycles"`
	Duration     time.Duration  `json:"duration_ns"`
	Sync         string         `json:"sync"`
	Writers      int            `json:"writers"`
	Users        int            `json:"users"`
	Hot          int            `json:"hot"`
	Mix          crashcheck.Mix `json:"mix"`
	MaxOps       int            `json:"max_ops"`
	SegmentSize  int64          `json:"segment_size"`
	Snapshots    bool           `json:"snapshots"`
	SnapshotMin  time.Duration  `json:"snapshot_min_ns"`
	SnapshotMax  time.Duration  `json:"snapshot_max_ns"`
	MaxPerUser   int            `json:"max_per_user"`
	Uncapped     float64        `json:"uncapped"`
	Grace        time.Duration  `json:"rotate_grace_ns"`
	GraceShare   float64        `json:"grace_share"`
	PowerCut     float64        `json:"power_cut"`
	KillInOpen   float64        `json:"kill_in_open"`
	LossWindow   time.Duration  `json:"loss_window_ns"`
	Seed         uint64         `json:"seed"`
	Dir          string         `json:"dir,omitempty"`
	TraceFile    string         `json:"trace,omitempty"`
	EngineLog    bool           `json:"engine_log"`
	policies     []string
	snapshotSpan string
	out          output
}

const crashAbout = `
The crash-recovery test as an operator tool. Each cycle starts a child
process (this binary) on the data directory: several writer goroutines
create, update, rotate, log in, delete and revoke sessions (users capped at
-max-per-user sessions, some sessions updated by every writer with versions,
so that updates conflict), reporting each call as it begins and as it
returns, while snapshots are forced every -snapshot-every on small log
segments. The child is then killed with SIGKILL after a random number of
acknowledged calls, or inside Open while it still recovers (-kill-in-open),
or it cuts its own power first (-power-cut: what it had not fsynced,
directory entries included, is rolled back). The directory is then
recovered and checked: every acknowledged write there (after a power cut
under everysec, all but the last -loss-window of writes nothing fsynced),
every call in flight at the kill whole or not at all (a rotation leaves
exactly one ID live, a revocation ends all of the user's sessions or none, a
capped creation evicts the user's oldest-authenticated session exactly
when it takes effect), nothing that nobody wrote, old IDs dead, and the
older snapshot plus the log giving the same sessions as the newest. The
next cycle continues on the recovered directory.

Under -sync no a process crash may lose acknowledged writes by design, so
only always and everysec are tested. The command exits 1 if a check fails;
-trace FILE then holds each failing cycle's operations, by logical session
number, to reproduce it from (with -seed).`

func parseCrashCommand(args []string, stderr io.Writer) (func(context.Context, io.Writer) error, error) {
	c, err := parseCrash(args, stderr)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, stdout io.Writer) error { return runCrash(ctx, c, stdout, os.Stderr) }, nil
}

func parseCrash(args []string, stderr io.Writer) (crashConfig, error) {
	var c crashConfig
	fs := newFlagSet("crash", crashAbout, stderr)
	fs.IntVar(&c.Cycles, "cycles", 100, "kill and recover this many times; 0, or -duration without -cycles: no limit")
	fs.DurationVar(&c.Duration, "duration", 0, "stop starting cycles after this long (0: no limit)")
	fs.StringVar(&c.Sync, "sync", "both", "sync policy of the child: always, everysec, or both (alternating cycles)")
	fs.IntVar(&c.Writers, "writers", 8, "writer goroutines in the child")
	fs.IntVar(&c.Users, "users", 0, "users the writers create and log in sessions for (default: twice -writers)")
	fs.IntVar(&c.Hot, "hot", 4, "sessions every writer updates, with versions, so that updates conflict")
	mix := fs.String("mix", "", "operation weights over the default "+crashcheck.DefaultMix().String()+
		", such as revoke-user=0,update=50 (contended and anonymous are percentages of updates and creations)")
	fs.IntVar(&c.MaxOps, "max-ops", 400, "kill the child after a random 5 to this many acknowledged calls")
	seg := byteSize(32 << 10)
	fs.Var(&seg, "segment-size", "`SIZE` of the child's log segments, such as 32KiB: small, so kills land in rotations and compactions")
	fs.BoolVar(&c.Snapshots, "snapshots", true, "force snapshots while the child writes")
	fs.StringVar(&c.snapshotSpan, "snapshot-every", "5ms-60ms", "random pause `MIN-MAX` between forced snapshots (the first at once)")
	fs.IntVar(&c.MaxPerUser, "max-per-user", 3, "the engine's MaxSessionsPerUser (0: no cap)")
	fs.Float64Var(&c.Uncapped, "uncapped", 0.25, "share of cycles run without the cap, so that the next capped creation evicts several sessions")
	fs.DurationVar(&c.Grace, "grace", time.Minute, "the engine's RotateGrace in the cycles that have one")
	fs.Float64Var(&c.GraceShare, "grace-share", 0.5, "share of cycles whose engine has -grace")
	fs.Float64Var(&c.PowerCut, "power-cut", 0, "share of cycles ended by a simulated power cut instead of SIGKILL alone (1: all)")
	fs.Float64Var(&c.KillInOpen, "kill-in-open", 0.15, "share of cycles whose child is killed while it opens (recovers) the engine")
	fs.DurationVar(&c.LossWindow, "loss-window", crashcheck.DefaultLossWindow, "after a power cut under everysec, how recent a lost acknowledged write may be")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed of the plans and the writers' calls, to repeat a run as far as timing allows (0: from the clock; the report prints it)")
	fs.StringVar(&c.Dir, "dir", "", "data directory `PATH` to use and keep, empty or absent (default: a temporary one, removed afterwards)")
	fs.StringVar(&c.TraceFile, "trace", "", "write the operations of every failing cycle to `FILE`")
	fs.BoolVar(&c.EngineLog, "engine-log", false, "show the engines' warnings (recovery repairs are routine after a kill)")
	c.out.register(fs, false)
	if err := fs.parse(args); err != nil {
		return c, err
	}
	c.SegmentSize = int64(seg)
	cyclesSet := false
	fs.Visit(func(f *flag.Flag) { cyclesSet = cyclesSet || f.Name == "cycles" })
	if c.Duration > 0 && !cyclesSet {
		c.Cycles = 0 // a run for a time, not a count
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Users == 0 {
		c.Users = 2 * c.Writers
	}
	var err error
	if c.Mix, err = crashcheck.ParseMix(*mix); err != nil {
		return c, badUsage(stderr, "crash", "-%v", err)
	}
	lo, hi, ok := strings.Cut(c.snapshotSpan, "-")
	if c.SnapshotMin, err = time.ParseDuration(lo); ok && err == nil {
		c.SnapshotMax, err = time.ParseDuration(hi)
	}
	if !ok || err != nil || c.SnapshotMin < 0 || c.SnapshotMax < c.SnapshotMin {
		return c, badUsage(stderr, "crash", "-snapshot-every must be MIN-MAX, such as 5ms-60ms, not %q", c.snapshotSpan)
	}
	if !c.Snapshots {
		c.SnapshotMin, c.SnapshotMax = 0, 0
	}
	switch c.Sync {
	case "both":
		c.policies = []string{"always", "everysec"}
	case "always", "everysec":
		c.policies = []string{c.Sync}
	case "no":
		return c, badUsage(stderr, "crash", "-sync no may lose acknowledged writes to a process crash by design: nothing to verify")
	default:
		return c, badUsage(stderr, "crash", "-sync must be always, everysec or both, not %q", c.Sync)
	}
	share := func(x float64) bool { return x >= 0 && x <= 1 }
	switch {
	case c.Cycles < 0 || c.Duration < 0:
		return c, badUsage(stderr, "crash", "-cycles and -duration must not be negative")
	case c.Cycles == 0 && c.Duration == 0:
		return c, badUsage(stderr, "crash", "set -cycles or -duration: with neither the command would never stop")
	case c.MaxOps < 5:
		return c, badUsage(stderr, "crash", "-max-ops must be at least 5")
	case c.SegmentSize < 4<<10:
		return c, badUsage(stderr, "crash", "-segment-size must be at least 4KiB")
	case c.Writers < 1 || c.Users < 1 || c.Hot < 1:
		return c, badUsage(stderr, "crash", "-writers, -users and -hot must be at least 1")
	case c.MaxPerUser < 0 || c.Grace < 0 || c.LossWindow < 0:
		return c, badUsage(stderr, "crash", "-max-per-user, -grace and -loss-window must not be negative")
	case !share(c.Uncapped) || !share(c.GraceShare) || !share(c.PowerCut) || !share(c.KillInOpen):
		return c, badUsage(stderr, "crash", "-uncapped, -grace-share, -power-cut and -kill-in-open are shares of cycles, between 0 and 1")
	}
	if c.Dir != "" {
		if ents, err := os.ReadDir(c.Dir); err == nil && len(ents) > 0 {
			return c, badUsage(stderr, "crash", "-dir %s is not empty: the checks need to know everything written to it", c.Dir)
		}
	}
	return c, nil
}

// crashResult is what the crash command found.
type crashResult struct {
	Command     string      `json:"command"`
	Config      crashConfig `json:"config"`
	Environment environment `json:"environment"`
	Cycles      int         `json:"cycles"`
	// KilledInOpen counts the children killed before their engine was
	// open; PowerCuts those that cut their power first.
	KilledInOpen int `json:"killed_in_open"`
	PowerCuts    int `json:"power_cuts"`
	// FromSnapshot counts the recoveries that started from a snapshot;
	// Fallbacks those where the older snapshot and the log were checked to
	// give the same sessions.
	FromSnapshot int `json:"recoveries_from_snapshot"`
	Fallbacks    int `json:"fallbacks_checked"`
	// Acked is the number of acknowledged operations checked, ByKind the
	// same by operation; Failed the updates that failed as they may;
	// InFlight the operations in flight at the kills, MultiInFlight those
	// of them that change, or may change, several sessions; Checks the
	// session lookups and comparisons made; Snapshots the snapshots the
	// children completed.
	Acked         int            `json:"acknowledged_ops"`
	ByKind        map[string]int `json:"acknowledged_by_op"`
	Failed        int            `json:"updates_failed_as_expected"`
	InFlight      int            `json:"in_flight_at_kill"`
	MultiInFlight int            `json:"multi_session_in_flight_at_kill"`
	Checks        int            `json:"sessions_checked"`
	Snapshots     int            `json:"snapshots_taken"`
	Live          int            `json:"live_sessions"`
	// PerPolicy holds the same totals for each sync policy, in one line.
	PerPolicy map[string]string `json:"per_policy"`
	// Lost counts acknowledged writes that recovery did not hold; Problems
	// describes them and anything else wrong (sessions by logical number,
	// never by ID). Both must be empty.
	Lost       int           `json:"lost"`
	Problems   []string      `json:"problems,omitempty"`
	DurationNs time.Duration `json:"duration_ns"`
}

func runCrash(ctx context.Context, c crashConfig, stdout, stderr io.Writer) (err error) {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary to run as the child: %w", err)
	}
	dir, cleanup, err := dataDir(false, c.Dir)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := cleanup(); err == nil && rerr != nil {
			err = fmt.Errorf("removing the temporary directory: %w", rerr)
		}
	}()
	var trace io.Writer
	if c.TraceFile != "" {
		f, err := os.Create(c.TraceFile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }() // a trace for reading after a failure; the run's verdict stands
		trace = f
	}
	engineLog := slog.New(slog.DiscardHandler)
	if c.EngineLog {
		engineLog = quietLogger(stderr)
	}
	launch := func(config string) *exec.Cmd {
		cmd := exec.Command(exe, crashChildCommand, "-config", config)
		if c.EngineLog {
			cmd.Args = append(cmd.Args, "-engine-log")
		}
		cmd.Stderr = stderr
		return cmd
	}
	// A schedule per policy, so that with -sync both each policy gets its
	// share of power cuts, kills inside Open and so on.
	schedules := map[string]*crashcheck.Schedule{}
	for i, policy := range c.policies {
		s := crashcheck.NewSchedule(crashcheck.Config{
			Dir: dir, Sync: policy, Writers: c.Writers, Users: c.Users, SegmentSize: c.SegmentSize,
			SnapshotMin: c.SnapshotMin, SnapshotMax: c.SnapshotMax, MaxPerUser: c.MaxPerUser,
			RotateGrace: c.Grace, Mix: c.Mix, Hot: c.Hot,
		}, c.Seed+uint64(i))
		s.MaxAcks, s.InOpen, s.PowerCut, s.Uncapped, s.Grace, s.LossWindow = c.MaxOps, c.KillInOpen, c.PowerCut, c.Uncapped, c.GraceShare, c.LossWindow
		schedules[policy] = s
	}

	res := &crashResult{Command: "crash", Config: c, Environment: currentEnvironment()}
	var m crashcheck.Model
	var sum crashcheck.Totals
	per := map[string]*crashcheck.Totals{}
	var cycles, acked atomic.Int64 // for the progress line
	start := time.Now()
	prog := newProgress(stdout)
	prog.show(func() string {
		return fmt.Sprintf("crash    %d cycles  %d acknowledged ops checked  %.0f s", cycles.Load(), acked.Load(), time.Since(start).Seconds())
	})
	var last *crashcheck.Run
	for cycle := 0; (c.Cycles == 0 || cycle < c.Cycles) && (c.Duration == 0 || time.Since(start) < c.Duration); cycle++ {
		if ctx.Err() != nil {
			prog.stop()
			return errors.New("interrupted")
		}
		policy := c.policies[cycle%len(c.policies)]
		p := schedules[policy].Next(last)
		run, err := crashcheck.Cycle(ctx, launch, &m, p)
		if err != nil {
			prog.stop()
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			return fmt.Errorf("cycle %d (%s, seed %d): %w", cycle, policy, c.Seed, err)
		}
		last = run
		v, err := m.Verify(dir, run, crashcheck.VerifyOptions{Logger: engineLog, Trace: trace})
		if err != nil {
			prog.stop()
			return fmt.Errorf("cycle %d (%s, seed %d): %w", cycle, policy, c.Seed, err)
		}
		cycles.Add(1)
		acked.Add(int64(v.Acked))
		sum.Add(v)
		if per[policy] == nil {
			per[policy] = &crashcheck.Totals{}
		}
		per[policy].Add(v)
		for _, p := range v.Problems {
			res.Problems = append(res.Problems, fmt.Sprintf("cycle %d (%s): %s", cycle, policy, p))
		}
		if len(v.Problems) > 0 {
			break // the model no longer matches the directory: later cycles would prove nothing
		}
	}
	prog.stop()
	res.Cycles, res.KilledInOpen, res.PowerCuts = sum.Cycles, sum.KilledInOpen, sum.PowerCuts
	res.FromSnapshot, res.Fallbacks, res.Snapshots = sum.FromSnapshot, sum.Fallbacks, sum.Snapshots
	res.Acked, res.Failed, res.InFlight, res.MultiInFlight = sum.Acked, sum.Failed, sum.InFlight, sum.MultiInFlight
	res.Checks, res.Lost, res.Live = sum.Checked, sum.Lost, m.Live()
	res.ByKind = map[string]int{}
	for _, k := range crashcheck.Kinds {
		res.ByKind[k.String()] = sum.ByKind[k]
	}
	res.PerPolicy = map[string]string{}
	for p, t := range per {
		res.PerPolicy[p] = t.Summary()
	}
	res.DurationNs = time.Since(start)
	if c.out.json {
		err = writeJSON(stdout, res)
	} else {
		printCrash(stdout, res)
	}
	if err == nil && len(res.Problems) > 0 {
		err = fmt.Errorf("%d acknowledged writes lost, %d problems", res.Lost, len(res.Problems))
	}
	return err
}

// printCrash writes the crash command's report for people.
func printCrash(out io.Writer, r *crashResult) {
	c := r.Config
	snaps := fmt.Sprintf("snapshots every %v to %v", c.SnapshotMin, c.SnapshotMax)
	if !c.Snapshots {
		snaps = "no forced snapshots"
	}
	fmt.Fprintf(out, "sessbench crash: sync %s, %d writers, %d users (cap %d, uncapped in %.0f%% of cycles), %s segments, %s,\n",
		c.Sync, c.Writers, c.Users, c.MaxPerUser, 100*c.Uncapped, bytesHuman(c.SegmentSize), snaps)
	fmt.Fprintf(out, "  kill after 5 to %d acknowledged calls, inside Open in %.0f%% of cycles, power cut in %.0f%%, grace %v in %.0f%%, seed %d\n",
		c.MaxOps, 100*c.KillInOpen, 100*c.PowerCut, c.Grace, 100*c.GraceShare, c.Seed)
	fmt.Fprintf(out, "  mix %s\n", c.Mix)
	printEnvironment(out, r.Environment)
	fmt.Fprintf(out, "\ncycles    %d in %.1f s: %d killed inside Open, %d power cuts\n", r.Cycles, r.DurationNs.Seconds(), r.KilledInOpen, r.PowerCuts)
	fmt.Fprintf(out, "recovery  %d from a snapshot, %d fallbacks to the older snapshot checked, %d snapshots taken by the children\n",
		r.FromSnapshot, r.Fallbacks, r.Snapshots)
	var kinds []string
	for _, k := range crashcheck.Kinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, r.ByKind[k.String()]))
	}
	fmt.Fprintf(out, "checked   %d acknowledged operations (%s)\n", r.Acked, strings.Join(kinds, ", "))
	fmt.Fprintf(out, "          %d updates failed as they may; %d calls in flight at the kills, %d of them multi-session; %d lookups; %d sessions live at the end\n",
		r.Failed, r.InFlight, r.MultiInFlight, r.Checks, r.Live)
	for _, p := range slices.Sorted(maps.Keys(r.PerPolicy)) {
		fmt.Fprintf(out, "%-9s %s\n", p, r.PerPolicy[p])
	}
	fmt.Fprintf(out, "lost      %d\n", r.Lost)
	for _, p := range r.Problems {
		fmt.Fprintf(out, "PROBLEM   %s\n", p)
	}
}
