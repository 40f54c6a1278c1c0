package wal

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
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
	if latencies {
		for w := range lat {
			lat[w] = make([]time.Duration, 0, per)
		}
	}
	b.ResetTimer()
	for w := 0; w < writers; w++ {
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
				// Timing each call costs two clock reads, noise next to an
				// fsync but not next to the other policies' appends.
				lat := runWriters(b, l, writers, policy == SyncAlways)
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
				st := l.Stats() // after Close, so its final fsync counts
				b.ReportMetric(st.RecordsPerFsync(), "records/fsync")
				b.ReportMetric(float64(st.Records)/float64(max(st.Writes, 1)), "records/write")
				if len(lat) > 0 {
					reportLatency(b, lat)
				}
			})
		}
	}
}

// reportLatency reports percentiles of the Append+Wait latencies in lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(q(0.5), "p50-ns")
	b.ReportMetric(q(0.99), "p99-ns")
	b.ReportMetric(q(0.999), "p99.9-ns")
	b.ReportMetric(q(0.9999), "p99.99-ns")
	b.ReportMetric(q(1), "max-ns")
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
				reportLatency(b, lat)
				b.ReportMetric(float64(st.Fsyncs), "fsyncs")
			})
		}
	}
}

// BenchmarkSegmentFsync measures the cost of making 4 KiB durable at the end
// of a segment's data: write+fdatasync on a file that grows with each write,
// one preallocated with fallocate (unwritten extents, which ext4 converts in
// its journal at fdatasync), and one whose space was written with zeros
// ahead (what SyncAlways segments use); and the same 4 KiB written through
// O_DSYNC instead of a separate fdatasync.
//
//	go test -run '^$' -bench 'SegmentFsync' -benchtime 1000x -count 6 ./wal
func BenchmarkSegmentFsync(b *testing.B) {
	for _, mode := range []string{"growing", "fallocate", "zero-filled", "fallocate+O_DSYNC", "zero-filled+O_DSYNC"} {
		b.Run(mode, func(b *testing.B) {
			size := int64(b.N+1) * 4096
			flag := os.O_RDWR | os.O_CREATE
			dsync := strings.HasSuffix(mode, "+O_DSYNC")
			if dsync {
				if oDSYNC == 0 {
					b.Skip("no O_DSYNC here")
				}
				flag |= oDSYNC
			}
			f, err := OSFS{}.OpenFile(b.TempDir()+"/seg", flag, fileMode)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			switch strings.TrimSuffix(mode, "+O_DSYNC") {
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
				if dsync {
					continue
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
