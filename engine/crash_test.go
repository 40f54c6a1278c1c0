package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/sesscache/sesscache/internal/crashcheck"
	"github.com/stretchr/testify/require"
)

// The crash test runs crashcheck's child (this test binary, re-executed
// into TestCrashChild): eight writers creating, updating (several of them
// the same sessions, with versions), rotating (with and without a grace
// period), logging in, deleting and revoking sessions of capped users,
// while snapshots are forced every 5 to 60 ms on small log segments. It
// ends the child with SIGKILL after a random number of acknowledged
// operations, or inside Open while it still recovers, or with a simulated
// power cut, and checks the recovered directory as crashcheck.Verify says:
// every acknowledged write there, every multi-session call in flight whole
// or not at all, nothing nobody wrote, and recovery from the older
// snapshot the same. Each cycle continues on the directory the last one
// recovered.
//
// SESSCACHE_CRASH_CYCLES=N runs N cycles per mode instead of 8;
// SESSCACHE_CRASH_SEED=S draws them from another seed (timing still
// varies from run to run); SESSCACHE_CRASH_TRACE=PATH writes the
// operations of a failing cycle to PATH.<mode>.

const envCrashConfig = "SESSCACHE_CRASH_CONFIG"

var discard = slog.New(slog.DiscardHandler)

func TestCrashRecovery(t *testing.T) {
	cycles := 8
	if v := os.Getenv("SESSCACHE_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		cycles = n
	}
	var seed uint64 = 1
	if v := os.Getenv("SESSCACHE_CRASH_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
	}
	launch := func(config string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashConfig+"="+config)
		cmd.Stderr = os.Stderr
		return cmd
	}
	for i, mode := range []struct {
		name     string
		sync     string
		powerCut float64
	}{
		{"always", "always", 0},
		{"everysec", "everysec", 0},
		{"always-powercut", "always", 1},
		{"everysec-powercut", "everysec", 1},
	} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			s := crashcheck.NewSchedule(crashcheck.Config{
				Dir: dir, Sync: mode.sync, Writers: 8, Users: 16, SegmentSize: 32 << 10,
				SnapshotMin: 5 * time.Millisecond, SnapshotMax: 60 * time.Millisecond,
				MaxPerUser: 3, RotateGrace: time.Minute, Mix: crashcheck.DefaultMix(), Hot: 4,
			}, seed+uint64(i))
			s.InOpen, s.PowerCut, s.Uncapped, s.Grace, s.MaxAcks = 0.25, mode.powerCut, 0.25, 0.5, 400
			var trace io.Writer
			if path := os.Getenv("SESSCACHE_CRASH_TRACE"); path != "" {
				f, err := os.Create(path + "." + mode.name)
				require.NoError(t, err)
				defer f.Close()
				trace = f
			}
			var m crashcheck.Model
			var last *crashcheck.Run
			var sum crashcheck.Totals
			inOpen := 0
			for cycle := range cycles {
				p := s.Next(last)
				if p.InOpen {
					inOpen++
				}
				run, err := crashcheck.Cycle(t.Context(), launch, &m, p)
				require.NoError(t, err, "cycle %d", cycle)
				v, err := m.Verify(dir, run, crashcheck.VerifyOptions{Logger: discard, TempDir: t.TempDir(), Trace: trace})
				require.NoError(t, err, "cycle %d", cycle)
				require.Empty(t, v.Problems, "cycle %d (SESSCACHE_CRASH_SEED=%d)", cycle, seed)
				sum.Add(v)
				last = run
			}
			t.Logf("%s: %s; %d live sessions", mode.name, sum.Summary(), m.Live())
			require.Positive(t, sum.Acked)
			require.Positive(t, inOpen, "some kills must land inside Open")
			if mode.powerCut > 0 {
				require.Equal(t, cycles, sum.PowerCuts, "every cycle must end with a power cut")
			}
		})
	}
}

// TestCrashChild is the child that TestCrashRecovery kills. It does nothing
// unless started by that test.
func TestCrashChild(t *testing.T) {
	config := os.Getenv(envCrashConfig)
	if config == "" {
		return
	}
	c, err := crashcheck.DecodeConfig(config)
	if err == nil {
		err = crashcheck.RunChild(context.Background(), c, os.Stdin, os.Stdout, discard)
	}
	fmt.Fprintln(os.Stderr, "crash child:", err)
	os.Exit(3)
}
