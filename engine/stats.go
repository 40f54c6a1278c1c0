package engine

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Stats is a point-in-time view of an engine's counters. Counters are
// cumulative since Open; each counts an event once.
type Stats struct {
	// Persistent says the engine has a data directory (Options.Dir): Log,
	// Recovery and Snapshot are about it; in memory they are zero.
	Persistent bool
	// Live is the number of sessions held, including ones past their deadline
	// that the janitor has not reaped yet; Anonymous those without an owner.
	Live      int
	Anonymous int
	// Hits counts lookups (Get, GetBound, Find) that returned a session,
	// Rotated views included.
	Hits uint64
	// Misses counts lookups that found no live session: unknown, expired,
	// bound to another fingerprint, or a malformed token.
	Misses uint64
	// Created counts sessions created, Updated writes by Update, Rotated
	// rotations.
	Created, Updated, Rotated uint64
	// Deleted counts sessions ended by Delete, Revoked by RevokeUser,
	// RevokeOthers and RevokeSession, Evicted by a cap, Expired by passing
	// their deadline (once each, when removed).
	Deleted, Revoked, Evicted, Expired uint64
	// BindingMismatches counts lookups refused because the session is bound
	// to another fingerprint, or to one and looked up without it.
	BindingMismatches uint64
	// ShardSizes holds the number of entries in each shard, forwarding
	// entries left by rotation included.
	ShardSizes []int
	// Log holds the write-ahead log's counters (zero in memory).
	Log LogStats
	// Recovery describes what Open recovered (zero in memory).
	Recovery RecoveryStats
	// Snapshot describes the latest snapshot (zero in memory).
	Snapshot SnapshotStats
}

// LogStats are a persistent engine's write-ahead log counters.
type LogStats struct {
	// LastLSN is the last log sequence number assigned; WrittenLSN the
	// highest handed to the operating system; DurableLSN the highest
	// covered by an fsync.
	LastLSN, WrittenLSN, DurableLSN uint64
	// Records and BytesAppended count what was appended since Open.
	Records, BytesAppended uint64
	// Writes counts write calls to segment files (about one per batch:
	// Records/Writes is the group commit's size); Fsyncs the fsyncs of
	// segment data (Records/Fsyncs under SyncAlways).
	Writes, Fsyncs uint64
	// Segments is the number of segment files; DiskBytes their data.
	Segments  int
	DiskBytes int64
	// Failed says the log failed and the engine is read-only.
	Failed bool
}

// RecordsPerFsync returns Records/Fsyncs, the group commit factor; 0 if
// there has been no fsync.
func (s LogStats) RecordsPerFsync() float64 {
	if s.Fsyncs == 0 {
		return 0
	}
	return float64(s.Records) / float64(s.Fsyncs)
}

// striped is a counter spread over cache lines so that cores adding to it
// at once rarely touch the same line. A goroutine picks its line from the
// address of its own stack, which is stable while it runs and distinct from
// every other goroutine's, so one goroutine keeps adding to one line, and
// goroutines on different cores mostly to different lines. It needs no
// runtime internals.
type striped struct {
	cells []paddedCounter
	shift uint
}

type paddedCounter struct {
	n atomic.Uint64
	_ [56]byte
}

func (c *striped) init() {
	n := 8
	for n < 4*runtime.GOMAXPROCS(0) {
		n *= 2
	}
	c.cells = make([]paddedCounter, n)
	c.shift = uint(64 - bitsOf(n))
}

func bitsOf(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

func (c *striped) add(n uint64) {
	var here byte
	// A stack is at least 2 KiB; the multiply spreads the bits above that
	// over the index.
	i := uint64(uintptr(unsafe.Pointer(&here))>>11) * 0x9E3779B97F4A7C15 >> c.shift
	c.cells[i].n.Add(n)
}

func (c *striped) load() uint64 {
	var sum uint64
	for i := range c.cells {
		sum += c.cells[i].n.Load()
	}
	return sum
}

type counters struct {
	hits, misses                       striped
	created, updated, rotated          atomic.Uint64
	deleted, revoked, evicted, expired atomic.Uint64
	mismatches                         atomic.Uint64
}

func (c *counters) init() {
	c.hits.init()
	c.misses.init()
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	st := Stats{
		Live:              e.Len(),
		Anonymous:         int(e.anon.Load()),
		Hits:              e.stats.hits.load(),
		Misses:            e.stats.misses.load(),
		Created:           e.stats.created.Load(),
		Updated:           e.stats.updated.Load(),
		Rotated:           e.stats.rotated.Load(),
		Deleted:           e.stats.deleted.Load(),
		Revoked:           e.stats.revoked.Load(),
		Evicted:           e.stats.evicted.Load(),
		Expired:           e.stats.expired.Load(),
		BindingMismatches: e.stats.mismatches.Load(),
		ShardSizes:        make([]int, len(e.shards)),
	}
	for i := range e.shards {
		st.ShardSizes[i] = e.shards[i].Len()
	}
	if e.jr != nil {
		st.Persistent = true
		ws := e.jr.log.Stats()
		st.Log = LogStats{
			LastLSN: ws.LastLSN, WrittenLSN: ws.WrittenLSN, DurableLSN: ws.DurableLSN,
			Records: ws.Records, BytesAppended: ws.BytesAppended, Writes: ws.Writes, Fsyncs: ws.Fsyncs,
			Segments: ws.Segments, DiskBytes: ws.DiskBytes, Failed: ws.Failed,
		}
		st.Recovery = e.recovery
		st.Snapshot = e.snapshotStats()
	}
	return st
}

// activity returns a number that changes whenever the engine is used: the
// janitor lets the clock sleep once it stops changing.
func (e *Engine) activity() uint64 {
	c := &e.stats
	return c.hits.load() + c.misses.load() + c.created.Load() + c.updated.Load() + c.rotated.Load() +
		c.deleted.Load() + c.revoked.Load()
}
