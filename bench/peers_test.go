package bench

import (
	"bytes"
	"time"

	"github.com/alexedwards/scs/v2/memstore"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/maypok86/otter/v2"
	gocache "github.com/patrickmn/go-cache"
)

// otterStore is otter v2, unbounded (no MaximumSize: a session store must not
// evict live sessions). With eaa it expires an entry 30 minutes after its
// last access (otter.ExpiryAccessing), sesscache's idle timeout; otter then
// reads time.Now on every Get unless coarse gives it otter's own CoarseClock
// at sesscache's 10 ms resolution, which is what sesscache does. Without eaa
// nothing expires.
type otterStore struct {
	c     *otter.Cache[string, []byte]
	clock *otter.CoarseClock
}

func openOtter(eaa, coarse bool) store {
	s := new(otterStore)
	o := &otter.Options[string, []byte]{}
	if eaa {
		o.ExpiryCalculator = otter.ExpiryAccessing[string, []byte](idleTimeout)
	}
	if coarse {
		s.clock = otter.NewCoarseClock(coarseResolution)
		o.Clock = s.clock
	}
	s.c = otter.Must(o)
	return s
}

func (s *otterStore) Get(id string) ([]byte, bool) { return s.c.GetIfPresent(id) }

func (s *otterStore) Create(id string, data []byte) bool {
	s.c.Set(id, bytes.Clone(data))
	return true
}

func (s *otterStore) Update(id string, data []byte) bool { return s.Create(id, data) }

// settle runs otter's pending maintenance (its read and write buffers), so
// a fixture starts from the same quiet state for every run.
func (s *otterStore) settle() { s.c.CleanUp() }

func (s *otterStore) Close() {
	s.c.StopAllGoroutines()
	if s.clock != nil {
		s.clock.Stop()
	}
}

// ristrettoStore is ristretto v2 with every item costing 1 and room for
// twice the sessions it will hold, so its admission policy never rejects or
// evicts one. IgnoreInternalCost keeps ristretto from adding its own estimate
// of an item's bytes to that cost, which would make the cache overflow and
// evict. NumCounters is 10× the capacity and BufferItems 64, as ristretto's
// documentation advises. No TTL: ristretto's TTL is fixed at write time, so it
// cannot express an idle timeout.
//
// ristretto applies a new key's Set asynchronously and drops it when its
// buffer is full (Set returns false); an overwrite is applied at once. It
// stores two 64-bit hashes of the key instead of the key itself.
type ristrettoStore struct {
	c *ristretto.Cache[string, []byte]
}

func openRistretto(capacity int) store {
	capacity = max(capacity, 1)
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		NumCounters:        10 * int64(capacity),
		MaxCost:            2 * int64(capacity),
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		panic(err)
	}
	return &ristrettoStore{c: c}
}

func (s *ristrettoStore) Get(id string) ([]byte, bool) { return s.c.Get(id) }

func (s *ristrettoStore) Create(id string, data []byte) bool {
	return s.c.Set(id, bytes.Clone(data), 1)
}

func (s *ristrettoStore) Update(id string, data []byte) bool {
	return s.c.Set(id, bytes.Clone(data), 1)
}

// settle waits until every Set made so far has been applied.
func (s *ristrettoStore) settle() { s.c.Wait() }

func (s *ristrettoStore) Close() { s.c.Close() }

// goCacheStore is go-cache with a 30 minute default expiration, fixed at
// write time (go-cache has no sliding expiry), and its janitor every 10
// minutes, the interval go-cache's README uses; each janitor pass walks every
// item under the cache's one write lock. go-cache reads time.Now on every Get
// of an item that can expire, and boxes each []byte in an interface{}.
type goCacheStore struct{ c *gocache.Cache }

func openGoCache(int) store {
	return &goCacheStore{c: gocache.New(idleTimeout, 10*time.Minute)}
}

func (s *goCacheStore) Get(id string) ([]byte, bool) {
	v, ok := s.c.Get(id)
	if !ok {
		return nil, false
	}
	return v.([]byte), true
}

func (s *goCacheStore) Create(id string, data []byte) bool {
	s.c.Set(id, bytes.Clone(data), gocache.DefaultExpiration)
	return true
}

func (s *goCacheStore) Update(id string, data []byte) bool { return s.Create(id, data) }

// Close does nothing: go-cache stops its janitor from a finalizer once the
// cache is unreachable.
func (s *goCacheStore) Close() {}

// scsStore is scs's memstore as memstore.New makes it: one map under one
// RWMutex, and a goroutine that walks the whole map under the write lock
// every minute to delete expired sessions. Find reads time.Now on every call;
// Commit takes the expiry time, which the adapter computes as time.Now plus
// 30 minutes on every write, as scs's session manager does. Expiry is fixed
// at the time of the write: a Find does not extend it.
type scsStore struct{ m *memstore.MemStore }

func openSCS(int) store {
	if raceEnabled {
		// memstore v2.9.0's StopCleanup reads a field that its cleanup
		// goroutine writes without synchronisation (scs issue #231, fixed
		// after v2.9.0), which the race detector reports. A race build is
		// never one to time, so it runs memstore without that goroutine.
		return &scsStore{m: memstore.NewWithCleanupInterval(0)}
	}
	return &scsStore{m: memstore.New()}
}

func (s *scsStore) Get(id string) ([]byte, bool) {
	b, ok, err := s.m.Find(id)
	return b, ok && err == nil
}

func (s *scsStore) Create(id string, data []byte) bool {
	return s.m.Commit(id, bytes.Clone(data), time.Now().Add(idleTimeout)) == nil
}

func (s *scsStore) Update(id string, data []byte) bool { return s.Create(id, data) }

// Close stops the cleanup goroutine, which otherwise keeps the store
// reachable. memstore's StopCleanup does nothing if that goroutine has not
// yet started, which it always has by the time a fixture is loaded.
func (s *scsStore) Close() { s.m.StopCleanup() }
