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

// engShard is one lock stripe with what the engine keeps beside it.
type engShard struct {
	shard.Shard
	// pending holds the keys of records a write has logged but not yet
	// applied (see commit), by their write. Guarded by the shard's lock.
	pending map[shard.Key]*txn
	// resolved is signalled, with the shard's lock as its locker, when a
	// pending write is applied or abandoned.
	resolved sync.Cond
}

// paddedShard keeps two shards off each other's cache lines (128 bytes
// covers the adjacent-line prefetcher too).
type paddedShard struct {
	engShard
	_ [128 - unsafe.Sizeof(engShard{})%128]byte
}

// Engine is a session store. All methods are safe for concurrent use.
type Engine struct {
	// Read on every call; written only by Open and Close.
	shards   []paddedShard
	mask     uint64
	clock    *Clock
	ownClock bool
	closed   atomic.Bool
	opts     Options

	live  atomic.Int64 // sessions, for MaxSessions and Len; creations reserve ahead
	anon  atomic.Int64 // anonymous sessions, likewise
	stamp atomic.Int64 // the last time nextStamp handed out
	users userIndex
	stats counters

	jr          *journal // nil in memory
	touchSecs   uint32   // TouchLogInterval in seconds
	touchGrain  int64    // how far the clock moves before a lookup records an access
	claimTouch  bool     // a touch past touchSecs is logged or reported
	deferApply  bool     // writes reach memory only once the log holds them (see commit)
	recovery    RecoveryStats
	signer      *token.Signer // nil: unsigned IDs
	sealer      *sealer       // nil: records in the clear on disk
	openScratch []byte        // replay's buffer for opening sealed records

	nextReap atomic.Int64  // unix s at which the janitor means to reap next
	wake     chan struct{} // tells the janitor to look again now
	stop     chan struct{}
	wg       sync.WaitGroup
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
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	var seed [8]byte
	for i := range e.shards {
		_, _ = rand.Read(seed[:])
		s := &e.shards[i]
		s.Init(binary.LittleEndian.Uint64(seed[:]))
		s.pending = make(map[shard.Key]*txn)
		s.resolved.L = &s.Shard
	}
	e.users.init(o.Shards)
	e.touchSecs = uint32(o.TouchLogInterval / time.Second)
	// Deadlines are kept in whole seconds (the heap rounds them up), so an
	// access need not be recorded more often than that: most lookups then
	// only read the record, instead of dirtying its cache line every time
	// the coarse clock ticks. A session with a short idle timeout gets a
	// finer grain (a 64th of it; see get).
	e.touchGrain = int64(time.Second)
	e.claimTouch = o.Dir != "" || o.OnTouch != nil
	e.stats.init()
	if len(o.SigningKeys) > 0 {
		if e.signer, err = token.NewSigner(o.SigningKeys...); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if e.sealer, err = newSealer(o.EncryptionKeys); err != nil {
		return nil, err
	}
	e.ownClock = e.clock == nil
	if e.ownClock {
		e.clock = new(Clock)
		e.clock.ns.Store(time.Now().UnixNano() &^ asleep)
	}
	if o.Dir != "" {
		if err := e.openJournal(); err != nil {
			return nil, err
		}
	}
	e.wg.Add(1)
	go e.janitor()
	if e.jr != nil && !o.manualReap {
		e.wg.Add(1)
		go e.snapshotLoop()
	}
	return e, nil
}

// Close stops the engine's goroutines and, for a persistent engine, writes a
// final snapshot if Options.SnapshotOnClose, writes and fsyncs the log and
// releases the data directory. It returns the first error. Later calls
// return ErrClosed, as does every other method once Close has begun; writes
// already under way finish or fail with ErrClosed.
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
func (e *Engine) shardOf(h uint64) (*engShard, int) {
	i := int(h & e.mask)
	return &e.shards[i].engShard, i
}

// Now returns the engine's coarse clock: the time it judges deadlines by.
func (e *Engine) Now() time.Time { return time.Unix(0, e.now()) }

// Len returns the number of sessions, including any past their deadline that
// the janitor has not reaped yet, and, for a moment, sessions being created.
func (e *Engine) Len() int { return int(e.live.Load()) }

// writable returns the error every write returns up front: ErrClosed, or
// ErrReadOnly once the log has failed.
func (e *Engine) writable() error {
	if e.closed.Load() {
		return ErrClosed
	}
	if e.jr != nil {
		if err := e.jr.log.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrReadOnly, err)
		}
	}
	return nil
}

// nextStamp returns a time no earlier than now and later than every time it
// returned before, so that creation and authentication times order sessions
// strictly even within one tick of the coarse clock.
func (e *Engine) nextStamp(now int64) int64 {
	for {
		last := e.stamp.Load()
		t := max(now, last+1)
		if e.stamp.CompareAndSwap(last, t) {
			return t
		}
	}
}

// satAdd returns a+b, saturating instead of overflowing.
func satAdd(a, b int64) int64 {
	if s := a + b; (s > a) == (b > 0) {
		return s
	}
	if b > 0 {
		return 1<<63 - 1
	}
	return -1 << 63
}
