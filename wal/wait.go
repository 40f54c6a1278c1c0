package wal

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Wait blocks until the record with the given LSN is as safe as the sync
// policy promises: covered by an fsync (SyncAlways), written to the file
// (SyncEverySecond), or not at all (SyncNo, unless appends have run more than
// 8 MiB ahead of the disk: then it waits for the write, as backpressure).
// It returns nil if it got there, and otherwise the log's failure (wrapping
// ErrFailed and the cause): that record did not make it. Wait(0) returns nil;
// waiting for an LSN that was never assigned is an error.
func (l *Log) Wait(lsn uint64) error {
	if l.covered(lsn) {
		return nil
	}
	if lsn > l.lastLSN.Load() {
		return fmt.Errorf("wal: Wait for LSN %d, beyond the last assigned %d", lsn, l.lastLSN.Load())
	}
	if l.opts.Sync == SyncNo && l.appendedBytes.Load()-l.writtenBytes.Load() <= maxBacklog {
		return l.err()
	}
	if l.opts.Sync == SyncAlways {
		return l.await(&l.durableWaiters, &l.durableLSN, lsn)
	}
	return l.await(&l.writtenWaiters, &l.writtenLSN, lsn)
}

// maxBacklog is how far SyncNo lets appends run ahead of the disk: past it,
// Wait waits for the write, so a slow disk slows writers down (outside their
// locks) instead of growing the batch without bound.
const maxBacklog = 8 << 20

// covered reports whether lsn has been fsynced (SyncAlways) or written.
func (l *Log) covered(lsn uint64) bool {
	if l.opts.Sync == SyncAlways {
		return l.durableLSN.Load() >= lsn
	}
	return l.writtenLSN.Load() >= lsn
}

// Sync writes and fsyncs every record appended so far, whatever the policy,
// and returns once that is done or the log has failed.
func (l *Log) Sync() error {
	l.mu.Lock()
	if err := l.err(); err != nil {
		l.mu.Unlock()
		return err
	}
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	target := l.last
	l.syncReq = max(l.syncReq, target)
	l.mu.Unlock()
	l.wake()
	return l.await(&l.durableWaiters, &l.durableLSN, target)
}

// WaitDurable blocks until an fsync covers the record with the given LSN,
// whatever the policy: under SyncEverySecond and SyncNo it asks the flusher
// for that fsync now rather than at its next interval. It returns nil, or
// the log's failure as Wait does. The engine uses it for writes that must
// survive a power cut under any policy, such as a logout.
func (l *Log) WaitDurable(lsn uint64) error {
	if l.durableLSN.Load() >= lsn {
		return nil
	}
	l.mu.Lock()
	if err := l.err(); err != nil {
		l.mu.Unlock()
		return err
	}
	if lsn > l.last {
		l.mu.Unlock()
		return fmt.Errorf("wal: WaitDurable for LSN %d, beyond the last assigned %d", lsn, l.last)
	}
	l.syncReq = max(l.syncReq, lsn)
	l.mu.Unlock()
	l.wake()
	return l.await(&l.durableWaiters, &l.durableLSN, lsn)
}

// await blocks until level reaches lsn, the log fails or the flusher stops,
// and says which. Reaching lsn wins over a failure that came after it.
//
// A waiter checks and queues itself under waitMu, and every change of
// durableLSN, writtenLSN, the failure or stopped is followed by notify,
// which takes waitMu: so a waiter either sees the change or is queued when
// notify looks, and no wakeup is lost.
func (l *Log) await(q *waitQueue, level *atomic.Uint64, lsn uint64) error {
	l.waitMu.Lock()
	if level.Load() < lsn && l.err() == nil && !l.stopped.Load() {
		w := waiterPool.Get().(*waiter)
		w.lsn = lsn
		q.push(w)
		l.waitMu.Unlock()
		<-w.wake
		waiterPool.Put(w)
	} else {
		l.waitMu.Unlock()
	}
	switch {
	case level.Load() >= lsn:
		return nil
	case l.err() != nil:
		return l.err()
	}
	return ErrClosed
}

// notify wakes exactly the waiters whose LSN is now covered, or all of them
// once the log has failed or stopped. Unlike a condition variable's
// broadcast, it leaves the others asleep: under SyncAlways, when an fsync
// completes, the writers whose records arrived during it are still waiting
// for the next one, and waking them only to sleep again costs scheduler
// work and a convoy on waitMu.
func (l *Log) notify() {
	l.waitMu.Lock()
	if l.err() != nil || l.stopped.Load() {
		l.durableWaiters.release(math.MaxUint64)
		l.writtenWaiters.release(math.MaxUint64)
	} else {
		l.durableWaiters.release(l.durableLSN.Load())
		l.writtenWaiters.release(l.writtenLSN.Load())
	}
	l.waitMu.Unlock()
}

