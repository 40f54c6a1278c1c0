package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// printRun writes the run command's report for people.
func printRun(out io.Writer, r *runResult) {
	c := r.Config
	fmt.Fprintf(out, "sessbench run: %s\n", r.Storage)
	printEnvironment(out, r.Environment)
	fmt.Fprintf(out, "\npreload   %d sessions × %d B in %.2f s (%s creates/s, %d writers)\n",
		r.Preload.Sessions, c.Data, r.Preload.DurationNs.Seconds(), si(r.Preload.CreatesPerSec), r.Preload.Writers)
	dist := c.Dist
	if dist == "zipf" {
		dist = fmt.Sprintf("zipf s=%.2f", c.ZipfS)
	}
	fmt.Fprintf(out, "workload  %.1f s, %d workers, %s keys, %.0f%% Get / %.0f%% Update: %s ops/s\n\n",
		r.Workload.DurationNs.Seconds(), c.Workers, dist, c.Read*100, (1-c.Read)*100, si(r.Workload.OpsPerSec))

	tw := latencyTable(out, "op")
	for _, o := range r.Ops {
		latencyRow(tw, o.Name, o.latency, fmt.Sprint(o.Misses))
	}
	_ = tw.Flush() // a report to stdout: a failed print has nobody left to tell

	printSnapshots(out, r)
	if sp := r.SnapshotSplit; sp != nil {
		printSplit(out, sp)
	}

	m := r.Memory
	fmt.Fprintf(out, "\nmemory    %.0f B heap per session after preload (%.0f B beyond the 16 B key and %d B data)\n",
		m.BytesPerSession, m.BytesPerSession-16-float64(m.DataBytes), m.DataBytes)
	fmt.Fprintf(out, "gc        %d cycles during the workload, %.2f ms total pause, %.1f%% of CPU time\n",
		r.GC.Cycles, r.GC.PauseTotalNs.Seconds()*1000, r.GC.CPUFraction*100)
	if w := r.WAL; w != nil {
		fmt.Fprintf(out, "wal       workload: %s\n", walLine(w.Workload))
		fmt.Fprintf(out, "          preload:  %s\n", walLine(w.Preload))
		fmt.Fprintf(out, "          at the end: %d log segments holding %s; latest snapshot %s\n",
			w.Segments, bytesHuman(w.DiskBytes), bytesHuman(w.SnapshotBytes))
	}
	e := r.Expiry
	fmt.Fprintf(out, "expiry    idle %s, absolute %s: %d sessions expired during the workload, %d engine misses; live %d at start, %d at end\n",
		e.IdleTimeoutNs, e.AbsoluteTimeoutNs, e.Expired, e.Misses, e.LiveAtStart, e.LiveAtEnd)
	t := r.Timing
	fmt.Fprintf(out, "time      %.1f s in all: preload %.1f s, workload %.1f s, close %.2f s, clean-up %.2f s\n",
		t.TotalNs.Seconds(), t.PreloadNs.Seconds(), t.WorkloadNs.Seconds(), t.CloseNs.Seconds(), t.CleanupNs.Seconds())

	fmt.Fprintln(out, "\nLatency is per call, clock reads included, from a log-linear histogram (within 3%; max exact).")
	fmt.Fprintln(out, "Workers run a closed loop: each waits for its call, so a slow Update also delays that worker's Gets.")
}

func printEnvironment(out io.Writer, env environment) {
	fmt.Fprintf(out, "%s %s/%s, %d CPUs, GOMAXPROCS %d", env.GoVersion, env.OS, env.Arch, env.CPUs, env.GOMAXPROCS)
	if env.LoadAverage != "" {
		fmt.Fprintf(out, ", load average %s", env.LoadAverage)
	}
	fmt.Fprintln(out)
}

func latencyTable(out io.Writer, first string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tcount\tops/s\tmean\tp50\tp90\tp99\tp99.9\tmax\tmisses\t\n", first)
	return tw
}

func latencyRow(tw io.Writer, name string, l latency, misses string) {
	fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, l.Count, si(l.OpsPerSec),
		dur(l.MeanNs), dur(float64(l.P50Ns)), dur(float64(l.P90Ns)), dur(float64(l.P99Ns)),
		dur(float64(l.P999Ns)), dur(float64(l.MaxNs)), misses)
}

func printSnapshots(out io.Writer, r *runResult) {
	if r.Config.memory {
		return
	}
	var during int
	for _, s := range r.Snapshots {
		if s.Phase == "workload" {
			during++
		}
	}
	rule := "by the engine's own rules"
	if r.Config.SnapshotEvery > 0 {
		rule = fmt.Sprintf("from the harness every %s", r.Config.SnapshotEvery)
	}
	fmt.Fprintf(out, "\nsnapshots %d taken %s, %d of them during the workload\n", len(r.Snapshots), rule, during)
	for _, s := range r.Snapshots {
		fmt.Fprintf(out, "          %-8s at %+6.1f s: %d sessions, %s in %.2f s\n",
			s.Phase, s.StartNs.Seconds(), s.Sessions, bytesHuman(s.Bytes), s.DurationNs.Seconds())
	}
	if r.Config.SnapshotEvery == 0 && during > 0 {
		fmt.Fprintln(out, "          (latencies above include them; -snapshot-every splits latency by snapshot running or not)")
	}
}

func printSplit(out io.Writer, sp *snapshotSplit) {
	fmt.Fprintf(out, "\nlatency by phase: a snapshot ran for %.1f s of the workload, none for %.1f s\n\n",
		sp.SnapshotRunningNs.Seconds(), sp.QuietNs.Seconds())
	tw := latencyTable(out, "op, phase")
	for i := range sp.Quiet {
		latencyRow(tw, sp.Quiet[i].Name+", no snapshot", sp.Quiet[i].latency, "")
		latencyRow(tw, sp.During[i].Name+", snapshot running", sp.During[i].latency, "")
	}
	_ = tw.Flush() // a report to stdout: a failed print has nobody left to tell
	if sp.GetP99Ratio == 0 {
		fmt.Fprintln(out, "\nNo Get ran during a snapshot: make -snapshot-every shorter than -duration.")
		return
	}
	verdict := "within"
	if max(sp.GetP99Ratio, sp.GetP999Ratio) > 1.5 {
		verdict = "above"
	}
	fmt.Fprintf(out, "\nGet p99 ×%.2f and p99.9 ×%.2f while a snapshot runs (%s the goal of ×1.5)\n",
		sp.GetP99Ratio, sp.GetP999Ratio, verdict)
}

func walLine(w walCounters) string {
	s := fmt.Sprintf("%s records, %s appended in %d writes, %d fsyncs", si(float64(w.Records)),
		bytesHuman(int64(w.BytesAppended)), w.Writes, w.Fsyncs)
	if w.Fsyncs > 0 {
		s += fmt.Sprintf(" (%s records per fsync)", si(w.RecordsPerFsync))
	}
	return s
}

// si formats a count or rate with a metric prefix.
func si(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0")
}

// bytesHuman formats a size in binary units.
func bytesHuman(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// dur formats nanoseconds with a unit that keeps three significant digits.
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

// seconds formats a duration in seconds for the report.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
