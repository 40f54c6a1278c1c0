package wal

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// Log benchmarks: Append+Wait of a 200-byte Put per policy and writer count,
// on the real file system under the test's temporary directory. Each reports
// records/fsync, the group commit factor. Keep runs short on shared machines:
//
//	go test -run '^$' -bench 'AppendWait' -benchtime 200ms -count 1 ./wal

func benchOpen(b *testing.B, opts Options) *Log {
	b.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, _, err := Open(b.TempDir(), opts, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// runWriters splits b.N Append+Wait calls over writers goroutines and
// returns each call's latency when latencies is set.
func runWriters(b *testing.B, l *Log, writers int, latencies bool) []time.Duration {
	b.Helper()
	rec := samplePut()
	per := b.N/writers + 1
	lat := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	for w := 0; w < writers; w++ {
		if latencies {
			lat[w] = make([]time.Duration, 0, per)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p Pending
			if err := p.Encode(&rec); err != nil {
				errs <- err
				return
			}
			for i := 0; i < per; i++ {
				var start time.Time
				if latencies {
					start = time.Now()
				}
				lsn, err := l.Append(&p)
				if err == nil {
					err = l.Wait(lsn)
				}
				if err != nil {
					errs <- err
					return
				}
				if latencies {
					lat[w] = append(lat[w], time.Since(start))
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return slices.Concat(lat...)
}

func BenchmarkAppendWait(b *testing.B) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncEverySecond, SyncNo} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%v/writers=%d", policy, writers), func(b *testing.B) {
				l := benchOpen(b, Options{Sync: policy})
				b.ReportAllocs()
				b.SetBytes(int64(encodedSize(&Record{Op: OpPut, Data: make([]byte, 200)})))
				runWriters(b, l, writers, false)
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
				st := l.Stats() // after Close, so its final fsync counts
				b.ReportMetric(st.RecordsPerFsync(), "records/fsync")
				b.ReportMetric(float64(st.Records)/float64(max(st.Writes, 1)), "records/write")
			})
		}
	}
}

// BenchmarkEverySecondFsyncPlacement compares Wait latency under
// SyncEverySecond with the fsync on a syncer goroutine (the design) against
// the fsync in the flusher, which holds up every write behind it. Short
// intervals put many fsyncs into a short run.
//
//	go test -run '^$' -bench 'EverySecondFsyncPlacement' -benchtime 2s -count 1 ./wal
func BenchmarkEverySecondFsyncPlacement(b *testing.B) {
	// An hour-long interval is the baseline: no fsync during the run.
	for _, interval := range []time.Duration{time.Hour, 20 * time.Millisecond, 250 * time.Millisecond} {
		for _, inFlusher := range []bool{false, true} {
			if interval == time.Hour && inFlusher {
				continue
			}
			name := "syncer-goroutine"
			if inFlusher {
				name = "fsync-in-flusher"
			}
			b.Run(fmt.Sprintf("interval=%v/%s", interval, name), func(b *testing.B) {
				opts := Options{Sync: SyncEverySecond, SyncInterval: interval, everysecInFlusher: inFlusher}
				l := benchOpen(b, opts)
				lat := runWriters(b, l, 8, true)
				st := l.Stats()
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
				slices.Sort(lat)
				q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
				b.ReportMetric(q(0.5), "p50-ns")
				b.ReportMetric(q(0.99), "p99-ns")
				b.ReportMetric(q(0.999), "p99.9-ns")
				b.ReportMetric(q(0.9999), "p99.99-ns")
				b.ReportMetric(q(1), "max-ns")
				b.ReportMetric(float64(st.Fsyncs), "fsyncs")
			})
		}
	}
}

// BenchmarkSegmentFsync measures write(4 KiB)+fdatasync on a file that grows
// with each write, one preallocated with fallocate (what segments use), and
// one filled with zeros beforehand (what PostgreSQL does).
//
//	go test -run '^$' -bench 'SegmentFsync' -benchtime 500x -count 1 ./wal
func BenchmarkSegmentFsync(b *testing.B) {
	for _, mode := range []string{"growing", "fallocate", "zero-filled"} {
		b.Run(mode, func(b *testing.B) {
			size := int64(b.N+1) * 4096
			f, err := OSFS{}.OpenFile(b.TempDir()+"/seg", os.O_RDWR|os.O_CREATE, fileMode)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			switch mode {
			case "fallocate":
				err = f.Preallocate(size)
			case "zero-filled":
				_, err = f.WriteAt(make([]byte, size), 0)
			}
			if err == nil {
				err = f.Sync()
			}
			if err != nil {
				b.Fatal(err)
			}
			page := make([]byte, 4096)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := f.WriteAt(page, int64(i)*4096); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
