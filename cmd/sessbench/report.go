package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"text/tabwriter"
	"time"
)

func report(out io.Writer, c runConfig, load, elapsed time.Duration, res *result, heapBefore, heapAfter uint64, gc gcStats) {
	fmt.Fprintf(out, "sessbench run: in-memory engine, %s, %d CPUs (GOMAXPROCS %d)\n",
		runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(out, "preload   %d sessions × %d B in %.2f s (%s creates/s)\n",
		c.sessions, c.data, load.Seconds(), si(float64(c.sessions)/load.Seconds()))
	dist := c.dist
	if dist == "zipf" {
		dist = fmt.Sprintf("zipf s=%.2f", c.zipfS)
	}
	fmt.Fprintf(out, "workload  %.1f s, %d workers, %s keys, %.0f%% Get / %.0f%% Update\n\n",
		elapsed.Seconds(), c.workers, dist, c.read*100, (1-c.read)*100)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tops/s\tmean\tp50\tp90\tp99\tp99.9\tmax\t")
	row := func(name string, h *hist) {
		if h.n == 0 {
			return
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, h.n, si(float64(h.n)/elapsed.Seconds()),
			dur(h.mean()), dur(float64(h.quantile(.5))), dur(float64(h.quantile(.9))), dur(float64(h.quantile(.99))),
			dur(float64(h.quantile(.999))), dur(float64(h.max)))
	}
	row("Get", &res.get)
	row("Update", &res.update)
	var all hist
	all.merge(&res.get)
	all.merge(&res.update)
	row("all", &all)
	tw.Flush()

	per := float64(heapAfter-heapBefore) / float64(c.sessions)
	fmt.Fprintf(out, "\nmemory    %.0f B heap per session after preload (%.0f B beyond the 16 B ID and %d B data)\n",
		per, per-16-float64(c.data), c.data)
	fmt.Fprintf(out, "gc        %d cycles during the workload, %.2f ms total pause, %.1f%% of CPU time\n",
		gc.cycles, gc.pause.Seconds()*1000, gc.cpuShare*100)
	fmt.Fprintln(out, "\nLatency includes reading the clock around each operation (two time.Now calls).")
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

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
			// Each pause counts at its bucket's lower bound (the upper may be +Inf).
			g.pause += time.Duration(float64(n) * h.Buckets[i] * 1e9)
		}
	}
	g.gcCPU = s[2].Value.Float64()
	g.totalCPU = s[3].Value.Float64()
	return g
}

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

func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func dur(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2fs", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2fms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1fµs", ns/1e3)
	}
	return fmt.Sprintf("%.0fns", ns)
}
