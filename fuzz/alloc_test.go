package fuzz

import (
	"runtime/metrics"
	"testing"
)

// allocBound is the most heap a replay or load of an n-byte input may
// allocate: a fixed allowance for the reader's buffers, goroutines and
// bookkeeping (the log's replay buffer is sized to the file, at most 1 MiB,
// and opening a log creates a segment), plus eight times the input for
// buffers sized from it (a snapshot holds up to two chunk buffers per
// worker; a damaged log segment is copied aside before it is cut). It is
// generous on purpose: what it catches is an allocation sized from a length
// field rather than from the bytes that are there, such as a frame claiming
// 4 GiB.
func allocBound(n int) uint64 { return 4<<20 + 8*uint64(n) }

// heapAllocs returns the bytes allocated on the heap by the whole process
// since it started, read without stopping the world. A fuzz worker runs one
// input at a time, so the difference across a call is that call's
// allocation, give or take the span the allocator hands out at once.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// allocated returns the heap fn allocated.
func allocated(fn func()) uint64 {
	before := heapAllocs()
	fn()
	return heapAllocs() - before
}

// checkAllocs runs fn and fails t if it allocated more than allocBound(n).
func checkAllocs(t *testing.T, what string, n int, fn func()) {
	t.Helper()
	if got := allocated(fn); got > allocBound(n) {
		t.Fatalf("%s of a %d-byte input allocated %d bytes, more than the bound of %d", what, n, got, allocBound(n))
	}
}

var sink []byte

// TestAllocatedSeesOneAllocation checks the measurement the replay and load
// targets rely on: one allocation above the bound shows at once, and a call
// that allocates nothing measures far below it.
func TestAllocatedSeesOneAllocation(t *testing.T) {
	big := allocated(func() { sink = make([]byte, allocBound(0)+1) })
	if big <= allocBound(0) {
		t.Errorf("an allocation of %d bytes measured as %d", allocBound(0)+1, big)
	}
	sink = nil
	if small := allocated(func() {}); small > 64<<10 {
		t.Errorf("a call that allocates nothing measured as %d bytes", small)
	}
}
