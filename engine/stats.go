package engine

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/sesscache/sesscache/wal"
)

// Stats is a point-in-time view of an engine's counters. Counters are
// cumulative since Open.
type Stats struct {
	// Live is the number of sessions held, including ones past their deadline
	// that the janitor has not reaped yet.
	Live int
	// Hits counts Gets that returned a session.
	Hits uint64
	// Misses counts Gets that found no live session (expired ones included).
	Misses uint64
	// Expired counts sessions found or reaped past their deadline.
	Expired uint64
	// Created counts sessions created.
	Created uint64
	// Deleted counts sessions removed by Delete, Rotate (the old ID),
	// RevokeUser and the per-user cap.
	Deleted uint64
	// BindingMismatches counts GetBound calls refused because the session is
	// bound to another fingerprint.
	BindingMismatches uint64
	// ShardSizes holds the number of entries in each shard, forwarding
	// entries left by rotation included.
	ShardSizes []int
	// WAL holds the write-ahead log's counters (zero in memory): records,
	// bytes, writes, fsyncs and records per fsync, segments on disk.
	WAL wal.Stats
	// Recovery describes what Open recovered (zero in memory).
	Recovery RecoveryStats
	// Snapshot describes the latest snapshot (zero in memory).
	Snapshot SnapshotStats
}

// stripes spreads a hot counter over several cache lines so that cores
// counting at once rarely write the same line. A random stripe costs a few
// nanoseconds and needs no goroutine or processor identity.
const stripes = 16

type stripedCounter struct {
	s [stripes]struct {
		n atomic.Uint64
		_ [56]byte
	}
}

func (c *stripedCounter) inc() { c.s[rand.Uint32()%stripes].n.Add(1) }

func (c *stripedCounter) load() uint64 {
	var sum uint64
	for i := range c.s {
		sum += c.s[i].n.Load()
	}
	return sum
}

type counters struct {
	hits       stripedCounter
	misses     atomic.Uint64
	expired    atomic.Uint64
	created    atomic.Uint64
	deleted    atomic.Uint64
	mismatches atomic.Uint64
}
