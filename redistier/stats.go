package redistier

import (
	"sync/atomic"

	"github.com/sesscache/sesscache/engine"
)

// Stats are a Store's counters, cumulative since New.
type Stats struct {
	// Local is the local tier's engine: Local.Hits counts lookups served
	// from a copy, Local.Live the copies held.
	Local engine.Stats
	// Reads counts lookups that went to Redis (a miss, an expired copy, a
	// write's read), Fills the copies kept from reads and writes,
	// FillsSkipped the results not kept because an invalidation or a
	// flush raced them.
	Reads, Fills, FillsSkipped uint64
	// Writes counts successful write calls.
	Writes uint64
	// Invalidations counts record keys Redis reported changed; Flushes
	// the times every copy was dropped (a connection lost, a slot map
	// changed, a server flushed).
	Invalidations, Flushes uint64
	// Touches counts accesses written behind, TouchBatches the pipelines
	// they went in, TouchErrors those that failed.
	Touches, TouchBatches, TouchErrors uint64
	// Unavailable counts calls that failed with ErrUnavailable.
	Unavailable uint64
	// Commands counts the commands sent to Redis for sessions (lookups,
	// writes, revocations, listings, touches), each a round trip or part
	// of a pipelined batch (touches); the connections' own housekeeping
	// (pings, the slot map) is not counted. How many Redis executes,
	// scripts' calls included, is in its INFO commandstats.
	Commands uint64
}

type counters struct {
	reads, fills, fillsSkipped, writes atomic.Uint64
	invalidations, flushes             atomic.Uint64
	touches, touchBatches, touchErrors atomic.Uint64
	unavailable, commands              atomic.Uint64
	undos                              atomic.Uint64 // cross-slot logins rolled back (for tests)
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{
		Local:         s.local.Stats(),
		Reads:         c.reads.Load(),
		Fills:         c.fills.Load(),
		FillsSkipped:  c.fillsSkipped.Load(),
		Writes:        c.writes.Load(),
		Invalidations: c.invalidations.Load(),
		Flushes:       c.flushes.Load(),
		Touches:       c.touches.Load(),
		TouchBatches:  c.touchBatches.Load(),
		TouchErrors:   c.touchErrors.Load(),
		Unavailable:   c.unavailable.Load(),
		Commands:      c.commands.Load(),
	}
}
