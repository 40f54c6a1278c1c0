package shard

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randKey() Key {
	var k Key
	_, _ = rand.Read(k[:])
	return k
}

func newShard() *Shard {
	s := new(Shard)
	s.Init(0x1234)
	return s
}

// put inserts a record for k with the given deadline parameters.
func put(s *Shard, k Key, lastAccess, idle, abs int64, data string) Rec {
	r := NewRec(&k, Meta{Version: 1, Created: lastAccess, Idle: idle, Absolute: abs}, lastAccess, "", "", []byte(data))
	s.Lock()
	s.Insert(Hash(&k), r)
	s.Unlock()
	return r
}

func TestRecFields(t *testing.T) {
	k := randKey()
	r := NewRec(&k, Meta{Version: 7, Created: 100, Idle: 50, Absolute: 1000, Flags: FlagCold}, 120, "alice", "", []byte("payload"))
	assert.Equal(t, k, r.Key())
	assert.Equal(t, uint64(7), r.Version())
	assert.Equal(t, int64(100), r.Created())
	assert.Equal(t, int64(50), r.Idle())
	assert.Equal(t, int64(1000), r.Absolute())
	assert.Equal(t, FlagCold, r.Flags())
	assert.Equal(t, int64(120), r.LastAccess())
	assert.Equal(t, "alice", r.UserID())
	assert.Equal(t, []byte("payload"), r.Data())
	assert.Equal(t, len(r.Data()), cap(r.Data()), "an append to Data must copy")
	assert.Equal(t, int64(170), r.Deadline(120), "idle bound")
	assert.Equal(t, int64(1000), r.Deadline(990), "absolute bound")
	assert.Equal(t, int64(1000), r.Deadline(1<<62), "no overflow")

	empty := NewRec(&k, Meta{}, 0, "", "", nil)
	assert.Equal(t, "", empty.UserID())
	assert.Empty(t, empty.Data())
}

func TestRecWithKeepsOwnerAndLatestAccess(t *testing.T) {
	k, k2 := randKey(), randKey()
	r := NewRec(&k, Meta{Version: 1}, 500, "bob", "phone", []byte("a"))
	n := r.With(&k2, Meta{Version: 2}, 400, []byte("b"))
	assert.Equal(t, "bob", n.UserID())
	assert.Equal(t, "phone", n.Label())
	assert.Equal(t, []byte("b"), n.Data())
	assert.Equal(t, k2, n.Key())
	assert.Equal(t, int64(500), n.LastAccess(), "never moves the last access back")
	assert.Equal(t, []byte("a"), r.Data(), "old record unchanged")
}

func TestClaimLog(t *testing.T) {
	k := randKey()
	r := NewRec(&k, Meta{}, 10e9, "", "", nil)
	assert.False(t, r.ClaimLog(30e9, 60), "not yet an interval since creation")
	assert.True(t, r.ClaimLog(70e9, 60))
	assert.False(t, r.ClaimLog(70e9, 60), "claimed once")
	assert.False(t, r.ClaimLog(100e9, 60))
	assert.True(t, r.ClaimLog(130e9, 60))
}

func TestInsertLookupReplaceRemove(t *testing.T) {
	s := newShard()
	const n = 5000 // enough for several rebuilds
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = randKey()
		put(s, keys[i], 1, 10, 100, string(rune('a'+i%26)))
	}
	require.Equal(t, n, s.Len())
	for i, k := range keys {
		r := s.Lookup(&k, Hash(&k))
		require.False(t, r.IsZero(), "key %d", i)
		assert.Equal(t, k, r.Key())
	}
	missing := randKey()
	assert.True(t, s.Lookup(&missing, Hash(&missing)).IsZero())

	// Replace half, remove the other half.
	s.Lock()
	for i, k := range keys {
		h := Hash(&k)
		old := s.Lookup(&k, h)
		if i%2 == 0 {
			s.Replace(old, h, old.With(&k, Meta{Version: 2, Idle: 10, Absolute: 100}, 2, []byte("new")))
		} else {
			s.Remove(old, h)
		}
	}
	s.Unlock()
	assert.Equal(t, n/2, s.Len())
	for i, k := range keys {
		r := s.Lookup(&k, Hash(&k))
		if i%2 == 0 {
			require.False(t, r.IsZero())
			assert.Equal(t, []byte("new"), r.Data())
			assert.Equal(t, uint64(2), r.Version())
		} else {
			assert.True(t, r.IsZero())
		}
	}
	assert.Len(t, s.heap.items, n/2, "heap holds exactly the live records")
	checkHeap(t, s)
}

