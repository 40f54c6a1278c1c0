package engine_test

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/internal/crashcheck"
	"github.com/stretchr/testify/require"
)

// The crash test runs crashcheck's writer in a child process (this test
// binary, re-executed into TestCrashChild) on small log segments with
// snapshots back to back, kills it with SIGKILL after a random number of
// acknowledged operations, and checks that recovery reflects every
// operation the child acknowledged, and nothing it did not at least begin.
// Each cycle continues on the directory the last one recovered.
//
// SESSCACHE_CRASH_CYCLES=N runs N cycles per policy instead of 20.

const (
	envCrashDir  = "SESSCACHE_CRASH_DIR"
	envCrashSync = "SESSCACHE_CRASH_SYNC"
	envCrashSeed = "SESSCACHE_CRASH_SEED"
)

var discard = slog.New(slog.DiscardHandler)

func TestCrashRecovery(t *testing.T) {
	cycles := 20
	if v := os.Getenv("SESSCACHE_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		cycles = n
	}
	for _, sync := range []engine.SyncPolicy{engine.SyncAlways, engine.SyncEverySecond} {
		t.Run(sync.String(), func(t *testing.T) {
			dir := t.TempDir()
			var m crashcheck.Model
			r := rand.New(rand.NewPCG(uint64(sync), 1))
			acked, fromSnapshot := 0, 0
			for cycle := range cycles {
				child := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
				child.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashSync+"="+sync.String(),
					envCrashSeed+"="+strconv.FormatUint(r.Uint64(), 10))
				child.Stderr = os.Stderr
				ops, err := crashcheck.Cycle(t.Context(), child, &m, 5+r.IntN(150))
				require.NoError(t, err, "cycle %d", cycle)
				v, err := m.Verify(dir, ops, crashcheck.VerifyOptions{Logger: discard})
				require.NoError(t, err, "cycle %d", cycle)
				require.Empty(t, v.Problems, "cycle %d", cycle)
				acked += v.Acked
				if v.FromSnapshot {
					fromSnapshot++
				}
			}
			t.Logf("%s: %d cycles (%d recovered from a snapshot), %d acknowledged operations checked, %d live sessions, 0 lost",
				sync, cycles, fromSnapshot, acked, m.Live())
			require.Positive(t, fromSnapshot, "the kills must also test recovery from snapshots")
		})
	}
}

// TestCrashChild is the writer that TestCrashRecovery kills. It does nothing
// unless started by that test.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		return
	}
	sync := engine.SyncAlways
	if os.Getenv(envCrashSync) == engine.SyncEverySecond.String() {
		sync = engine.SyncEverySecond
	}
	seed, _ := strconv.ParseUint(os.Getenv(envCrashSeed), 10, 64)
	e, err := engine.Open(engine.Options{Dir: dir, Sync: sync, SegmentSize: 32 << 10, Logger: discard})
	if err == nil {
		err = crashcheck.Writer{Seed: seed, Snapshots: true}.Run(e, os.Stdin, os.Stdout)
	}
	fmt.Fprintln(os.Stderr, "crash child:", err)
	os.Exit(3)
}
