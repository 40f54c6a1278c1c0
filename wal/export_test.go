package wal

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sesscache/sesscache/internal/leakcheck"
)

// TestMain backs up the per-test VerifyNoLeaks: no goroutine of this package
// may outlive the tests and benchmarks of the binary.
func TestMain(m *testing.M) { leakcheck.Main(m, walGoroutine) }

// Test hooks for package wal_test.

// SetEverysecInFlusher makes SyncEverySecond fsync from the flusher instead of
// the syncer goroutine (the alternative the benchmark compares).
func SetEverysecInFlusher(o *Options) { o.everysecInFlusher = true }

// SetReadBufferSize makes replay read through a buffer of n bytes until t
// ends, so that tests can make frames straddle reads.
func SetReadBufferSize(t testing.TB, n int) {
	old := readBufferSize
	readBufferSize = n
	t.Cleanup(func() { readBufferSize = old })
}

// SegmentName exposes segmentName.
func SegmentName(first uint64) string { return segmentName(first) }

// SegmentHeaderSize exposes segmentHeaderSize.
const SegmentHeaderSize = segmentHeaderSize

// FormatVersion exposes formatVersion.
const FormatVersion = formatVersion

// VerifyNoLeaks fails t if, once t's cleanups run, any goroutine of this
// package is still alive.
func VerifyNoLeaks(t testing.TB) {
	t.Helper()
	leakcheck.Verify(t, walGoroutine)
}

// walGoroutine reports whether a stack runs the log's goroutines.
func walGoroutine(stack string) bool {
	return strings.Contains(stack, "sesscache/wal.(*Log).") || strings.Contains(stack, "sesscache/wal.(*pipeline).")
}

// RandomRecord returns a valid record of any op, LSN 0, drawn from rng. Its
// integers range over every MessagePack width and its byte fields are nil
// when empty, as DecodeRecord returns them.
func RandomRecord(rng *rand.Rand) Record {
	op := Op(1 + rng.IntN(4))
	if op != OpBatch {
		return randomSimple(rng, op)
	}
	r := Record{Op: OpBatch, Ops: make([]Record, 1+rng.IntN(20))}
	for i := range r.Ops {
		r.Ops[i] = randomSimple(rng, Op(1+rng.IntN(3)))
	}
	return r
}

func randomSimple(rng *rand.Rand, op Op) Record {
	r := Record{Op: op}
	for i := range r.Key.Digest {
		r.Key.Digest[i] = byte(rng.Uint32())
	}
	r.Key.Hint = uint16(randomUint(rng))
	switch op {
	case OpPut:
		r.Version = randomUint(rng)
		r.Created = randomInt(rng)
		r.LastAccess = randomInt(rng)
		r.Idle = randomInt(rng)
		r.Absolute = randomInt(rng)
		r.UserID = randomBytes(rng, []int{0, 1, 31, 32, 255, 256})
		r.SealKeyID = uint32(randomUint(rng))
		r.Data = randomBytes(rng, []int{0, 1, 200, 255, 256, 70000})
		r.Fingerprint = randomUint(rng)
		r.AuthAt = randomInt(rng)
		r.Label = randomBytes(rng, []int{0, 1, 31, 32, 255})
	case OpTouch:
		r.LastAccess = randomInt(rng)
	}
	return r
}

// randomUint picks a width first so that every encoding is exercised.
func randomUint(rng *rand.Rand) uint64 {
	bits := []int{0, 1, 7, 8, 16, 32, 64}[rng.IntN(7)]
	if bits == 0 {
		return 0
	}
	v := rng.Uint64() >> (64 - bits)
	if rng.IntN(4) == 0 {
		v = 1<<bits - 1 // the largest value of a width
	}
	return v
}

func randomInt(rng *rand.Rand) int64 {
	v := int64(randomUint(rng) >> 1)
	if rng.IntN(2) == 0 {
		return -v - int64(rng.IntN(2))
	}
	return v
}

func randomBytes(rng *rand.Rand, lengths []int) []byte {
	n := lengths[rng.IntN(len(lengths))]
	if n > 1000 && rng.IntN(8) != 0 {
		n = rng.IntN(300)
	}
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// CloneRecord deep-copies r, as an Open callback must before keeping it.
func CloneRecord(r *Record) Record {
	c := *r
	c.UserID = clone(r.UserID)
	c.Data = clone(r.Data)
	c.Label = clone(r.Label)
	c.Ops = nil
	for i := range r.Ops {
		c.Ops = append(c.Ops, CloneRecord(&r.Ops[i]))
	}
	return c
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// SetGatherLimit replaces how long gather may wait after an fsync, until t
// ends.
func SetGatherLimit(t testing.TB, limit time.Duration) {
	old := gatherLimit
	gatherLimit = func(time.Duration) time.Duration { return limit }
	t.Cleanup(func() { gatherLimit = old })
}

// QueuedWaiters returns how many goroutines are blocked in Wait or Sync.
func QueuedWaiters(l *Log) int {
	l.waitMu.Lock()
	defer l.waitMu.Unlock()
	return len(l.durableWaiters) + len(l.writtenWaiters)
}

// GatherTarget returns how many appends the flusher will wait for before it
// takes the next batch; 0 if none.
func GatherTarget(l *Log) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gatherWant
}

// DurableWaiters returns how many goroutines wait for an fsync.
func (l *Log) DurableWaiters() int {
	l.waitMu.Lock()
	defer l.waitMu.Unlock()
	return len(l.durableWaiters)
}

// Mapped reports whether the log maps its segments.
func (l *Log) Mapped() bool { return l.mapped }
