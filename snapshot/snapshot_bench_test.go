package snapshot_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/snapshot"
	"github.com/sesscache/sesscache/wal"
)

// The benchmarks snapshot a million sessions of 200 bytes of data each, in 64
// fill calls: the engine's shard count on a 4-core machine.
const (
	benchRecords = 1_000_000
	benchParts   = 64
)

var benchData = func() []byte {
	b := make([]byte, 200)
	for i := range b {
		b[i] = byte(i * 31)
	}
	return b
}()

// benchFill adds this part's share of benchRecords through one reused
// Record, as the engine does with the sessions it copied out of a shard.
func benchFill(i int, add func(*wal.Record) error) error {
	r := wal.Record{
		Op:         wal.OpPut,
		Created:    1_700_000_000_000_000_000,
		LastAccess: 1_700_000_100_000_000_000,
		Idle:       30 * 60 * 1e9,
		Absolute:   1_700_086_400_000_000_000,
		UserID:     []byte("user-000042"),
		Data:       benchData,
	}
	for j := i * benchRecords / benchParts; j < (i+1)*benchRecords/benchParts; j++ {
		binary.LittleEndian.PutUint64(r.Key.Digest[:], uint64(j)*0x9e3779b97f4a7c15)
		r.Key.Hint = uint16(j)
		r.Version = uint64(j)
		if err := add(&r); err != nil {
			return err
		}
	}
	return nil
}

func benchOptions(workers, chunkTarget int) snapshot.Options {
	opts := snapshot.Options{Workers: workers, Logger: quiet}
	if chunkTarget > 0 {
		snapshot.SetChunkTarget(&opts, chunkTarget)
	}
	return opts
}

// reportRates reports records/s and MB/s (of file) over the whole run.
func reportRates(b *testing.B, bytes int64, ops int) {
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(benchRecords)*float64(ops)/secs, "records/s")
	b.ReportMetric(float64(bytes)*float64(ops)/1e6/secs, "MB/s")
}

func BenchmarkWrite(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			benchWrite(b, benchOptions(workers, 0))
		})
	}
}

func benchWrite(b *testing.B, opts snapshot.Options) {
	dir := b.TempDir()
	var info snapshot.Info
	var err error
	ops := 0
	b.ReportAllocs()
	for b.Loop() {
		info, err = snapshot.Write(dir, 1, created, benchParts, benchFill, opts)
		require.NoError(b, err)
		ops++
	}
	require.Equal(b, uint64(benchRecords), info.Sessions)
	reportRates(b, info.Bytes, ops)
}

// BenchmarkLoad loads with an apply that does nothing, so it measures the
// package alone; "verify" is the first of Load's two passes by itself.
func BenchmarkLoad(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			benchLoad(b, benchOptions(workers, 0), func(*wal.Record) error { return nil })
		})
	}
	b.Run("verify/workers=2", func(b *testing.B) {
		benchLoad(b, benchOptions(2, 0), nil)
	})
}

func benchLoad(b *testing.B, opts snapshot.Options, apply func(*wal.Record) error) {
	info, err := snapshot.Write(b.TempDir(), 1, created, benchParts, benchFill, opts)
	require.NoError(b, err)
	ops := 0
	b.ReportAllocs()
	for b.Loop() {
		got, err := snapshot.Load(info.Path, opts, apply)
		require.NoError(b, err)
		require.Equal(b, uint64(benchRecords), got.Sessions)
		ops++
	}
	reportRates(b, info.Bytes, ops)
}

// BenchmarkChunkTarget compares chunk sizes with two workers; it is how the
// 256 KiB default was chosen (see BENCHMARKS.md).
func BenchmarkChunkTarget(b *testing.B) {
	for _, target := range []int{16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20} {
		opts := benchOptions(2, target)
		b.Run(fmt.Sprintf("write/target=%dKiB", target>>10), func(b *testing.B) {
			benchWrite(b, opts)
		})
		b.Run(fmt.Sprintf("load/target=%dKiB", target>>10), func(b *testing.B) {
			benchLoad(b, opts, func(*wal.Record) error { return nil })
		})
	}
}
