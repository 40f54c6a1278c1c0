package shard

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Key is the 16-byte lookup key of a record: the raw session ID, or the
// digest of the ID for a session recovered from disk whose ID has not been
// presented since.
type Key [16]byte

// Record flags.
const (
	// FlagAlias marks a forwarding record left behind by a rotation: its data
	// is the Key of the session it resolves to, and Absolute is the end of
	// the grace period.
	FlagAlias uint8 = 1 << iota
	// FlagCold marks a record keyed by the digest of its ID.
	FlagCold
	// FlagBound marks a session bound to a client fingerprint.
	FlagBound
	// FlagSuspect marks a session recovered from before a damaged stretch of
	// log that recovery skipped: the skipped records may have removed it.
	// Recovery drops every record still marked once replay ends.
	FlagSuspect
)

// Layout of a record allocation (native byte order for the atomics,
// little-endian for the rest):
//
//	0   lastAccess    int64, unix ns     mutable: atomic, any goroutine
//	8   key           [16]byte
//	24  idle          int64, ns
//	32  absolute      int64, unix ns
//	40  userLen       uint16
//	42  flags         uint8
//	43  (unused)
//	44  hint          uint16, the 16 hash bits that place the record's ID
//	46  labelLen      uint16
//	48  version       uint64
//	56  created       int64, unix ns
//	64  total         uint32, length of the whole allocation
//	68  heapIdx       int32              mutable: writers, under the lock
//	72  heapDeadline  uint32, unix s     mutable: writers, under the lock
//	76  logged        uint32, unix s     mutable: atomic, any goroutine
//	80  fingerprint   uint64, hash of the client fingerprint (FlagBound)
//	88  authAt        int64, unix ns of the last authentication; 0: never
//	96  digest        [16]byte, the ID's digest if the engine keeps it; zero if not
//	112 user ID, then label, then data
//
// What a lookup reads (the last access, the key, the deadlines and the
// flags) is in the first 48 bytes, so that a Get that does not read the
// data touches one cache line of the record when the allocation is
// aligned, and at most two when it is not.
//
// The last access lives in the record rather than beside it because every
// replacement of a record is itself an access: a touch that lands on the old
// record while a writer swaps in a new one is covered by the writer's own
// time, so it is never lost for more than a clock tick.
const (
	offKey          = 8
	offIdle         = 24
	offAbsolute     = 32
	offUserLen      = 40
	offFlags        = 42
	offHint         = 44
	offLabelLen     = 46
	offVersion      = 48
	offCreated      = 56
	offTotal        = 64
	offHeapIdx      = 68
	offHeapDeadline = 72
	offLogged       = 76
	offFingerprint  = 80
	offAuthAt       = 88
	offDigest       = 96
	recHeader       = 112
)

// MaxUserID is the longest owner ID a record can hold, and MaxLabel the
// longest label.
const (
	MaxUserID = 1<<16 - 1
	MaxLabel  = 1<<16 - 1
)

// MaxData is the most data a record can hold.
const MaxData = 1<<31 - recHeader - MaxUserID - MaxLabel

// Meta holds the fixed-size fields of a record.
type Meta struct {
	Version  uint64
	Created  int64 // unix ns
	Idle     int64 // ns
	Absolute int64 // absolute deadline, unix ns
	Flags    uint8
	// Hint is 16 bits of the hash of the session's raw ID: the engine picks
	// the shard with them, and a record keyed by a digest keeps them so that
	// it can be placed again after a restart.
	Hint uint16
	// Fingerprint is the hash of the client fingerprint the session is
	// bound to, when Flags has FlagBound.
	Fingerprint uint64
	// AuthAt is when the session last authenticated, unix ns; 0 if never.
	AuthAt int64
	// Digest is the digest of the session's ID, which a persistent engine
	// names the session by on disk and computes once, at creation; zero if
	// the engine does not keep it.
	Digest Key
}

// Rec is a session record: one allocation holding the session's fields, its
// owner and its data, immutable but for its last access. It holds no Go
// pointers, so the garbage collector does not scan it. The zero Rec is "no
// record"; Recs compare equal when they are the same record.
type Rec struct{ p *byte }

// NewRec builds a record last accessed at lastAccess. user must not exceed
// MaxUserID bytes, label MaxLabel bytes nor data MaxData bytes; the engine
// checks all three.
func NewRec(k *Key, m Meta, lastAccess int64, user, label string, data []byte) Rec {
	return fillRec(make([]byte, recHeader+len(user)+len(label)+len(data)), k, m, lastAccess, user, label, data)
}

