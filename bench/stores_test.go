package bench

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/sesscache/sesscache/engine"
)

// store is all a workload sees of a session store, so that each workload is
// written once. Every adapter maps these calls onto its cache's ordinary API,
// the way a server using that cache would call it.
//
// The data given to Create and Update is the caller's buffer, which it goes
// on reusing, as a handler that encodes into a pooled buffer does. sesscache
// copies it by contract; the adapters of caches that keep the slice they are
// given copy it first (bytes.Clone), so every store pays for owning its data.
//
// Every workload calls through this interface, so every store pays the same
// one indirect call; BenchmarkAdapter measures what it costs.
type store interface {
	// Get returns the session's data, or false if there is no live session.
	Get(id string) ([]byte, bool)
	// Create stores a new session under id. It returns false if the store
	// dropped the write (only ristretto does). sesscache draws its own IDs,
	// so its adapter ignores id: see sesscacheStore.Create.
	Create(id string, data []byte) bool
	// Update replaces the data of an existing session.
	Update(id string, data []byte) bool
	// Close stops the store's goroutines so it can be collected.
	Close()
}

// settler is a store whose writes land asynchronously. settle returns once
// every write made before it is visible, so a fixture is complete before
// anything is timed.
type settler interface{ settle() }

// kind is a store under test, as it appears in benchmark names (store=name).
type kind struct {
	name string
	// open returns an empty store. capacity is the most sessions it will
	// hold; only ristretto, which must be sized, uses it. No other store is
	// presized, as sesscache cannot be.
	open func(capacity int) store
	// readsOnly marks a store that is not safe for concurrent writes: only
	// the Get and Memory benchmarks run it (its fixture is loaded by one
	// goroutine).
	readsOnly bool
}

// Timeouts every expiring store is given: sesscache's defaults.
const (
	idleTimeout     = 30 * time.Minute
	absoluteTimeout = 24 * time.Hour
	// coarseResolution is how often the coarse clocks tick: sesscache's
	// default ClockResolution.
	coarseResolution = 10 * time.Millisecond
)

const sesscacheName = "sesscache"

// kinds lists every store, sesscache first: benchstat's first column is the
// base the others are compared with. run.sh lists the same names.
var kinds = []kind{
	{name: sesscacheName, open: openSesscache},
	{name: "otter-eaa", open: func(int) store { return openOtter(true, false) }},
	{name: "otter-eaa-coarse", open: func(int) store { return openOtter(true, true) }},
	{name: "otter", open: func(int) store { return openOtter(false, false) }},
	{name: "ristretto", open: openRistretto},
	{name: "go-cache", open: openGoCache},
	{name: "scs-memstore", open: openSCS},
	{name: "sync.Map", open: func(int) store { return new(syncMapStore) }},
	{name: "rwmutex-shards", open: openRWShards},
	{name: "unlocked-map", open: func(int) store { return &unlockedMap{m: map[string][]byte{}} }, readsOnly: true},
}

// sesscacheStore is the engine with default Options: in memory, 30 minute
// sliding idle expiry, 24 hour absolute expiry, coarse clock.
type sesscacheStore struct{ e *engine.Engine }

func openSesscache(int) store {
	e, err := engine.Open(engine.Options{})
	if err != nil {
		panic(err)
	}
	return &sesscacheStore{e: e}
}

func (s *sesscacheStore) Get(id string) ([]byte, bool) {
	sess, err := s.e.Get(id)
	if err != nil {
		return nil, false
	}
	return sess.Data(), true
}

// Create ignores id: the engine draws every ID itself (16 bytes from
// crypto/rand) and returns it as a new string, work the peers, which are
// handed ready-made keys, do not do. BenchmarkNewID measures that work.
func (s *sesscacheStore) Create(_ string, data []byte) bool {
	_, err := s.e.Create(context.Background(), engine.CreateOptions{Data: data})
	return err == nil
}

// create stores a session and returns its ID, for loading a fixture.
func (s *sesscacheStore) create(data []byte) string {
	sess, err := s.e.Create(context.Background(), engine.CreateOptions{Data: data})
	if err != nil {
		panic(err)
	}
	return sess.ID()
}

func (s *sesscacheStore) Update(id string, data []byte) bool {
	_, err := s.e.Update(context.Background(), id, 0, func(engine.Session) ([]byte, error) { return data, nil })
	return err == nil
}

func (s *sesscacheStore) Close() { _ = s.e.Close() }

// syncMapStore is a sync.Map of []byte, no expiry. Storing a []byte in an
// any allocates its slice header: that is what using sync.Map costs.
type syncMapStore struct{ m sync.Map }

func (s *syncMapStore) Get(id string) ([]byte, bool) {
	v, ok := s.m.Load(id)
	if !ok {
		return nil, false
	}
	return v.([]byte), true
}

func (s *syncMapStore) Create(id string, data []byte) bool {
	s.m.Store(id, bytes.Clone(data))
	return true
}

