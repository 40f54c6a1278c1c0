package main

import (
	"runtime"
	"runtime/metrics"
	"time"
)

// heapAlloc returns the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// gcStats is the garbage collector's cumulative cost, from runtime/metrics.
type gcStats struct {
	cycles   uint64
	pause    time.Duration
	gcCPU    float64
	totalCPU float64
	cpuShare float64
}

func readGC() gcStats {
	s := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/sched/pauses/total/gc:seconds"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"},
	}
	metrics.Read(s)
	var g gcStats
	g.cycles = s[0].Value.Uint64()
	if s[1].Value.Kind() == metrics.KindFloat64Histogram {
		h := s[1].Value.Float64Histogram()
		for i, n := range h.Counts {
			// Each pause counts at its bucket's lower bound: the upper may be
			// +Inf, and the first bucket's lower bound is -Inf (0 × -Inf is
			// NaN, so empty buckets are skipped).
			if n > 0 && h.Buckets[i] > 0 {
				g.pause += time.Duration(float64(n) * h.Buckets[i] * 1e9)
			}
		}
	}
	g.gcCPU = s[2].Value.Float64()
	g.totalCPU = s[3].Value.Float64()
	return g
}

// since returns the cost between before and g.
func (g gcStats) since(before gcStats) gcStats {
	d := gcStats{
		cycles:   g.cycles - before.cycles,
		pause:    g.pause - before.pause,
		gcCPU:    g.gcCPU - before.gcCPU,
		totalCPU: g.totalCPU - before.totalCPU,
	}
	if d.totalCPU > 0 {
		d.cpuShare = d.gcCPU / d.totalCPU
	}
	return d
}
