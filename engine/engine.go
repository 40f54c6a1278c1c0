package engine

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/token"
)

// paddedShard keeps two shards off each other's cache lines (128 bytes
// covers the adjacent-line prefetcher too).
type paddedShard struct {
	shard.Shard
	_ [128 - unsafe.Sizeof(shard.Shard{})%128]byte
}

// Engine is a session store. All methods are safe for concurrent use.
type Engine struct {
	// Read on every call; written only by Open and Close.
	shards []paddedShard
	mask   uint64
	clock  *Clock
	closed atomic.Bool
	opts   Options

	live  atomic.Int64 // sessions, for MaxSessions and Len
	users userIndex
	stats counters

	jr          *journal // nil in memory
	recovery    RecoveryStats
	signer      *token.Signer // nil: unsigned IDs
	sealer      *sealer       // nil: data in the clear on disk
	openScratch []byte        // replay's buffer for opening sealed data

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open returns a running engine configured by opts.
func Open(opts Options) (*Engine, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		shards: make([]paddedShard, o.Shards),
		mask:   uint64(o.Shards - 1),
		clock:  o.Clock,
		opts:   o,
		stop:   make(chan struct{}),
	}
	var seed [8]byte
	for i := range e.shards {
		_, _ = rand.Read(seed[:])
		e.shards[i].Init(binary.LittleEndian.Uint64(seed[:]))
	}
	e.users.init(o.Shards)
	e.stats.hits.init()
	if len(o.SigningKeys) > 0 {
		if e.signer, err = token.NewSigner(o.SigningKeys...); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if e.sealer, err = newSealer(o.EncryptionKeys); err != nil {
		return nil, err
	}
	ownClock := e.clock == nil
	if ownClock {
		e.clock = new(Clock)
		e.clock.Set(time.Now())
	}
	if o.Dir != "" {
		if err := e.openJournal(); err != nil {
			return nil, err
		}
	}
	e.wg.Add(1)
	go e.janitor(ownClock)
	if e.jr != nil && !o.manualReap {
		e.wg.Add(1)
		go e.snapshotLoop()
	}
	return e, nil
}

// Close stops the engine's goroutines and, for a persistent engine, writes a
// final snapshot if Options.SnapshotOnClose, writes and fsyncs the log and
// releases the data directory. It returns the first
// error. Later calls return ErrClosed, as does every other method once Close
// has begun; writes already under way finish or fail with ErrClosed.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return ErrClosed
	}
	close(e.stop)
	e.wg.Wait()
	return e.closeJournal()
}

// shardOf returns the shard for a key hash. The low 16 bits pick it, so a
// session recovered from disk, which carries those bits as its hint, lands
// in the shard its ID hashes to.
func (e *Engine) shardOf(h uint64) (*shard.Shard, int) {
	i := int(h & e.mask)
	return &e.shards[i].Shard, i
}

// Now returns the engine's coarse clock: the time it judges deadlines by.
func (e *Engine) Now() time.Time { return time.Unix(0, e.clock.nanos()) }

// Len returns the number of sessions, including any past their deadline that
// the janitor has not reaped yet.
func (e *Engine) Len() int { return int(e.live.Load()) }

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	st := Stats{
		Live:    e.Len(),
		Hits:    e.stats.hits.load(),
		Misses:  e.stats.misses.Load(),
		Expired: e.stats.expired.Load(),
		Created: e.stats.created.Load(),
		Deleted: e.stats.deleted.Load(),

		BindingMismatches: e.stats.mismatches.Load(),
		ShardSizes:        make([]int, len(e.shards)),
	}
	for i := range e.shards {
		st.ShardSizes[i] = e.shards[i].Len()
	}
	if e.jr != nil {
		st.WAL = e.jr.log.Stats()
		st.Recovery = e.recovery
		st.Snapshot = e.snapshotStats()
	}
	return st
}

// janitor advances the engine's own clock and reaps expired sessions, one
// shard at a time with a bounded budget per visit, until Close.
func (e *Engine) janitor(ownClock bool) {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.ClockResolution)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			if ownClock {
				e.clock.Set(time.Now())
			}
			if !e.opts.manualReap {
				e.reap()
			}
		}
	}
}

// reap visits every shard once, removing at most ReapBudget entries from
// each. A backlog drains over successive ticks, never by holding a lock long.
func (e *Engine) reap() int {
	now := e.clock.nanos()
	total := 0
	for i := range e.shards {
		s := &e.shards[i].Shard
		s.Lock()
		n, _ := s.PopExpired(now, e.opts.ReapBudget, func(r shard.Rec) {
			e.forget(i, r)
			if r.Flags()&shard.FlagAlias == 0 {
				e.stats.expired.Add(1)
			}
		})
		s.Unlock()
		total += n
	}
	return total
}

// forget updates the engine's books for a record about to leave shard i.
// Caller holds the shard's lock.
func (e *Engine) forget(i int, r shard.Rec) {
	if r.Flags()&shard.FlagAlias != 0 {
		return
	}
	e.live.Add(-1)
	if u := r.UserID(); u != "" {
		e.users.remove(u, r.Key())
	}
}