// fillRec builds a record in b, which is exactly its size and 8-byte
// aligned.
func fillRec(b []byte, k *Key, m Meta, lastAccess int64, user, label string, data []byte) Rec {
	copy(b[offKey:], k[:])
	binary.LittleEndian.PutUint64(b[offVersion:], m.Version)
	binary.LittleEndian.PutUint64(b[offCreated:], uint64(m.Created))
	binary.LittleEndian.PutUint64(b[offIdle:], uint64(m.Idle))
	binary.LittleEndian.PutUint64(b[offAbsolute:], uint64(m.Absolute))
	binary.LittleEndian.PutUint32(b[offTotal:], uint32(len(b)))
	binary.LittleEndian.PutUint16(b[offUserLen:], uint16(len(user)))
	b[offFlags] = m.Flags
	binary.LittleEndian.PutUint16(b[offHint:], m.Hint)
	binary.LittleEndian.PutUint16(b[offLabelLen:], uint16(len(label)))
	binary.LittleEndian.PutUint64(b[offFingerprint:], m.Fingerprint)
	binary.LittleEndian.PutUint64(b[offAuthAt:], uint64(m.AuthAt))
	copy(b[offDigest:], m.Digest[:])
	copy(b[recHeader:], user)
	copy(b[recHeader+len(user):], label)
	copy(b[recHeader+len(user)+len(label):], data)
	r := Rec{&b[0]}
	r.la().Store(lastAccess)
	r.logged().Store(unixSec(lastAccess))
	return r
}

// With returns a new record with key k, meta m and data, keeping r's owner
// and label, last access at least lastAccess.
func (r Rec) With(k *Key, m Meta, lastAccess int64, data []byte) Rec {
	n := NewRec(k, m, max(lastAccess, r.LastAccess()), r.UserID(), r.Label(), data)
	n.logged().Store(r.logged().Load())
	return n
}

func (r Rec) header() *[recHeader]byte { return (*[recHeader]byte)(unsafe.Pointer(r.p)) }

func (r Rec) la() *atomic.Int64 { return (*atomic.Int64)(unsafe.Pointer(r.p)) }

func (r Rec) logged() *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Add(unsafe.Pointer(r.p), offLogged))
}

func (r Rec) u32(off int) *uint32 { return (*uint32)(unsafe.Add(unsafe.Pointer(r.p), off)) }

// IsZero reports whether r is the zero Rec.
func (r Rec) IsZero() bool { return r.p == nil }

// Key returns the key r is stored under.
func (r Rec) Key() Key { return *(*Key)(unsafe.Add(unsafe.Pointer(r.p), offKey)) }

// Version returns the session's version, bumped on every write.
func (r Rec) Version() uint64 { return binary.LittleEndian.Uint64(r.header()[offVersion:]) }

// Created returns the creation time in unix ns.
func (r Rec) Created() int64 { return int64(binary.LittleEndian.Uint64(r.header()[offCreated:])) }

// Idle returns the idle timeout in ns.
func (r Rec) Idle() int64 { return int64(binary.LittleEndian.Uint64(r.header()[offIdle:])) }

// Absolute returns the absolute deadline in unix ns.
func (r Rec) Absolute() int64 { return int64(binary.LittleEndian.Uint64(r.header()[offAbsolute:])) }

// Flags returns the record's flags.
func (r Rec) Flags() uint8 { return r.header()[offFlags] }

// Hint returns the hash bits that place the record's session in a shard.
func (r Rec) Hint() uint16 { return binary.LittleEndian.Uint16(r.header()[offHint:]) }

// Fingerprint returns the hash of the client fingerprint r is bound to;
// meaningful when Flags has FlagBound.
func (r Rec) Fingerprint() uint64 { return binary.LittleEndian.Uint64(r.header()[offFingerprint:]) }

// AuthAt returns when the session last authenticated, unix ns; 0 if never.
func (r Rec) AuthAt() int64 { return int64(binary.LittleEndian.Uint64(r.header()[offAuthAt:])) }

// Digest returns the digest of the session's ID kept in r, or the zero Key.
func (r Rec) Digest() Key { return *(*Key)(unsafe.Add(unsafe.Pointer(r.p), offDigest)) }

// Meta returns the fixed-size fields of r.
func (r Rec) Meta() Meta {
	return Meta{Version: r.Version(), Created: r.Created(), Idle: r.Idle(), Absolute: r.Absolute(),
		Flags: r.Flags(), Hint: r.Hint(), Fingerprint: r.Fingerprint(), AuthAt: r.AuthAt(), Digest: r.Digest()}
}

// LastAccess returns the last access in unix ns.
func (r Rec) LastAccess() int64 { return r.la().Load() }

