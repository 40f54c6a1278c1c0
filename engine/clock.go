package engine

import (
	"sync/atomic"
	"time"
)

// Clock is the coarse clock the engine reads on every call: one atomic load
// instead of a time.Now per Get. By default the engine makes its own and its
// janitor advances it every Options.ClockResolution while the engine is in
// use. A Clock made with NewManualClock moves only when told, which lets
// tests step through expiry.
type Clock struct {
	ns atomic.Int64
}

// NewManualClock returns a clock reading t that changes only through Set and
// Advance. Pass it in Options.Clock.
func NewManualClock(t time.Time) *Clock {
	c := new(Clock)
	c.Set(t)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func (c *Clock) nanos() int64 { return c.ns.Load() }

// The engine's own clock keeps its readings even, and marks itself asleep by
// setting the lowest bit: the janitor stops advancing an idle engine's
// clock, and the first call that reads it then wakes it (now). A manual
// clock is never asleep, whatever its readings.
const asleep = 1

// now returns the engine's coarse time, waking its own clock if the janitor
// let it sleep.
func (e *Engine) now() int64 {
	n := e.clock.nanos()
	if n&asleep != 0 && e.ownClock {
		return e.wakeClock(n)
	}
	return n
}

// wakeClock sets the sleeping clock, read as n, to the time and tells the
// janitor to tick again.
func (e *Engine) wakeClock(n int64) int64 {
	t := time.Now().UnixNano() &^ asleep
	if !e.clock.ns.CompareAndSwap(n, t) {
		return e.clock.nanos() &^ asleep // another caller woke it
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return t
}
