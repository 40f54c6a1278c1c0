package engine

import (
	"math"
	"time"

	"github.com/sesscache/sesscache/shard"
)

// janitor is the engine's clock and reaper. While the engine is in use it
// advances the engine's own clock every ClockResolution; once nothing has
// used the engine for a second, it lets the clock sleep (the next call
// wakes it, see Engine.now) and itself sleeps until the next session is
// due. It reaps only when a session is due, visiting the shards in turn
// with a bounded budget per visit. It stops at Close.
func (e *Engine) janitor() {
	defer e.wg.Done()
	res := e.opts.ClockResolution
	idleAfter := max(int(time.Second/res), 1)
	timer := time.NewTimer(res)
	defer timer.Stop()
	var lastActivity uint64
	idle := 0
	for {
		select {
		case <-e.stop:
			return
		case <-timer.C:
		case <-e.wake:
			idle = 0
		}
		now := e.clock.nanos()
		if e.ownClock {
			t := time.Now().UnixNano() &^ asleep
			if now&asleep == 0 {
				e.clock.ns.CompareAndSwap(now, t)
			}
			now = t
		}
		if !e.opts.manualReap && now/1e9 >= e.nextReap.Load() {
			e.nextReap.Store(math.MaxInt64) // writers lower it while we reap
			_, next := e.reap(now)
			e.noteDue(next)
		}
		wait := res
		if e.ownClock {
			if a := e.activity(); a != lastActivity {
				lastActivity, idle = a, 0
			} else if idle++; idle >= idleAfter {
				// Asleep: the clock is marked so that its next reader sets
				// it, and the janitor waits for that or for a deadline.
				n := e.clock.nanos()
				if n&asleep == 0 {
					e.clock.ns.CompareAndSwap(n, n|asleep)
				}
				wait = time.Hour
				if !e.opts.manualReap {
					if due := e.nextReap.Load(); due < math.MaxInt64 {
						wait = min(wait, time.Until(time.Unix(due, 0)))
					}
				}
				wait = max(wait, res)
			}
		} else if e.opts.manualReap {
			wait = time.Hour // a test's clock and reaping: nothing to do
		}
		timer.Reset(wait)
	}
}

// noteDeadline tells the janitor that a session is due at deadline (unix
// ns), waking it if that is earlier than it planned to look.
func (e *Engine) noteDeadline(deadline int64) {
	if e.noteDue((deadline + 1e9 - 1) / 1e9) {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// noteDue lowers the janitor's next reaping time to sec (unix s) and
// reports whether it did.
func (e *Engine) noteDue(sec int64) bool {
	for {
		cur := e.nextReap.Load()
		if sec >= cur {
			return false
		}
		if e.nextReap.CompareAndSwap(cur, sec) {
			return true
		}
	}
}

// reap visits every shard once, removing at most ReapBudget sessions from
// each that are past their deadline at now (unix ns). It returns how many it
// removed and when it should run next (unix s): at once if a backlog
// remains, else at the earliest deadline left.
func (e *Engine) reap(now int64) (removed int, next int64) {
	next = math.MaxInt64
	var expired []shard.Rec
	for i := range e.shards {
		s := &e.shards[i]
		expired = expired[:0]
		s.Lock()
		n, more := s.PopExpired(now, e.opts.ReapBudget, func(r shard.Rec) bool {
			if _, busy := s.pending[r.Key()]; busy {
				return false // a logged write decides what becomes of it
			}
			e.forget(i, r)
			if r.Flags()&shard.FlagAlias == 0 {
				expired = append(expired, r)
			}
			return true
		})
		removed += n
		if more {
			next = now / 1e9
		} else if d, ok := s.NextDue(); ok {
			next = min(next, int64(d))
		}
		s.Unlock()
		for _, r := range expired {
			e.stats.expired.Add(1)
			if e.opts.OnEvent != nil {
				e.opts.OnEvent(Event{Kind: EventExpired, Handle: handleOf(r), UserID: r.UserID(), Time: time.Unix(0, now)})
			}
		}
	}
	return removed, next
}