// Touch records an access at now. Callers make it only when their coarse
// clock has moved past LastAccess, so a hot record's cache line is written at
// most once per clock tick.
func (r Rec) Touch(now int64) { r.la().Store(now) }

// ClaimLog reports whether the caller should log a touch at lastAccess: true
// for exactly one caller once lastAccess is at least interval seconds past
// the last logged access.
func (r Rec) ClaimLog(lastAccess int64, interval uint32) bool {
	now := unixSec(lastAccess)
	old := r.logged().Load()
	return now-old >= interval && now > old && r.logged().CompareAndSwap(old, now)
}

// SetSuspect sets or clears FlagSuspect in place. Records are otherwise
// immutable; this is for recovery, which runs before any reader can see the
// record.
func (r Rec) SetSuspect(on bool) {
	if on {
		r.header()[offFlags] |= FlagSuspect
	} else {
		r.header()[offFlags] &^= FlagSuspect
	}
}

// UserID returns the owner, or "" when the session has none. The string
// shares r's memory, which is never modified.
func (r Rec) UserID() string {
	n := binary.LittleEndian.Uint16(r.header()[offUserLen:])
	if n == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(r.p), recHeader)), n)
}

// Label returns the label the application gave the session, or "". Like
// UserID, it shares r's memory.
func (r Rec) Label() string {
	h := r.header()
	n := binary.LittleEndian.Uint16(h[offLabelLen:])
	if n == 0 {
		return ""
	}
	off := recHeader + int(binary.LittleEndian.Uint16(h[offUserLen:]))
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(r.p), off)), n)
}

// Data returns the session data. It shares r's memory: callers must not
// modify it. Its capacity equals its length, so an append copies.
func (r Rec) Data() []byte {
	h := r.header()
	total := int(binary.LittleEndian.Uint32(h[offTotal:]))
	start := recHeader + int(binary.LittleEndian.Uint16(h[offUserLen:])) + int(binary.LittleEndian.Uint16(h[offLabelLen:]))
	// Slicing, unlike pointer arithmetic, never forms a pointer past the
	// allocation when the data is empty.
	return unsafe.Slice(r.p, total)[start:total:total]
}

// Deadline returns when r expires given its last access, in unix ns: the
// earlier of lastAccess+Idle and Absolute.
func (r Rec) Deadline(lastAccess int64) int64 {
	h := r.header()
	abs := int64(binary.LittleEndian.Uint64(h[offAbsolute:]))
	idle := int64(binary.LittleEndian.Uint64(h[offIdle:]))
	if idle > abs-lastAccess { // lastAccess+idle > abs, without overflow
		return abs
	}
	return lastAccess + idle
}

// Size returns the bytes r occupies, header included.
func (r Rec) Size() int { return int(binary.LittleEndian.Uint32(r.header()[offTotal:])) }

// hasKey compares r's key with k in time independent of where they differ.
// binary.LittleEndian compiles to plain 8-byte loads here, and unlike a cast
// to *[2]uint64 it is defined for a Key's alignment of 1.
func (r Rec) hasKey(k *Key) bool {
	a := (*Key)(unsafe.Add(unsafe.Pointer(r.p), offKey))
	le := binary.LittleEndian
	return (le.Uint64(a[:8])^le.Uint64(k[:8]))|(le.Uint64(a[8:])^le.Uint64(k[8:])) == 0
}

func unixSec(ns int64) uint32 { return uint32(min(max(ns/1e9, 0), 1<<32-1)) }

// Slab hands out records carved from large allocations instead of one
// allocation each. Recovery loads a million sessions into a few hundred
// slabs: the allocator does a few hundred allocations instead of a million,
// and the garbage collector marks a few hundred objects where it would mark
// a million, on every cycle. The price is memory: a slab is freed only once
// every record in it is gone, so the space of a record replaced or removed
// is held until its slab-mates go too (for sessions, at most their absolute
// lifetime). A Slab is not safe for concurrent use; the zero Slab is ready.
type Slab struct {
	buf []byte
}

const (
	slabSize = 1 << 20
	slabMax  = slabSize / 8 // records larger than this get their own allocation
)

// NewRec is NewRec, carved from the slab.
func (s *Slab) NewRec(k *Key, m Meta, lastAccess int64, user, label string, data []byte) Rec {
	n := recHeader + len(user) + len(label) + len(data)
	if n > slabMax {
		return NewRec(k, m, lastAccess, user, label, data)
	}
	// 8-byte aligned, for the record's atomic fields.
	size := (n + 7) &^ 7
	if len(s.buf) < size {
		s.buf = make([]byte, slabSize)
	}
	b := s.buf[:n:n]
	s.buf = s.buf[size:]
	return fillRec(b, k, m, lastAccess, user, label, data)
}
