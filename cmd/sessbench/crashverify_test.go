package main

import (
	"testing"

	"github.com/sesscache/sesscache/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVerifyCatchesALostWrite pins that the checker can fail: an
// acknowledged update that never reached the directory is reported lost.
func TestVerifyCatchesALostWrite(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(engine.Options{Dir: dir, Logger: quietLogger(t.Output())})
	require.NoError(t, err)
	s, err := e.Create(engine.CreateOptions{Data: []byte("s0-a")})
	require.NoError(t, err)
	require.NoError(t, e.Close())

	m := newCrashModel()
	ops := []crashOp{
		{kind: "C", n: 0, data: "s0-a", acked: true, id: s.ID()},
		{kind: "U", n: 0, data: "s0-b", acked: true}, // claimed, never written
	}
	v, err := verifyCrash(dir, m, ops, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, v.lost)
	assert.NotEmpty(t, v.problems)
	for _, p := range v.problems {
		assert.NotContains(t, p, s.ID(), "problems name sessions by number, never by ID")
	}

	// The same directory with the truth: nothing lost.
	m = newCrashModel()
	v, err = verifyCrash(dir, m, ops[:1], 0)
	require.NoError(t, err)
	assert.Zero(t, v.lost)
	assert.Empty(t, v.problems)
}
