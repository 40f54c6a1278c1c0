package engine

import (
	"sync/atomic"
	"time"
)

// Clock is the coarse clock the engine reads on every call: one atomic load
// instead of a time.Now per Get. By default the engine makes its own and its
// janitor advances it every Options.ClockResolution. A Clock made with
// NewManualClock moves only when told, which lets tests step through expiry.
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
