package shard

import "unsafe"

// deadlines is a min-heap of records for container/heap, ordered by the
// deadline each had when it was last pushed or fixed (whole seconds, rounded
// up, kept in the record). Each record keeps its heap position, so removal
// and fix are O(log n); comparisons and swaps touch the same records, so
// keeping the deadline out of the heap array costs no extra cache misses and
// halves the array.
type deadlines struct{ items []Rec }

func (d *deadlines) Len() int { return len(d.items) }

func (d *deadlines) Less(i, j int) bool {
	return *d.items[i].u32(offHeapDeadline) < *d.items[j].u32(offHeapDeadline)
}

func (d *deadlines) Swap(i, j int) {
	d.items[i], d.items[j] = d.items[j], d.items[i]
	d.items[i].setHeapIdx(i)
	d.items[j].setHeapIdx(j)
}

func (d *deadlines) Push(x any) {
	r := x.(Rec)
	r.setHeapIdx(len(d.items))
	d.items = append(d.items, r)
}

func (d *deadlines) Pop() any {
	n := len(d.items) - 1
	r := d.items[n]
	d.items[n] = Rec{}
	d.items = d.items[:n]
	r.setHeapIdx(-1)
	return r
}

func (r Rec) heapIdx() int             { return int(*(*int32)(unsafe.Add(unsafe.Pointer(r.p), offHeapIdx))) }
func (r Rec) setHeapIdx(i int)         { *(*int32)(unsafe.Add(unsafe.Pointer(r.p), offHeapIdx)) = int32(i) }
func (r Rec) setHeapDeadline(ns int64) { *r.u32(offHeapDeadline) = ceilSec(ns) }

// ceilSec rounds a unix ns deadline up to whole seconds, so a record is
// never popped before it is due.
func ceilSec(ns int64) uint32 {
	if ns <= 0 {
		return 0
	}
	return uint32(min((ns+1e9-1)/1e9, 1<<32-1))
}