func TestDeletedSlotsAreReclaimed(t *testing.T) {
	s := newShard()
	// Churn far more keys than the table ever holds at once: deleted slots
	// must be cleared by rebuilds, not grow the table without bound.
	live := make([]Key, 0, 100)
	for range 20000 {
		k := randKey()
		put(s, k, 1, 10, 100, "")
		live = append(live, k)
		if len(live) == 100 {
			s.Lock()
			for _, k := range live {
				s.Remove(s.Lookup(&k, Hash(&k)), Hash(&k))
			}
			s.Unlock()
			live = live[:0]
		}
	}
	assert.LessOrEqual(t, len(s.tab.Load().buckets), 64)
	assert.Equal(t, 0, s.Len())
}

func TestRekey(t *testing.T) {
	s := newShard()
	digest, raw := randKey(), randKey()
	cold := NewRec(&digest, Meta{Version: 3, Idle: 10, Absolute: 100, Flags: FlagCold}, 5, "u", "", []byte("d"))
	s.Lock()
	s.Insert(Hash(&digest), cold)
	s.Unlock()
	assert.Equal(t, 1, s.Colds())

	hot := cold.With(&raw, Meta{Version: 3, Idle: 10, Absolute: 100}, 5, cold.Data())
	s.Lock()
	s.Rekey(cold, Hash(&digest), hot, Hash(&raw))
	s.Unlock()
	assert.Equal(t, 0, s.Colds())
	assert.Equal(t, 1, s.Len())
	assert.True(t, s.Lookup(&digest, Hash(&digest)).IsZero())
	assert.Equal(t, hot, s.Lookup(&raw, Hash(&raw)))
	checkHeap(t, s)
}

func TestPopExpired(t *testing.T) {
	s := newShard()
	const sec = int64(1e9)
	// Ten records due at 10 s, ten at 20 s, one touched past 20 s.
	var touched Rec
	for i := range 21 {
		k := randKey()
		switch {
		case i < 10:
			put(s, k, 0, 10*sec, 100*sec, "")
		case i < 20:
			put(s, k, 10*sec, 10*sec, 100*sec, "")
		default:
			touched = put(s, k, 0, 10*sec, 100*sec, "")
		}
	}
	touched.Touch(15 * sec) // now due at 25 s; the heap still says 10 s

	var gone []Key
	collect := func(r Rec) bool { gone = append(gone, r.Key()); return true }
	s.Lock()
	n, more := s.PopExpired(10*sec-1, 100, collect)
	s.Unlock()
	assert.Equal(t, 0, n, "nothing due before 10 s")
	assert.False(t, more)

	// The budget bounds the records examined in one visit, re-pushed ones
	// included.
	s.Lock()
	n, more = s.PopExpired(10*sec, 4, collect)
	s.Unlock()
	assert.LessOrEqual(t, n, 4)
	assert.GreaterOrEqual(t, n, 3)
	assert.True(t, more)

	s.Lock()
	n2, more := s.PopExpired(10*sec, 100, collect)
	s.Unlock()
	assert.Equal(t, 10, n+n2, "all the 10 s records; the touched one is re-pushed, not removed")
	assert.False(t, more)
	assert.Equal(t, 11, s.Len())
	k := touched.Key()
	assert.NotContains(t, gone, k)
	assert.False(t, s.Lookup(&k, Hash(&k)).IsZero())

	s.Lock()
	n, _ = s.PopExpired(20*sec, 100, collect)
	s.Unlock()
	assert.Equal(t, 10, n)
	s.Lock()
	n, _ = s.PopExpired(25*sec, 100, collect)
	s.Unlock()
	assert.Equal(t, 1, n, "the touched record goes at its new deadline")
	assert.Equal(t, 0, s.Len())
	assert.Len(t, gone, 21)
}

