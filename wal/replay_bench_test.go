//go:build unix

package wal_test

import (
	"runtime"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/sesscache/sesscache/wal"
	"github.com/sesscache/sesscache/wal/waltest"
)

// BenchmarkOpen measures Open on two closed logs: a few records in a fresh
// 64 MiB segment (mostly preallocated zeros), and 1M Puts of 200 bytes of
// data over several full segments. Besides time and allocations per Open it
// reports peak-heap-MiB, the most the heap grew above its level before Open
// (sampled every 16Ki records and after Open returns), and cpu-ms/op, the
// process's user and system CPU time per Open, which other load on a shared
// machine disturbs less than wall time does. Building the large log takes a
// few seconds, so keep runs short:
//
//	go test -run '^$' -bench 'Open' -benchtime 5x -count 1 ./wal
func BenchmarkOpen(b *testing.B) {
	for _, c := range []struct {
		name    string
		records int
	}{
		{"tiny-log/9-records", 9},
		{"large-log/1M-puts", 1 << 20},
	} {
		// The sub-benchmark body runs more than once, and its own TempDir
		// goes with each run, so the log is built once in the parent's.
		dir, built := b.TempDir(), false
		b.Run(c.name, func(b *testing.B) {
			if !built {
				writeBenchLog(b, dir, c.records)
				built = true
			}
			benchmarkOpen(b, dir, uint64(c.records))
		})
	}
}

// writeBenchLog writes n Puts of 200 bytes of data, under distinct keys.
func writeBenchLog(b *testing.B, dir string, n int) {
	b.Helper()
	l, _, err := wal.Open(dir, wal.Options{Sync: wal.SyncNo, Logger: quiet}, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := wal.Record{Op: wal.OpPut, Version: 1, Created: 1.7e18, LastAccess: 1.7e18,
		Idle: 30 * 60e9, Absolute: 1.8e18, UserID: []byte("user-1234"), Data: make([]byte, 200)}
	var p wal.Pending
	for i := 0; i < n; i++ {
		r.Key.Digest[0], r.Key.Digest[1], r.Key.Digest[2] = byte(i), byte(i>>8), byte(i>>16)
		r.Key.Hint = uint16(i)
		if err := p.Encode(&r); err != nil {
			b.Fatal(err)
		}
		lsn, err := l.Append(&p)
		if err == nil {
			err = l.Wait(lsn)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchmarkOpen opens and closes dir b.N times, timing Open only. Sync is
// skipped (waltest's NoSync), so the numbers are replay, not fsync latency.
func benchmarkOpen(b *testing.B, dir string, records uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	var base, peak, count uint64
	apply := func(*wal.Record) error {
		if count%(16<<10) == 0 {
			peak = max(peak, heap())
		}
		count++
		return nil
	}
	opts := wal.Options{FS: &waltest.FS{NoSync: true}, Logger: quiet}
	var bytes int64
	var maxGrowth uint64
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		base, peak, count = heap(), 0, 0
		cpu0 := cpuTime()
		b.StartTimer()
		l, info, err := wal.Open(dir, opts, 0, apply)
		b.StopTimer()
		cpu += cpuTime() - cpu0
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, heap())
		maxGrowth = max(maxGrowth, peak-min(peak, base))
		if count != records || info.Records != records || info.TornBytes != 0 {
			b.Fatalf("replayed %d records (info %+v), want %d", count, info, records)
		}
		bytes = info.Bytes
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.SetBytes(bytes)
	b.ReportMetric(float64(maxGrowth)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
