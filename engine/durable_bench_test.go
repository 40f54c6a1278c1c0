package engine

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// BenchmarkCreateDurable measures Create on a persistent engine under each
// sync policy with a fixed number of concurrent writers, against the same
// engine in memory. It reports creates/s and the records each fsync covered
// (group commit) and the records each write(2) carried. Under everysec
// and no the log maps its segments; "-write" writes them with write calls
// instead (the design before mapped segments, kept for comparison). Under
// always it writes them; "always-mapped" maps them, to show why not. The data
// directory is under TMPDIR (or SESSCACHE_BENCH_DIR).
func BenchmarkCreateDurable(b *testing.B) { benchDurable(b, "create") }

// BenchmarkUpdateDurable is BenchmarkCreateDurable for Update: each writer
// updates sessions of its own among benchSessions/100 created first.
func BenchmarkUpdateDurable(b *testing.B) { benchDurable(b, "update") }

var durablePolicies = []string{"memory", "no", "everysec", "everysec-write", "always", "always-mapped"}

func benchDurable(b *testing.B, op string) {
	data := make([]byte, benchData)
	for _, policy := range durablePolicies {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("sync=%s/writers=%d", policy, writers), func(b *testing.B) {
				o := Options{Logger: quiet}
				if policy != "memory" {
					o.Dir = benchDir(b)
					name, write := strings.CutSuffix(policy, "-write")
					name, mapped := strings.CutSuffix(name, "-mapped")
					o.Sync = map[string]SyncPolicy{"no": SyncNo, "everysec": SyncEverySecond, "always": SyncAlways}[name]
					o.NoMap, o.mapAlways = write, mapped
				}
				e, err := Open(o)
				if err != nil {
					b.Fatal(err)
				}
				ids := make([][]string, writers)
				if op == "update" {
					for w := range ids {
						for range max(benchSessions/100/writers, 1) {
							s, err := e.Create(bg, CreateOptions{Data: data})
							if err != nil {
								b.Fatal(err)
							}
							ids[w] = append(ids[w], s.ID())
						}
					}
				}
				before := e.Stats().Log
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for w := range writers {
					n := b.N / writers
					if w < b.N%writers {
						n++
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range n {
							var err error
							if op == "create" {
								_, err = e.Create(bg, CreateOptions{Data: data})
							} else {
								_, err = e.Update(bg, ids[w][i%len(ids[w])], 0, func(Session) ([]byte, error) { return data, nil })
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				st := e.Stats().Log
				records, writes, fsyncs := st.Records-before.Records, st.Writes-before.Writes, st.Fsyncs-before.Fsyncs
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), op+"s/s")
				if writes > 0 {
					b.ReportMetric(float64(records)/float64(writes), "records/write")
				}
				if fsyncs > 0 && strings.HasPrefix(policy, "always") {
					b.ReportMetric(float64(records)/float64(fsyncs), "records/fsync")
				}
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkRecoverWAL measures Open on a directory whose log holds
// SESSCACHE_BENCH_N sessions (default 1M) of 200 B, written once.
func BenchmarkRecoverWAL(b *testing.B) {
	n := benchN()
	dir := benchDir(b)
	e, err := Open(Options{Dir: dir, Sync: SyncNo, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, benchData)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n/2 + w*(n%2) {
				if _, err := e.Create(bg, CreateOptions{Data: data}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	timeOpens(b, dir, n, func(e *Engine) {
		if e.Len() != n {
			b.Fatalf("recovered %d sessions, want %d", e.Len(), n)
		}
	})
}

// BenchmarkRecoverSnapshot measures Open on a directory holding a snapshot
// of SESSCACHE_BENCH_N sessions (default 1M) of 200 B and no log after it.
func BenchmarkRecoverSnapshot(b *testing.B) {
	n := benchN()
	dir := benchDir(b)
	e, err := Open(Options{Dir: dir, Sync: SyncNo, Logger: quiet, SnapshotCPU: 1})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, benchData)
	for range n {
		if _, err := e.Create(bg, CreateOptions{Data: data}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.Snapshot(bg); err != nil {
		b.Fatal(err)
	}
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	timeOpens(b, dir, n, func(e *Engine) {
		if e.Len() != n || e.Stats().Recovery.Records != 0 {
			b.Fatalf("recovered %d sessions and %d log records, want %d and 0", e.Len(), e.Stats().Recovery.Records, n)
		}
	})
}

// timeOpens times b.N Opens of dir, which holds n sessions, checking each
// recovered engine with check outside the timer, and reports sessions/s.
func timeOpens(b *testing.B, dir string, n int, check func(*Engine)) {
	b.ResetTimer()
	for range b.N {
		e, err := Open(Options{Dir: dir, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		check(e)
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
}

func benchDir(b *testing.B) string {
	if d := os.Getenv("SESSCACHE_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

func benchN() int {
	if v := os.Getenv("SESSCACHE_BENCH_N"); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err == nil && n > 0 {
			return n
		}
	}
	return benchSessions
}
