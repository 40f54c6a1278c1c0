package wal

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWaitQueueReleasesExactlyTheCovered pushes waiters in random LSN order:
// release must wake each waiter at or below the LSN exactly once and no
// other, and what stays must come out in LSN order.
func TestWaitQueueReleasesExactlyTheCovered(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var q waitQueue
	ws := make([]*waiter, 500)
	for i := range ws {
		ws[i] = &waiter{lsn: rng.Uint64N(100), wake: make(chan struct{}, 1)}
		q.push(ws[i])
	}
	q.release(49)
	q.release(49) // nothing left to wake: must not send twice
	for i, w := range ws {
		select {
		case <-w.wake:
			assert.LessOrEqual(t, w.lsn, uint64(49), "waiter %d", i)
		default:
			assert.Greater(t, w.lsn, uint64(49), "waiter %d", i)
		}
	}
	var prev uint64
	n := 0
	for w := q.pop(math.MaxUint64); w != nil; w = q.pop(math.MaxUint64) {
		require.GreaterOrEqual(t, w.lsn, prev)
		prev = w.lsn
		n++
	}
	assert.Equal(t, n, len(ws)-countAtMost(ws, 49))
	assert.Empty(t, q)
}

func countAtMost(ws []*waiter, lsn uint64) int {
	n := 0
	for _, w := range ws {
		if w.lsn <= lsn {
			n++
		}
	}
	return n
}
