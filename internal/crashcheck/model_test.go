package crashcheck

import (
	"context"
	"log/slog"
	"testing"

	"github.com/sesscache/sesscache/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testLogger passes the engine's warnings to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// TestVerifyCatchesALostWrite pins that the checker can fail: an
// acknowledged update that never reached the directory is reported lost.
func TestVerifyCatchesALostWrite(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(engine.Options{Dir: dir, Logger: testLogger(t)})
	require.NoError(t, err)
	s, err := e.Create(context.Background(), engine.CreateOptions{Data: []byte("s0-a")})
	require.NoError(t, err)
	require.NoError(t, e.Close())
	opts := VerifyOptions{Logger: testLogger(t)}

	ops := []Op{
		{Kind: Create, N: 0, Data: "s0-a", Acked: true, ID: s.ID()},
		{Kind: Update, N: 0, Data: "s0-b", Acked: true}, // claimed, never written
	}
	var m Model
	v, err := m.Verify(dir, ops, opts)
	require.NoError(t, err)
	assert.Equal(t, 1, v.Lost)
	assert.NotEmpty(t, v.Problems)
	for _, p := range v.Problems {
		assert.NotContains(t, p, s.ID(), "problems name sessions by number, never by ID")
	}

	// The same directory with the truth: nothing lost.
	m = Model{}
	v, err = m.Verify(dir, ops[:1], opts)
	require.NoError(t, err)
	assert.Zero(t, v.Lost)
	assert.Empty(t, v.Problems)
}

// TestVerifySettlesTheOperationInFlight runs each operation the kill can
// interrupt both ways, taking effect and not, and checks that the verdict
// accepts either and that the settled model matches the directory: a
// second Verify with no new operations finds nothing wrong.
func TestVerifySettlesTheOperationInFlight(t *testing.T) {
	cases := []struct {
		name     string
		inflight Op
		// done makes the in-flight call's effect, if it had one, on
		// session 0, which holds "s0-a".
		done     func(e *engine.Engine, s0 string) error
		wantLost int
		wantLive int
		orphaned bool // the model now knows a session only by its data
	}{
		{name: "create done", inflight: Op{Kind: Create, N: 1, Data: "s1-a"},
			done: func(e *engine.Engine, _ string) error {
				_, err := e.Create(context.Background(), engine.CreateOptions{Data: []byte("s1-a")})
				return err
			},
			wantLive: 1, orphaned: true},
		{name: "create not done", inflight: Op{Kind: Create, N: 1, Data: "s1-a"}, wantLive: 1},
		{name: "update done", inflight: Op{Kind: Update, N: 0, Data: "s0-b"},
			done: func(e *engine.Engine, s0 string) error { return update(e, s0, "s0-b") }, wantLive: 1},
		{name: "update not done", inflight: Op{Kind: Update, N: 0, Data: "s0-b"}, wantLive: 1},
		{name: "update to data nobody wrote", inflight: Op{Kind: Update, N: 0, Data: "s0-b"},
			done: func(e *engine.Engine, s0 string) error { return update(e, s0, "s0-x") }, wantLost: 1, wantLive: 1},
		{name: "rotate done", inflight: Op{Kind: Rotate, N: 0},
			done: func(e *engine.Engine, s0 string) error {
				_, err := e.Rotate(context.Background(), s0)
				return err
			},
			wantLive: 0, orphaned: true},
		{name: "rotate not done", inflight: Op{Kind: Rotate, N: 0}, wantLive: 1},
		{name: "delete done", inflight: Op{Kind: Delete, N: 0},
			done: func(e *engine.Engine, s0 string) error { return e.Delete(context.Background(), s0) }, wantLive: 0},
		{name: "delete not done", inflight: Op{Kind: Delete, N: 0}, wantLive: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			e, err := engine.Open(engine.Options{Dir: dir, Logger: testLogger(t)})
			require.NoError(t, err)
			s0, err := e.Create(context.Background(), engine.CreateOptions{Data: []byte("s0-a")})
			require.NoError(t, err)
			if c.done != nil {
				require.NoError(t, c.done(e, s0.ID()))
			}
			require.NoError(t, e.Close())
			opts := VerifyOptions{Logger: testLogger(t)}

			var m Model
			ops := []Op{{Kind: Create, N: 0, Data: "s0-a", Acked: true, ID: s0.ID()}, c.inflight}
			v, err := m.Verify(dir, ops, opts)
			require.NoError(t, err)
			assert.Equal(t, 1, v.Acked)
			assert.Equal(t, c.wantLost, v.Lost)
			assert.Equal(t, c.wantLost > 0, len(v.Problems) > 0, "problems: %q", v.Problems)
			assert.Equal(t, c.wantLive, m.Live())
			assert.Equal(t, c.orphaned, len(m.orphans) == 1)
			assert.Equal(t, max(1, c.inflight.N+1), m.next, "a create in flight uses up its number either way")

			v, err = m.Verify(dir, nil, opts)
			require.NoError(t, err)
			assert.Empty(t, v.Problems, "the settled model matches the directory")
		})
	}
}

func update(e *engine.Engine, id, data string) error {
	_, err := e.Update(context.Background(), id, 0, func(engine.Session) ([]byte, error) { return []byte(data), nil })
	return err
}

// TestVerifyRejectsOpsThatDoNotFit pins that a broken harness is an error,
// not a verdict.
func TestVerifyRejectsOpsThatDoNotFit(t *testing.T) {
	for name, ops := range map[string][]Op{
		"two in flight":   {{Kind: Create, N: 0, Data: "s0-a"}, {Kind: Create, N: 1, Data: "s1-a"}},
		"unknown session": {{Kind: Update, N: 7, Data: "s7-a", Acked: true}},
	} {
		t.Run(name, func(t *testing.T) {
			var m Model
			_, err := m.Verify(t.TempDir(), ops, VerifyOptions{Logger: testLogger(t)})
			assert.Error(t, err)
		})
	}
}
