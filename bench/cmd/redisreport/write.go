package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// write renders m as the Markdown of results/redis.md. It starts at the
// third heading level: run.sh nests it under a section of RESULTS.md.
func write(w io.Writer, m *measurements) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format+"\n", args...) }

	p("Written by `bench/redis.sh`; do not edit, run it again.")
	p("")
	p("| | |")
	p("|---|---|")
	for _, kv := range m.machine {
		p("| %s | %s |", kv[0], kv[1])
	}

	p("")
	p("### Durable writes")
	p("")
	p("| appendfsync / Sync | Redis SET/s | sesscache Create/s | sesscache ÷ Redis | ÷ per round | sesscache records per fsync |")
	p("|---|---:|---:|---:|---|---:|")
	for _, pol := range policies {
		redis, _ := median(m.redisSet[pol])
		sc, _ := median(m.createRate[pol])
		var rounds []string
		for i := range min(len(m.redisSet[pol]), len(m.createRate[pol])) {
			rounds = append(rounds, ratio(m.createRate[pol][i], m.redisSet[pol][i]))
		}
		per := "–"
		if v, ok := median(m.perFsync[pol]); ok {
			per = fmt.Sprintf("%.1f", v)
		}
		p("| %s | %s | %s | %s | %s | %s |", pol, count(redis), count(sc), ratio(sc, redis), strings.Join(rounds, ", "), per)
	}
	p("")
	p("Medians of %d rounds; each round measures Redis, then sesscache, under each policy in turn,", len(m.createRate[policies[0]]))
	p("so a drift in the machine's speed lands on both. \"sesscache ÷ Redis\" divides the medians;")
	p("\"÷ per round\" divides each round's own figures.")
	p("")
	p("Redis: `redis-benchmark -t set` with 64 connections over loopback to one Redis, AOF on, keys")
	p("drawn from 1M (so SET both inserts and overwrites), no pipelining; redis-benchmark runs on the")
	p("same cores. sesscache: 64 goroutines calling `Create` in the process (a fresh session and ID")
	p("each time), no network. That difference is the point of an in-process store, but it means")
	p("the Redis figure includes a loopback round trip and the benchmark client's CPU.")

	p("")
	p("### Load time")
	p("")
	p("| form | Redis load (logged) | Redis DEBUG LOADAOF (wall) | sesscache Open | Redis ÷ sesscache | sesscache sessions/s | on disk: Redis, sesscache |")
	p("|---|---:|---:|---:|---:|---:|---|")
	forms := []struct {
		form, label, from, redisFile string
	}{
		{"aof", "the log alone: command AOF / WAL", "wal", "aof"},
		{"rdb-tail", "compacted + tail: RDB-preamble AOF + SETs / snapshot + Updates", "snapshot+tail", "rdb_base_tail"},
	}
	for _, f := range forms {
		logged, okLogged := medianOf(m.loads[f.form], 1)
		wall, _ := medianOf(m.loads[f.form], 0)
		rec := m.recovery(f.from)
		if rec == nil {
			return fmt.Errorf("recover.json has no %s recovery", f.from)
		}
		sess := float64(rec.MedianNs) / 1e9
		redisTime := wall
		loggedCell := "–"
		if okLogged {
			redisTime = logged
			loggedCell = fmt.Sprintf("%.2f s", logged)
		}
		onDisk := fmt.Sprintf("%s, %s", mib(m.files[f.redisFile]), mib(rec.SnapshotBytes+rec.LogBytes))
		p("| %s | %s | %.2f s | %.2f s | %s | %s | %s |", f.label, loggedCell, wall, sess,
			ratio(redisTime, sess), count(rec.SessionsPerSec), onDisk)
	}
	p("")
	p("Medians of each system's repeated loads; every load is listed under Raw numbers. \"Redis ÷")
	p("sesscache\" divides Redis's logged load time (its wall time where none was logged) by")
	p("sesscache's Open: above 1, sesscache recovers faster. Redis's logged time is what")
	p("`loadAppendOnlyFiles` reports for the base and incr files; DEBUG LOADAOF's wall time also")
	p("empties the keys loaded before. sesscache's Open is timed from the call to its return.")
	p("Both read files just written, from the page cache. DEBUG POPULATE's values are \"value:N\"")
	p("padded with zero bytes, which the RDB preamble compresses (LZF); sesscache's are 200 zero")
	p("bytes, stored as they are.")
	if s := m.rec.Snapshot; s.Sessions > 0 {
		p("")
		p("sesscache snapshot of %s sessions: %.2f s, %s (taken on the %s engine); the tail was %s Updates, %s of log.",
			count(float64(s.Sessions)), float64(s.DurationNs)/1e9, mib(s.Bytes), s.Engine,
			count(float64(m.rec.Tail.Records)), mib(m.rec.Tail.Bytes))
	}

	p("")
	p("### Commands")
	p("")
	p("Run from `bench/` (sesscache's from the repository root), in this order:")
	p("")
	p("```sh")
	for _, c := range m.commands {
		p("%s", c)
	}
	p("```")

	p("")
	p("### Raw numbers")
	p("")
	p("```text")
	for _, pol := range policies {
		p("# redis-benchmark --csv, appendfsync %s", pol)
		p("%s", m.redisCSV[pol])
	}
	p("# go test ./engine -bench CreateDurable")
	for _, pol := range policies {
		for _, l := range m.bench[pol] {
			p("%s", l)
		}
	}
	for _, f := range forms {
		p("# Redis DEBUG LOADAOF, %s: wall s, logged s", f.form)
		for _, l := range m.loads[f.form] {
			p("%s %s", l[0], l[1])
		}
	}
	p("# Redis AOF bytes")
	for _, k := range []string{"aof", "rdb_base", "rdb_base_tail"} {
		p("%s %d", k, m.files[k])
	}
	p("# sessbench recover -json")
	p("%s", strings.TrimSpace(m.json))
	p("```")
	return bw.Flush()
}

// recovery returns the recover.json entry recovered from the given source.
func (m *measurements) recovery(from string) *recovery {
	for i := range m.rec.Recoveries {
		if m.rec.Recoveries[i].From == from {
			return &m.rec.Recoveries[i]
		}
	}
	return nil
}

// ratio formats a/b to two places, or "–" if b is zero.
func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// count formats a count or rate with a metric prefix.
func count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