func TestPopExpiredKeepsWhatGoneRefuses(t *testing.T) {
	s := newShard()
	const sec = int64(1e9)
	r := put(s, randKey(), 0, 10*sec, 100*sec, "")
	refuse := true
	s.Lock()
	n, more := s.PopExpired(10*sec, 10, func(Rec) bool { return !refuse })
	s.Unlock()
	assert.Equal(t, 0, n)
	assert.False(t, more, "a kept record is due again a second later, not now")
	k := r.Key()
	assert.False(t, s.Lookup(&k, Hash(&k)).IsZero())
	due, ok := s.NextDue()
	assert.True(t, ok)
	assert.Equal(t, uint32(11), due)
	refuse = false
	s.Lock()
	n, _ = s.PopExpired(11*sec, 10, func(Rec) bool { return !refuse })
	s.Unlock()
	assert.Equal(t, 1, n)
	_, ok = s.NextDue()
	assert.False(t, ok)
}

func TestRecLabelAndAuth(t *testing.T) {
	k := randKey()
	d := randKey()
	r := NewRec(&k, Meta{AuthAt: 77, Digest: d}, 1, "u", "laptop", []byte("data"))
	assert.Equal(t, d, r.Digest())
	assert.Equal(t, d, r.Meta().Digest)
	assert.Equal(t, "u", r.UserID())
	assert.Equal(t, "laptop", r.Label())
	assert.Equal(t, []byte("data"), r.Data())
	assert.Equal(t, int64(77), r.AuthAt())
	assert.Equal(t, int64(77), r.Meta().AuthAt)
	r.SetSuspect(true)
	assert.Equal(t, FlagSuspect, r.Flags())
	r.SetSuspect(false)
	assert.Zero(t, r.Flags())
}

func TestAbsoluteDeadlineBoundsPop(t *testing.T) {
	s := newShard()
	const sec = int64(1e9)
	r := put(s, randKey(), 0, 100*sec, 30*sec, "")
	r.Touch(90 * sec)
	s.Lock()
	n, _ := s.PopExpired(30*sec, 10, func(Rec) bool { return true })
	s.Unlock()
	assert.Equal(t, 1, n, "touching cannot extend past the absolute deadline")
}

// TestConcurrentReadersAndWriters runs lock-free readers against writers
// that insert, replace, remove and grow the table. Under -race it checks the
// publication protocol; every reader checks that it never sees another key's
// record or data that was never stored under its key.
func TestConcurrentReadersAndWriters(t *testing.T) {
	s := newShard()
	const keys = 2000
	ks := make([]Key, keys)
	for i := range ks {
		ks[i] = randKey()
	}
	var writers, readers sync.WaitGroup
	for w := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for round := range 20 {
				for i := w; i < keys; i += 2 {
					k := ks[i]
					h := Hash(&k)
					s.Lock()
					old := s.Lookup(&k, h)
					switch {
					case old.IsZero():
						s.Insert(h, NewRec(&k, Meta{Version: 1, Idle: 1e12, Absolute: 1e12}, 1, "", "", []byte{byte(i)}))
					case round%3 == 2:
						s.Remove(old, h)
					default:
						s.Replace(old, h, old.With(&k, Meta{Version: old.Version() + 1, Idle: 1e12, Absolute: 1e12}, 1, []byte{byte(i)}))
					}
					s.Unlock()
				}
			}
		}()
	}
	stop := make(chan struct{})
	wrong := make(chan int, 4)
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				for i, k := range ks {
					r := s.Lookup(&k, Hash(&k))
					if r.IsZero() {
						continue
					}
					if r.Key() != k || r.Data()[0] != byte(i) {
						wrong <- i
						return
					}
					r.Touch(2)
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	close(wrong)
	for i := range wrong {
		t.Errorf("a reader saw a wrong record for key %d", i)
	}
	checkHeap(t, s)
}

