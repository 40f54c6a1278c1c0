package crashcheck

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inProcess runs RunChild in this process on m until it has acknowledged
// acks operations, then stops it: by cancelling its context (it finishes
// the calls it began, so everything it began is acknowledged), or by
// cutting the power (through the hooks that stand in for SIGUSR1 and the
// SIGKILL that follows). It returns the run as Cycle would.
func inProcess(t *testing.T, m *Model, c Config, acks int, cut bool) *Run {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	request := make(chan struct{})
	if cut {
		c.PowerCut, c.cut, c.die = true, request, cancel
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		logger := testLogger(t)
		if cut {
			logger = slog.New(slog.DiscardHandler) // the engine's complaints about the power are expected
		}
		err := RunChild(ctx, c, m.Stdin(), pw, logger)
		pw.Close()
		done <- err
	}()
	p := parser{run: &Run{Plan: Plan{Config: c, LossWindow: DefaultLossWindow}}}
	n := 0
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		ev, err := p.line(sc.Text(), time.Now())
		require.NoError(t, err)
		if ev == evAck {
			if n++; n == acks {
				if cut {
					close(request)
				} else {
					cancel()
				}
			}
		}
	}
	require.ErrorIs(t, <-done, context.Canceled, "the child stops only when told")
	return p.run
}

// TestChildAgreesWithVerify runs the child in this process, stopped
// cleanly (so Verify can demand every call it began) and by power cuts,
// and checks that what it reports is what Verify finds.
func TestChildAgreesWithVerify(t *testing.T) {
	for _, sync := range []string{"always", "everysec"} {
		t.Run(sync, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			c := Config{Dir: dir, Sync: sync, Writers: 4, Users: 8, SegmentSize: 16 << 10,
				SnapshotMin: time.Millisecond, SnapshotMax: 10 * time.Millisecond, MaxPerUser: 3,
				RotateGrace: time.Minute, Mix: DefaultMix(), Hot: 3}
			var m Model
			var sum Totals
			for cycle := range 4 {
				c.Seed = uint64(cycle)
				cut := cycle >= 2
				run := inProcess(t, &m, c, 150, cut)
				assert.Equal(t, cut, run.Cut)
				v, err := m.Verify(dir, run, VerifyOptions{Logger: testLogger(t), TempDir: t.TempDir()})
				require.NoError(t, err)
				require.Empty(t, v.Problems, "cycle %d", cycle)
				if !cut {
					assert.Zero(t, v.InFlight, "a clean stop finishes every call")
				}
				sum.Add(v)
			}
			t.Log(sum.Summary())
			for _, k := range Kinds {
				assert.Positive(t, sum.ByKind[k], "%s never acknowledged", k)
			}
			assert.Positive(t, sum.Failed, "contended updates conflict")
			assert.Positive(t, sum.Snapshots)
			assert.Positive(t, m.Live())
		})
	}
}
