package redistier

import (
	"context"
	"sync"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// Sliding expiry is written behind. The local engine calls onTouch when a
// lookup moves a copy's last access a TouchLogInterval past the one last
// reported (so at most once per session per interval); the flusher writes
// the accesses gathered every TouchFlushInterval in one pipelined batch.
// Each write changes only the session's access key, which is not under
// the tracked prefix, so it evicts no instance's copy.

// maxPendingTouches bounds the accesses waiting to be written while Redis
// is slow; past it, accesses are dropped (the sessions may end up to a
// TouchLogInterval early).
const maxPendingTouches = 1 << 20

// touchBatch is how many accesses go in one pipeline.
const touchBatch = 512

type touchQueue struct {
	mu      sync.Mutex
	pending map[engine.Handle]int64 // unix ms
}

func (s *Store) onTouch(h engine.Handle, lastAccess time.Time) {
	q := &s.touches
	q.mu.Lock()
	if len(q.pending) < maxPendingTouches {
		if at := ms(lastAccess); at > q.pending[h] {
			q.pending[h] = at
		}
	}
	q.mu.Unlock()
}

func (s *Store) flusher() {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.TouchFlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.ConnTimeout)
			s.flushTouches(ctx)
			cancel()
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.ConnTimeout)
			s.flushTouches(ctx)
			cancel()
		}
	}
}

// flushTouches writes the pending accesses. A session Redis no longer has
// is dropped from the local tier.
func (s *Store) flushTouches(ctx context.Context) {
	q := &s.touches
	q.mu.Lock()
	if len(q.pending) == 0 {
		q.mu.Unlock()
		return
	}
	batch := q.pending
	q.pending = make(map[engine.Handle]int64, len(batch))
	q.mu.Unlock()

	now := s.local.Now()
	hs := make([]engine.Handle, 0, touchBatch)
	ats := make([]int64, 0, touchBatch)
	send := func() {
		if len(hs) == 0 {
			return
		}
		s.stats.touchBatches.Add(1)
		for i, r := range s.recs.touch(ctx, hs, ats, now) {
			switch {
			case r.err != nil:
				s.stats.touchErrors.Add(1)
			case r.kind == "ok":
				s.stats.touches.Add(1)
			default:
				s.forget(hs[i]) // gone from Redis: gone here
			}
		}
		hs, ats = hs[:0], ats[:0]
	}
	for h, at := range batch {
		hs = append(hs, h)
		ats = append(ats, at)
		if len(hs) == touchBatch {
			send()
		}
	}
	send()
}
