package engine

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// BenchmarkCreateDurable measures Create on a persistent engine under each
// sync policy with a fixed number of concurrent writers, against the same
// engine in memory. It reports creates/s and the records each fsync covered
// (group commit) and the records each write(2) carried. The data directory is under TMPDIR (or SESSCACHE_BENCH_DIR).
func BenchmarkCreateDurable(b *testing.B) {
	data := make([]byte, benchData)
	for _, policy := range []string{"memory", "no", "everysec", "always"} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("sync=%s/writers=%d", policy, writers), func(b *testing.B) {
				o := Options{Logger: quiet}
				if policy != "memory" {
					o.Dir = benchDir(b)
					o.Sync = map[string]SyncPolicy{"no": SyncNo, "everysec": SyncEverySecond, "always": SyncAlways}[policy]
				}
				e, err := Open(o)
				if err != nil {
					b.Fatal(err)
				}
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
						for range n {
							if _, err := e.Create(bg, CreateOptions{Data: data}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				st := e.Stats().Log
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
				if st.Writes > 0 {
					b.ReportMetric(float64(st.Records)/float64(st.Writes), "records/write")
				}
				if st.Fsyncs > 0 && policy == "always" {
					b.ReportMetric(st.RecordsPerFsync(), "records/fsync")
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
	b.ResetTimer()
	for range b.N {
		e, err := Open(Options{Dir: dir, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if e.Len() != n {
			b.Fatalf("recovered %d sessions, want %d", e.Len(), n)
		}
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
