package shard

import (
	"container/heap"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// Hash is the hash of a key that picks its shard and its table slot: the
// xxhash of the key's text, the 22 characters of unpadded base64url a client
// presents. A lookup can then hash the text it was given while, in parallel,
// the text is decoded into the key it compares: the hash need not wait for
// the decoding (see HashText).
func Hash(k *Key) uint64 {
	var b [TextLen]byte
	encodeKey(k, &b)
	return xxhash.Sum64(b[:])
}

// HashText returns Hash of the key whose canonical text is s. Callers have
// checked that s is exactly that text.
func HashText(s string) uint64 { return xxhash.Sum64String(s) }

// TextLen is the length of a key's text.
const TextLen = 22

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// encodeKey writes k's text: base64url without padding, as package token
// writes IDs (shard does not import token: both are leaves).
func encodeKey(k *Key, b *[TextLen]byte) {
	for i, j := 0, 0; i < 15; i, j = i+3, j+4 {
		v := uint(k[i])<<16 | uint(k[i+1])<<8 | uint(k[i+2])
		b[j], b[j+1], b[j+2], b[j+3] = alphabet[v>>18&0x3F], alphabet[v>>12&0x3F], alphabet[v>>6&0x3F], alphabet[v&0x3F]
	}
	b[20] = alphabet[k[15]>>2]
	b[21] = alphabet[k[15]&0x3<<4]
}

// Shard is one lock stripe. The zero Shard is not usable; call Init.
type Shard struct {
	// Read by lock-free readers; stored only by writers.
	tab   atomic.Pointer[table]
	seed  uint64
	colds atomic.Int64 // records with FlagCold
	live  atomic.Int64 // records in the table, aliases included

	// Keep writer state off the readers' cache line.
	_ [64 - 32]byte

	mu    sync.Mutex
	tombs int  // deleted slots in the current table
	bulk  bool // Insert appends to the heap unordered; EndBulk orders it
	heap  deadlines
}

// Init prepares s. seed randomizes where keys land in the table so that a
// client choosing IDs cannot learn the table's layout through timing.
func (s *Shard) Init(seed uint64) {
	s.seed = seed
	s.tab.Store(newTable(minBuckets))
}

// Reset empties s, keeping its seed: recovery uses it to start over after
// a snapshot that failed halfway through loading. Nothing else may use s
// meanwhile.
func (s *Shard) Reset() {
	s.tab.Store(newTable(minBuckets))
	s.colds.Store(0)
	s.live.Store(0)
	s.tombs = 0
	s.bulk = false
	s.heap.items = nil
}

// Lock locks s for writing.
func (s *Shard) Lock() { s.mu.Lock() }

// Unlock unlocks s.
func (s *Shard) Unlock() { s.mu.Unlock() }

// Len returns the number of records, aliases included.
func (s *Shard) Len() int { return int(s.live.Load()) }

// Colds returns the number of records keyed by a digest.
func (s *Shard) Colds() int { return int(s.colds.Load()) }

// Lookup returns the record stored under k, whose hash is h, or the zero Rec.
// It takes no lock and makes no store.
func (s *Shard) Lookup(k *Key, h uint64) Rec {
	r, _, _ := s.tab.Load().find(k, mix(h, s.seed))
	return r
}

// Current reports whether r is still the record stored under its key, whose
// hash is h: no write has replaced or removed it. Writers call it under the
// lock to confirm what they read without it.
func (s *Shard) Current(r Rec, h uint64) bool {
	k := r.Key()
	return s.Lookup(&k, h) == r
}

// Insert stores r under its key, which must be absent; h is the key's hash.
// Caller holds the lock.
func (s *Shard) Insert(h uint64, r Rec) {
	s.reserve()
	if !s.tab.Load().add(r, mix(h, s.seed)) {
		s.tombs--
	}
	if r.Flags()&FlagCold != 0 {
		s.colds.Add(1)
	}
	s.live.Add(1)
	r.setHeapDeadline(r.Deadline(r.LastAccess()))
	if s.bulk {
		r.setHeapIdx(len(s.heap.items))
		s.heap.items = append(s.heap.items, r)
		return
	}
	heap.Push(&s.heap, r)
}

// BeginBulk prepares s for loading about n more records: it sizes the table
// once, and until EndBulk, Insert skips ordering the heap (pushing a million
// records one by one costs a cache miss per level; ordering them once at the
// end is linear). Replace and Remove may be called in between; PopExpired
// must not. Caller holds the lock.
func (s *Shard) BeginBulk(n int) {
	s.bulk = true
	if t := s.tab.Load(); s.Len()+s.tombs+n > t.cap {
		s.rebuild(s.Len() + n)
	}
}

// EndBulk orders the heap after BeginBulk. Caller holds the lock.
func (s *Shard) EndBulk() {
	s.bulk = false
	heap.Init(&s.heap)
}

// Replace swaps old, which is stored under hash h, for r, which has the same
// key and flags. Caller holds the lock.
func (s *Shard) Replace(old Rec, h uint64, r Rec) {
	bk, i := s.tab.Load().slotOf(old, mix(h, s.seed))
	s.adopt(old, r)
	bk.recs[i].Store(r.p)
	// A later deadline is left for the janitor to find when it pops the
	// record; an earlier one must move up now or the record would outstay it.
	if d := ceilSec(r.Deadline(r.LastAccess())); d < *r.u32(offHeapDeadline) {
		*r.u32(offHeapDeadline) = d
		if !s.bulk {
			heap.Fix(&s.heap, r.heapIdx())
		}
	}
}

// Rekey replaces old, stored under hash oldH, with r, stored under its own
// key with hash h. r's slot is published before old's is cleared, so a
// reader that misses the old key finds the new one when it looks again.
// Caller holds the lock.
func (s *Shard) Rekey(old Rec, oldH uint64, r Rec, h uint64) {
	s.reserve()
	t := s.tab.Load()
	s.adopt(old, r)
	if !t.add(r, mix(h, s.seed)) {
		s.tombs--
	}
	bk, i := t.slotOf(old, mix(oldH, s.seed))
	clearSlot(bk, i)
	s.tombs++
	if old.Flags()&FlagCold != 0 {
		s.colds.Add(-1)
	}
	if r.Flags()&FlagCold != 0 {
		s.colds.Add(1)
	}
}

// adopt gives r old's place in the heap.
func (s *Shard) adopt(old, r Rec) {
	i := old.heapIdx()
	*r.u32(offHeapDeadline) = *old.u32(offHeapDeadline)
	r.setHeapIdx(i)
	s.heap.items[i] = r
	old.setHeapIdx(-1)
}

// Remove deletes r, stored under hash h. Caller holds the lock.
func (s *Shard) Remove(r Rec, h uint64) {
	bk, i := s.tab.Load().slotOf(r, mix(h, s.seed))
	clearSlot(bk, i)
	s.tombs++
	if r.Flags()&FlagCold != 0 {
		s.colds.Add(-1)
	}
	s.live.Add(-1)
	if s.bulk {
		// Unordered until EndBulk: move the last record into r's place.
		items, j := s.heap.items, r.heapIdx()
		last := items[len(items)-1]
		items[j] = last
		last.setHeapIdx(j)
		items[len(items)-1] = Rec{}
		s.heap.items = items[:len(items)-1]
		r.setHeapIdx(-1)
		return
	}
	heap.Remove(&s.heap, r.heapIdx())
}

// PopExpired removes up to budget records whose deadline is at or before
// now, calling gone for each just before it is removed; if gone returns
// false the record stays and is looked at again a second later. Records
// whose deadline moved on since they were pushed (sliding expiry) go back on
// the heap with their new deadline. It reports whether more records may be
// due. Caller holds the lock.
func (s *Shard) PopExpired(now int64, budget int, gone func(Rec) bool) (removed int, more bool) {
	nowSec := unixSec(now)
	for range budget {
		if len(s.heap.items) == 0 || *s.heap.items[0].u32(offHeapDeadline) > nowSec {
			return removed, false
		}
		r := s.heap.items[0]
		if d := r.Deadline(r.LastAccess()); d > now {
			r.setHeapDeadline(d)
			heap.Fix(&s.heap, 0)
			continue
		}
		if !gone(r) {
			*r.u32(offHeapDeadline) = nowSec + 1
			heap.Fix(&s.heap, 0)
			continue
		}
		k := r.Key()
		s.Remove(r, Hash(&k))
		removed++
	}
	return removed, len(s.heap.items) > 0 && *s.heap.items[0].u32(offHeapDeadline) <= nowSec
}

// NextDue returns the earliest deadline on the heap, in whole unix seconds
// (rounded up), and false if the shard is empty. A record touched since it
// was pushed may be due later than that; never earlier. Caller holds the
// lock.
func (s *Shard) NextDue() (uint32, bool) {
	if len(s.heap.items) == 0 {
		return 0, false
	}
	return *s.heap.items[0].u32(offHeapDeadline), true
}

// Range calls fn for every record until fn returns false. Caller holds the
// lock; fn must not call back into s.
func (s *Shard) Range(fn func(Rec) bool) {
	for _, r := range s.heap.items {
		if !fn(r) {
			return
		}
	}
}

// reserve makes room for one more record, growing the table or clearing its
// deleted slots when it is full. The new table holds twice the live records,
// so a rebuild leaves it about half full.
func (s *Shard) reserve() {
	t := s.tab.Load()
	live := int(s.live.Load())
	if live+s.tombs+1 <= t.cap {
		return
	}
	s.rebuild(2 * (live + 1))
}

// rebuild publishes a table sized for n records without deleted slots.
func (s *Shard) rebuild(n int) {
	nb := minBuckets
	for nb*slotsPerBucket*7/8 < n {
		nb *= 2
	}
	nt := newTable(nb)
	for _, r := range s.heap.items {
		k := r.Key()
		nt.add(r, mix(Hash(&k), s.seed))
	}
	s.tombs = 0
	// Readers still probing the old table find it intact: it is never
	// written again.
	s.tab.Store(nt)
}