// gatherLimit returns how long gather may hold a batch back after an fsync
// that took fsync: as long again, so that the disk idles at most about half
// the time when the writers do not come back, but never more than a
// millisecond, so that one slow fsync (a stalled disk, a rotation) does not
// make the next batch wait as long for writers that may never come back.
// Tests replace it.
var gatherLimit = func(fsync time.Duration) time.Duration { return min(fsync, time.Millisecond) }

// notifyAndRegroup is notify after one of the flusher's fsyncs. Under
// SyncAlways it also tells gather how many appends to wait for: one from
// every writer it wakes, who will append again at once if the load goes on.
// It sets that count before it wakes them, so that none of their appends
// is missed. It sets no target after a gather that timed out with fewer
// than half of them back: then the writers are mostly not coming back (each
// request writes once and leaves), and holding every batch would add up to
// an fsync's time to every write; this way it is at most every other one.
func (l *Log) notifyAndRegroup(fsync time.Duration) {
	if l.opts.Sync != SyncAlways || l.err() != nil {
		l.notify()
		return
	}
	l.waitMu.Lock()
	durable := l.durableLSN.Load()
	for w := l.durableWaiters.pop(durable); w != nil; w = l.durableWaiters.pop(durable) {
		l.woken = append(l.woken, w)
	}
	l.waitMu.Unlock()
	l.mu.Lock()
	switch {
	case len(l.woken) == 0:
	case l.gatherMissed:
		l.gatherMissed = false
	default:
		l.gatherFrom, l.gatherWant = l.last, uint64(len(l.woken))
		l.gatherUntil = time.Now().Add(gatherLimit(fsync))
	}
	l.mu.Unlock()
	// Woken outside both locks, so that they do not run straight into
	// them; and only now, so that none of them appends before gatherFrom.
	for i, w := range l.woken {
		w.wake <- struct{}{}
		l.woken[i] = nil
	}
	l.woken = l.woken[:0]
}

// gather is where the flusher, under SyncAlways, waits with l.mu held before
// it takes a batch: until the writers the last fsync woke have appended
// again, or until gatherUntil. Without it the flusher takes the batch as
// soon as the first of them has appended, the rest wait for a whole extra
// fsync, and the writers settle into two groups that take turns: each fsync
// covers about half of them (BENCHMARKS.md). With it one fsync covers them
// all, for the price of the disk idling while they come back, which on
// this project's benchmarks takes much less than an fsync. Appends without
// a waiter (touches) count too, which can only end the wait early. A lone
// writer is never held: its append is the whole target. t is the flusher's
// timer, stopped on entry and on return.
func (l *Log) gather(t *time.Timer) {
	for l.gatherWant > 0 && l.last-l.gatherFrom < l.gatherWant && !l.closing && l.syncReq <= l.durableLSN.Load() {
		d := time.Until(l.gatherUntil)
		if d <= 0 {
			l.gatherMissed = 2*(l.last-l.gatherFrom) < l.gatherWant
			break
		}
		l.mu.Unlock()
		t.Reset(d)
		select {
		case <-l.kick:
		case <-t.C:
		}
		t.Stop()
		l.mu.Lock()
	}
	l.gatherWant = 0
}

// waiter is one goroutine blocked in await.
type waiter struct {
	lsn  uint64
	wake chan struct{} // capacity 1: release sends once, await receives once
}

// waiterPool recycles waiters with their channels, so that waiting does not
// allocate.
var waiterPool = sync.Pool{New: func() any { return &waiter{wake: make(chan struct{}, 1)} }}

// waitQueue is a min-heap of waiters by LSN; waitMu guards it. Writers
// mostly queue in LSN order, but nothing guarantees it.
type waitQueue []*waiter

func (q *waitQueue) push(w *waiter) {
	h := append(*q, w)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].lsn <= h[i].lsn {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	*q = h
}

// release wakes and removes every waiter whose LSN is at most lsn.
func (q *waitQueue) release(lsn uint64) {
	for w := q.pop(lsn); w != nil; w = q.pop(lsn) {
		w.wake <- struct{}{}
	}
}

// pop removes and returns the waiter with the lowest LSN if that LSN is at
// most lsn, and otherwise returns nil. The caller must wake it, once.
func (q *waitQueue) pop(lsn uint64) *waiter {
	h := *q
	if len(h) == 0 || h[0].lsn > lsn {
		return nil
	}
	w := h[0]
	n := len(h) - 1
	h[0], h[n] = h[n], nil
	h = h[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && h[c+1].lsn < h[c].lsn {
			c++
		}
		if h[i].lsn <= h[c].lsn {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	*q = h
	return w
}
