package shard

import (
	"math/bits"
	"sync/atomic"
)

// The table is open addressing over buckets of seven slots and one control
// word, 64 bytes: a lookup loads one bucket line and then the record, which
// is where the key lives. Each control byte describes one slot: empty,
// deleted, or full with 7 bits of the key's hash, so a probe dereferences a
// record that is not the one sought about once in 128 full slots. Buckets
// are probed linearly; a lookup stops at the first bucket with an empty slot.
//
// Writers store a slot's record before its control byte and clear the
// control byte before the record, so a reader that sees a full byte finds a
// record there, or nil during a removal, and checks the key either way.
const (
	slotsPerBucket = 7
	ctrlEmpty      = 0x00
	ctrlDeleted    = 0x01
	ctrlFull       = 0x80
	// The eighth control byte has no slot; it reads as deleted so that it
	// neither matches a tag nor ends a probe.
	ctrlInit = uint64(ctrlDeleted) << 56

	lsb = 0x0101010101010101
	msb = 0x8080808080808080

	minBuckets = 4

	// byte7 is the high bit of the eighth control byte.
	byte7 = uint64(0x80) << 56
)

type bucket struct {
	ctrl atomic.Uint64
	recs [slotsPerBucket]atomic.Pointer[byte]
}

type table struct {
	buckets []bucket
	mask    uint64
	cap     int // slots that may be used before a rebuild
}

func newTable(nbuckets int) *table {
	t := &table{buckets: make([]bucket, nbuckets), mask: uint64(nbuckets - 1)}
	for i := range t.buckets {
		t.buckets[i].ctrl.Store(ctrlInit)
	}
	// At most 7/8 of the slots, as in Abseil's Swiss tables.
	t.cap = nbuckets * slotsPerBucket * 7 / 8
	return t
}

// mix spreads the caller's hash with the shard's secret seed. The caller's
// hash is a public function of the key; the seed keeps the bucket a key
// probes unknowable from outside.
func mix(h, seed uint64) uint64 {
	h ^= seed
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 31
	h *= 0x94d049bb133111eb
	return h ^ h>>29
}

// tagOf returns the control byte of a full slot for mixed hash p.
func tagOf(p uint64) uint8 { return uint8(p>>57) | ctrlFull }

// zeroBytes returns msb set in each byte of x that is zero, exactly (no
// false positives from borrows).
func zeroBytes(x uint64) uint64 {
	return ^((x&^msb + ^uint64(msb)) | x) & msb
}

// match returns msb set in each byte of ctrl equal to c.
func match(ctrl uint64, c uint8) uint64 { return zeroBytes(ctrl ^ lsb*uint64(c)) }

// find returns the record under k in t, and its bucket and slot.
func (t *table) find(k *Key, p uint64) (Rec, *bucket, int) {
	tag := tagOf(p)
	for b := p & t.mask; ; b = (b + 1) & t.mask {
		bk := &t.buckets[b]
		c := bk.ctrl.Load()
		for m := match(c, tag); m != 0; m &= m - 1 {
			i := bits.TrailingZeros64(m) >> 3
			if r := (Rec{bk.recs[i].Load()}); r.p != nil && r.hasKey(k) {
				return r, bk, i
			}
		}
		if zeroBytes(c) != 0 {
			return Rec{}, nil, 0
		}
	}
}

// slotOf returns the bucket and slot holding record r, whose mixed hash is p.
func (t *table) slotOf(r Rec, p uint64) (*bucket, int) {
	tag := tagOf(p)
	for b := p & t.mask; ; b = (b + 1) & t.mask {
		bk := &t.buckets[b]
		c := bk.ctrl.Load()
		for m := match(c, tag); m != 0; m &= m - 1 {
			i := bits.TrailingZeros64(m) >> 3
			if bk.recs[i].Load() == r.p {
				return bk, i
			}
		}
		if zeroBytes(c) != 0 {
			panic("shard: record not in table")
		}
	}
}

// add stores r in the first free slot of its probe sequence and reports
// whether it used an empty slot (rather than a deleted one).
func (t *table) add(r Rec, p uint64) (usedEmpty bool) {
	for b := p & t.mask; ; b = (b + 1) & t.mask {
		bk := &t.buckets[b]
		c := bk.ctrl.Load()
		free := zeroBytes(c) | match(c, ctrlDeleted)&^byte7
		if free == 0 {
			continue
		}
		i := bits.TrailingZeros64(free) >> 3
		shift := uint(i) * 8
		usedEmpty = uint8(c>>shift) == ctrlEmpty
		bk.recs[i].Store(r.p)
		bk.ctrl.Store(c&^(0xFF<<shift) | uint64(tagOf(p))<<shift)
		return usedEmpty
	}
}

// clearSlot marks slot i of bk deleted.
func clearSlot(bk *bucket, i int) {
	shift := uint(i) * 8
	c := bk.ctrl.Load()
	bk.ctrl.Store(c&^(0xFF<<shift) | ctrlDeleted<<shift)
	bk.recs[i].Store(nil)
}