// checkHeap verifies the heap property and every record's stored position.
func checkHeap(t *testing.T, s *Shard) {
	t.Helper()
	s.Lock()
	defer s.Unlock()
	for i, r := range s.heap.items {
		require.Equal(t, i, r.heapIdx(), "stored heap position")
		if i > 0 {
			p := (i - 1) / 2
			require.LessOrEqual(t, *s.heap.items[p].u32(offHeapDeadline), *r.u32(offHeapDeadline), "heap order")
		}
		k := r.Key()
		require.Equal(t, r, s.Lookup(&k, Hash(&k)), "every heap record is in the table")
	}
}

func TestHashIsHashOfText(t *testing.T) {
	for range 1000 {
		k := randKey()
		assert.Equal(t, Hash(&k), HashText(base64.RawURLEncoding.EncodeToString(k[:])))
	}
}

// In bulk mode Insert, Replace and Remove leave the heap unordered; after
// EndBulk, PopExpired must still find every record at its own deadline, the
// replaced ones at their new (earlier) deadlines, the removed ones never.
func TestBulkInsertReplaceRemove(t *testing.T) {
	s := newShard()
	const sec = int64(1e9)
	const n = 300
	keys := make([]Key, n)
	due := make(map[Key]int64, n) // deadline in seconds, for those kept
	s.Lock()
	s.BeginBulk(n)
	for i := range keys {
		keys[i] = randKey()
		idle := int64(1000-i) * sec // deadlines in reverse insertion order
		r := NewRec(&keys[i], Meta{Version: 1, Idle: idle, Absolute: 10000 * sec}, 0, "", "", nil)
		s.Insert(Hash(&keys[i]), r)
		due[keys[i]] = 1000 - int64(i)
	}
	// Remove every third, starting with the last inserted, which is the
	// last in the unordered heap.
	for i := n - 1; i >= 0; i -= 3 {
		k := keys[i]
		s.Remove(s.Lookup(&k, Hash(&k)), Hash(&k))
		delete(due, k)
	}
	for i := n - 2; i >= 0; i -= 3 { // move others earlier
		k := keys[i]
		old := s.Lookup(&k, Hash(&k))
		r := NewRec(&k, Meta{Version: 2, Idle: 10 * sec, Absolute: 10000 * sec}, 0, "", "", nil)
		s.Replace(old, Hash(&k), r)
		due[k] = 10
	}
	s.EndBulk()
	s.Unlock()
	require.Equal(t, len(due), s.Len())

	var popped []Key
	for sec := int64(0); sec <= 1000; sec++ {
		s.Lock()
		_, more := s.PopExpired(sec*1e9, n, func(r Rec) bool {
			k := r.Key()
			assert.Equal(t, due[k], sec, "popped at its deadline, not later")
			popped = append(popped, k)
			return true
		})
		s.Unlock()
		require.False(t, more)
	}
	assert.Len(t, popped, len(due))
	assert.Equal(t, 0, s.Len())
}

func TestSlabRecs(t *testing.T) {
	var s Slab
	var recs []Rec
	keys := make([]Key, 5000)
	for i := range keys {
		keys[i] = randKey()
		data := make([]byte, i%700)
		recs = append(recs, s.NewRec(&keys[i], Meta{Version: uint64(i)}, int64(i), "u", "l", data))
	}
	big := s.NewRec(&keys[0], Meta{}, 0, "", "", make([]byte, slabMax))
	assert.Len(t, big.Data(), slabMax, "a large record gets its own allocation")
	for i, r := range recs {
		require.Equal(t, keys[i], r.Key())
		require.Equal(t, uint64(i), r.Version())
		require.Equal(t, int64(i), r.LastAccess())
		require.Len(t, r.Data(), i%700)
		require.Equal(t, len(r.Data()), cap(r.Data()), "an append to Data must copy, not overwrite the next record")
		require.Zero(t, uintptr(unsafe.Pointer(r.p))%8, "atomic fields need 8-byte alignment")
	}
	recs[0].Touch(99)
	assert.Equal(t, int64(1), recs[1].LastAccess(), "neighbours do not overlap")
}
