package crashcheck

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"testing"

	"github.com/sesscache/sesscache/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParserReadsTheProtocol(t *testing.T) {
	var p parser
	for _, line := range []string{
		"=== RUN   TestCrashChild", // a test binary's chatter
		"B C 0 s0-a",
		"A C 0 id0",
		"B U 0 s0-b",
		"A U 0",
		"B R 0",
	} {
		_, err := p.line(line)
		require.NoError(t, err, line)
	}
	assert.Equal(t, []Op{
		{Kind: Create, N: 0, Data: "s0-a", Acked: true, ID: "id0"},
		{Kind: Update, N: 0, Data: "s0-b", Acked: true},
		{Kind: Rotate, N: 0},
	}, p.ops)
}

func TestParserRejectsBrokenProtocol(t *testing.T) {
	for name, lines := range map[string][]string{
		"ack without begin": {"A C 0 id0"},
		"ack of another op": {"B U 0 s0-b", "A D 0"},
		"ack of another n":  {"B U 0 s0-b", "A U 1"},
		"ack twice":         {"B U 0 s0-b", "A U 0", "A U 0"},
		"unknown operation": {"B X 0"},
		"not a session":     {"B C zero"},
	} {
		t.Run(name, func(t *testing.T) {
			var p parser
			var err error
			for _, line := range lines {
				if _, err = p.line(line); err != nil {
					break
				}
			}
			assert.Error(t, err)
		})
	}
}

// TestCycleKillsAfterTheAcks runs the parent's side against a shell script
// standing in for the writer.
func TestCycleKillsAfterTheAcks(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	var m Model
	writer := exec.Command(sh, "-c", `printf 'B C 0 s0-a\nA C 0 id0\nB U 0 s0-b\n'; exec sleep 60`)
	ops, err := Cycle(t.Context(), writer, &m, 1)
	require.NoError(t, err)
	assert.Equal(t, []Op{{Kind: Create, N: 0, Data: "s0-a", Acked: true, ID: "id0"}, {Kind: Update, N: 0, Data: "s0-b"}}, ops)

	_, err = Cycle(t.Context(), exec.Command(sh, "-c", `printf 'B C 0 s0-a\nA C 0 id0\n'`), &m, 2)
	assert.ErrorContains(t, err, "stopped before it was killed")

	_, err = Cycle(t.Context(), exec.Command(sh, "-c", `printf 'A C 0 id0\n'; exec sleep 60`), &m, 1)
	assert.ErrorContains(t, err, "did not begin")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = Cycle(ctx, exec.Command(sh, "-c", `exec sleep 60`), &m, 1)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestWriterAgreesWithVerify runs the writer in this process until the
// parent hangs up, then checks the cleanly closed directory: what the
// writer reported is what Verify expects.
func TestWriterAgreesWithVerify(t *testing.T) {
	dir := t.TempDir()
	var m Model
	for cycle := range 2 {
		e, err := engine.Open(engine.Options{Dir: dir, SegmentSize: 8 << 10, Logger: testLogger(t)})
		require.NoError(t, err)
		r, w := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- Writer{Seed: uint64(cycle), Snapshots: true}.Run(e, m.Stdin(), w) }()

		var p parser
		acks := 0
		sc := bufio.NewScanner(r) // reads no further than the line it returns: the writer writes a line at a time
		for acks < 300 && sc.Scan() {
			acked, err := p.line(sc.Text())
			require.NoError(t, err)
			if acked {
				acks++
			}
		}
		require.Equal(t, 300, acks)
		require.NoError(t, r.Close()) // the parent hangs up: the writer's next report fails
		assert.ErrorIs(t, <-done, io.ErrClosedPipe)
		require.NoError(t, e.Close())

		v, err := m.Verify(dir, p.ops, VerifyOptions{Logger: testLogger(t)})
		require.NoError(t, err)
		assert.Empty(t, v.Problems)
		assert.Equal(t, acks, v.Acked)
		assert.Positive(t, m.Live())
	}
}
