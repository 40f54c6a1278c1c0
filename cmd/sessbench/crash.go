package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sesscache/sesscache/internal/crashcheck"
)

// crashConfig is the crash command's flags, and the "config" of its JSON
// report.
type crashConfig struct {
	Cycles      int           `json:"cycles"`
	Duration    time.Duration `json:"duration_ns"`
	Sync        string        `json:"sync"`
	MaxOps      int           `json:"max_ops"`
	SegmentSize int64         `json:"segment_size"`
	Snapshots   bool          `json:"snapshots"`
	Seed        uint64        `json:"seed"`
	Dir         string        `json:"dir,omitempty"`

	policies []string
	out      output
}

const crashAbout = `
The kill -9 test as an operator tool. Each cycle starts a writer (this
binary, as a child process) on the data directory; the writer creates,
updates, rotates and deletes sessions one at a time and reports each call as
it begins and as it returns, while another goroutine takes snapshots back
to back on small log segments. After a random number of acknowledged calls
the writer is killed with SIGKILL. The directory is then recovered and
checked: every acknowledged write must be there, and nothing that was not
at least begun. The next cycle continues on the recovered directory.

Under -sync no a process crash may lose acknowledged writes by design, so
only always and everysec are tested. The command exits 1 if anything is
lost.`

func parseCrashCommand(args []string, stderr io.Writer) (func(context.Context, io.Writer) error, error) {
	c, err := parseCrash(args, stderr)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, stdout io.Writer) error { return runCrash(ctx, c, stdout) }, nil
}

func parseCrash(args []string, stderr io.Writer) (crashConfig, error) {
	var c crashConfig
	fs := newFlagSet("crash", crashAbout, stderr)
	fs.IntVar(&c.Cycles, "cycles", 100, "kill and recover this many times; 0, or -duration without -cycles: no limit")
	fs.DurationVar(&c.Duration, "duration", 0, "stop starting cycles after this long (0: no limit)")
	fs.StringVar(&c.Sync, "sync", "both", "sync policy of the writer: always, everysec, or both (alternating cycles)")
	fs.IntVar(&c.MaxOps, "max-ops", 150, "kill the writer after a random 5 to this many acknowledged calls")
	seg := byteSize(32 << 10)
	fs.Var(&seg, "segment-size", "`SIZE` of the writer's log segments, such as 32KiB: small, so kills land in rotations and compactions")
	fs.BoolVar(&c.Snapshots, "snapshots", true, "have the writer take snapshots back to back while it writes")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed of the kill points and the writers' operations, to repeat a run (0: from the clock; the report prints it)")
	fs.StringVar(&c.Dir, "dir", "", "data directory `PATH` to use and keep, empty or absent (default: a temporary one, removed afterwards)")
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
	switch {
	case c.Cycles < 0 || c.Duration < 0:
		return c, badUsage(stderr, "crash", "-cycles and -duration must not be negative")
	case c.Cycles == 0 && c.Duration == 0:
		return c, badUsage(stderr, "crash", "set -cycles or -duration: with neither the command would never stop")
	case c.MaxOps < 5:
		return c, badUsage(stderr, "crash", "-max-ops must be at least 5")
	case c.SegmentSize < 4<<10:
		return c, badUsage(stderr, "crash", "-segment-size must be at least 4KiB")
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
	// FromSnapshot counts the recoveries that started from a snapshot.
	FromSnapshot int `json:"recoveries_from_snapshot"`
	// Acked is the number of acknowledged operations checked; Checks the
	// number of session lookups made to check them, summed over cycles.
	Acked  int `json:"acknowledged_ops"`
	Checks int `json:"sessions_checked"`
	Live   int `json:"live_sessions"`
	// Lost counts acknowledged writes that recovery did not hold; Problems
	// describes them and anything else wrong (sessions by logical number,
	// never by ID). Both must be empty.
	Lost       int           `json:"lost"`
	Problems   []string      `json:"problems,omitempty"`
	DurationNs time.Duration `json:"duration_ns"`
}

func runCrash(ctx context.Context, c crashConfig, stdout io.Writer) (err error) {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary to run as the writer: %w", err)
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
	res := &crashResult{Command: "crash", Config: c, Environment: currentEnvironment()}
	var m crashcheck.Model
	var cycles, acked atomic.Int64 // for the progress line
	r := rand.New(rand.NewPCG(c.Seed, 1))
	start := time.Now()
	prog := newProgress(stdout)
	prog.show(func() string {
		return fmt.Sprintf("crash    %d cycles  %d acknowledged ops checked  %.0f s", cycles.Load(), acked.Load(), time.Since(start).Seconds())
	})
	for cycle := 0; (c.Cycles == 0 || cycle < c.Cycles) && (c.Duration == 0 || time.Since(start) < c.Duration); cycle++ {
		if ctx.Err() != nil {
			prog.stop()
			return errors.New("interrupted")
		}
		policy := c.policies[cycle%len(c.policies)]
		writer := exec.Command(exe, crashChildCommand, "-dir", dir, "-sync", policy, "-seed", strconv.FormatUint(r.Uint64(), 10),
			"-segment-size", strconv.FormatInt(c.SegmentSize, 10), "-snapshots="+strconv.FormatBool(c.Snapshots))
		writer.Stderr = os.Stderr
		ops, err := crashcheck.Cycle(ctx, writer, &m, 5+r.IntN(c.MaxOps-4))
		if err != nil {
			prog.stop()
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			return fmt.Errorf("cycle %d (%s): %w", cycle, policy, err)
		}
		v, err := m.Verify(dir, ops, crashcheck.VerifyOptions{Logger: quietLogger(os.Stderr)})
		if err != nil {
			prog.stop()
			return fmt.Errorf("cycle %d (%s): %w", cycle, policy, err)
		}
		cycles.Add(1)
		acked.Add(int64(v.Acked))
		res.Cycles++
		res.Acked += v.Acked
		res.Checks += v.Checked
		if v.FromSnapshot {
			res.FromSnapshot++
		}
		res.Lost += v.Lost
		for _, p := range v.Problems {
			res.Problems = append(res.Problems, fmt.Sprintf("cycle %d (%s): %s", cycle, policy, p))
		}
		if len(v.Problems) > 0 {
			break // the model no longer matches the directory: later cycles would prove nothing
		}
	}
	prog.stop()
	res.Live = m.Live()
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
	snaps := "with snapshots back to back"
	if !c.Snapshots {
		snaps = "without snapshots"
	}
	fmt.Fprintf(out, "sessbench crash: sync %s, %s segments, %s, kill after 5 to %d acknowledged calls, seed %d\n",
		c.Sync, bytesHuman(c.SegmentSize), snaps, c.MaxOps, c.Seed)
	printEnvironment(out, r.Environment)
	fmt.Fprintf(out, "\ncycles    %d in %.1f s (%d recovered from a snapshot)\n", r.Cycles, r.DurationNs.Seconds(), r.FromSnapshot)
	fmt.Fprintf(out, "checked   %d acknowledged operations, %d session lookups; %d sessions live at the end\n", r.Acked, r.Checks, r.Live)
	fmt.Fprintf(out, "lost      %d\n", r.Lost)
	for _, p := range r.Problems {
		fmt.Fprintf(out, "PROBLEM   %s\n", p)
	}
}
