package main

import (
	"math"
	"math/bits"
)

// hist is a log-linear latency histogram in the manner of HdrHistogram:
// values below 2^subBits nanoseconds are kept exactly; above, each power of
// two is split into 2^subBits linear buckets, so any recorded value is off by
// at most 1/2^subBits (about 3%). Recording is a few instructions and no
// allocation; a histogram is a fixed 16 KiB whatever the run length.
type hist struct {
	counts [64 << subBits]uint64
	n      uint64
	sum    uint64
	max    uint64
}

const subBits = 5

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1
	return (e+1)<<subBits | int(v>>e)&(1<<subBits-1)
}

// upperOf returns the largest value that falls in bucket i.
func upperOf(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	e := i>>subBits - 1
	sub := uint64(i & (1<<subBits - 1))
	return (1<<subBits+sub+1)<<e - 1
}

func (h *hist) record(ns uint64) {
	h.counts[bucketOf(ns)]++
	h.n++
	h.sum += ns
	h.max = max(h.max, ns)
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the smallest bucket bound below which a fraction q of the
// values fall (q in [0,1]); the maximum is exact.
func (h *hist) quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(upperOf(i), h.max)
		}
	}
	return h.max
}

func (h *hist) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return float64(h.sum) / float64(h.n)
}