func (s *syncMapStore) Update(id string, data []byte) bool { return s.Create(id, data) }

func (s *syncMapStore) Close() {}

// unlockedMap is a plain map read without any lock: the physical limit of a
// hash lookup by string in Go, not a store. Only one goroutine may write it,
// so it is loaded single-threaded and takes part in the Get benchmarks only.
type unlockedMap struct{ m map[string][]byte }

func (s *unlockedMap) Get(id string) ([]byte, bool) {
	v, ok := s.m[id]
	return v, ok
}

func (s *unlockedMap) Create(id string, data []byte) bool {
	s.m[id] = bytes.Clone(data)
	return true
}

func (s *unlockedMap) Update(id string, data []byte) bool { return s.Create(id, data) }

func (s *unlockedMap) Close() {}

// rwShardsStore is what a careful hand-written session map looks like, and
// mirrors what sesscache does on a Get so the difference is the data
// structure, not the work:
//
//   - 256 shards, each a map[string]*rwEntry under a sync.RWMutex, padded to
//     128 bytes so no two shards share a cache line (sesscache pads too);
//     the shard is picked by xxhash of the ID, and the Go map then hashes the
//     ID again.
//   - Get takes the shard's read lock for the map lookup and the read of the
//     entry's data slice, releases it, then checks the deadline
//     min(lastAccess+30m, absolute) against a coarse clock and touches the
//     entry: one atomic store of the clock's time into lastAccess, made only
//     when the clock has moved since the last touch, as sesscache does.
//   - The coarse clock is an atomic int64 that a goroutine of the store sets
//     from time.Now every 10 ms, sesscache's default resolution.
//   - Create and Update copy the data outside the lock and then, under the
//     write lock, insert a new entry or replace the entry's data slice (in
//     place: readers read it under the read lock). Update touches the entry.
//   - Nothing reaps expired entries: the benchmarks never let one expire.
type rwShardsStore struct {
	shards [rwShardCount]rwShard
	clock  coarseClock
}

const rwShardCount = 256

type rwShard struct {
	mu sync.RWMutex
	m  map[string]*rwEntry
	_  [128 - (unsafe.Sizeof(sync.RWMutex{})+unsafe.Sizeof(map[string]*rwEntry(nil)))%128]byte
}

type rwEntry struct {
	data       []byte       // written under the shard's write lock, read under its read lock
	lastAccess atomic.Int64 // coarse Unix nanoseconds of the latest access
	absolute   int64        // Unix nanoseconds; set at creation, never changed
}

func openRWShards(int) store {
	s := new(rwShardsStore)
	for i := range s.shards {
		s.shards[i].m = make(map[string]*rwEntry)
	}
	s.clock.start(coarseResolution)
	return s
}

func (s *rwShardsStore) shard(id string) *rwShard {
	return &s.shards[xxhash.Sum64String(id)&(rwShardCount-1)]
}

func (s *rwShardsStore) Get(id string) ([]byte, bool) {
	sh := s.shard(id)
	sh.mu.RLock()
	e := sh.m[id]
	var data []byte
	if e != nil {
		data = e.data
	}
	sh.mu.RUnlock()
	if e == nil {
		return nil, false
	}
	now := s.clock.now()
	la := e.lastAccess.Load()
	if min(la+int64(idleTimeout), e.absolute) <= now {
		return nil, false
	}
	if now > la {
		e.lastAccess.Store(now)
	}
	return data, true
}

func (s *rwShardsStore) Create(id string, data []byte) bool {
	now := s.clock.now()
	e := &rwEntry{data: bytes.Clone(data), absolute: now + int64(absoluteTimeout)}
	e.lastAccess.Store(now)
	sh := s.shard(id)
	sh.mu.Lock()
	sh.m[id] = e
	sh.mu.Unlock()
	return true
}

func (s *rwShardsStore) Update(id string, data []byte) bool {
	d := bytes.Clone(data)
	sh := s.shard(id)
	sh.mu.Lock()
	e := sh.m[id]
	if e != nil {
		e.data = d
	}
	sh.mu.Unlock()
	if e == nil {
		return false
	}
	if now := s.clock.now(); now > e.lastAccess.Load() {
		e.lastAccess.Store(now)
	}
	return true
}

func (s *rwShardsStore) Close() { s.clock.stop() }

// coarseClock is time read once per tick by a goroutine of its own, so that
// a Get costs an atomic load instead of a time.Now.
type coarseClock struct {
	nanos atomic.Int64
	quit  chan struct{}
	done  sync.WaitGroup
}

func (c *coarseClock) start(every time.Duration) {
	c.nanos.Store(time.Now().UnixNano())
	c.quit = make(chan struct{})
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.quit:
				return
			case now := <-t.C:
				c.nanos.Store(now.UnixNano())
			}
		}
	}()
}

func (c *coarseClock) now() int64 { return c.nanos.Load() }

func (c *coarseClock) stop() {
	close(c.quit)
	c.done.Wait()
}
