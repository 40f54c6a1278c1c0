package engine

import (
	"runtime"
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

// perP is a counter kept per processor: a hot path adds to a cache line of
// its own processor, so cores never contend for it. Reading sums the lines.
type perP struct {
	cells []struct {
		n atomic.Uint64
		_ [56]byte
	}
	mask int
}

func (c *perP) init() {
	n := 1
	for n < runtime.GOMAXPROCS(0) {
		n *= 2
	}
	c.cells = make([]struct {
		n atomic.Uint64
		_ [56]byte
	}, n)
	c.mask = n - 1
}

func (c *perP) inc() {
	// GOMAXPROCS may have grown since init: then processors share cells,
	// which the atomic add keeps correct.
	p := procPin()
	c.cells[p&c.mask].n.Add(1)
	procUnpin()
}

func (c *perP) load() uint64 {
	var sum uint64
	for i := range c.cells {
		sum += c.cells[i].n.Load()
	}
	return sum
}

type counters struct {
	hits       perP
	misses     atomic.Uint64
	expired    atomic.Uint64
	created    atomic.Uint64
	deleted    atomic.Uint64
	mismatches atomic.Uint64
}
