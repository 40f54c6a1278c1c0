package wal_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal"
)

// TestDamageTestsThroughSmallReadBuffers reruns the torn-tail and damage
// tests with replay reading through a 13-byte buffer: shorter than a segment
// header and than most frames, so that frames, zero runs, damaged regions and
// the search for a valid frame after damage all straddle reads, and the
// buffer grows. (TestBitFlipInLastSegmentBeforeValidFrame is left out: it
// reopens with 64 MiB segments, whose zero tails take seconds to scan 13
// bytes at a time; the tests below cover the same ground.)
func TestDamageTestsThroughSmallReadBuffers(t *testing.T) {
	tests := []struct {
		name string
		run  func(*testing.T)
	}{
		{"RepairTornTailAtEveryOffset", TestRepairTornTailAtEveryOffset},
		{"TornTailIsLoggedWithFileAndOffset", TestTornTailIsLoggedWithFileAndOffset},
		{"TornTailAfterGarbageWithoutValidFrame", TestTornTailAfterGarbageWithoutValidFrame},
		{"CRCValidDamageAtTailIsCorruption", TestCRCValidDamageAtTailIsCorruption},
		{"EndMarkerBeforeValidFrameIsCorruption", TestEndMarkerBeforeValidFrameIsCorruption},
		{"RandomDamageNeverPanicsOrInventsRecords", TestRandomDamageNeverPanicsOrInventsRecords},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wal.SetReadBufferSize(t, 13)
			tc.run(t)
		})
	}
}

// TestReplayIsTheSameThroughAnyReadBuffer replays random records, some of
// them 70 kB, over several segments through buffers from 1 byte up, and
// expects exactly what the default buffer gives.
func TestReplayIsTheSameThroughAnyReadBuffer(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	opts := wal.Options{SegmentSize: 256 << 10, FS: fastFS()}
	l, _, _ := openLog(t, dir, opts, 0)
	var want []wal.Record
	for _, r := range randomRecords(11, 600) {
		want = append(want, appendWait(t, l, r))
	}
	require.NoError(t, l.Close())
	require.Greater(t, len(segmentFiles(t, dir)), 3)

	wantInfo, got, err := replayAll(t, dir, opts, 0)
	require.NoError(t, err)
	require.Equal(t, want, got)
	for _, size := range []int{1, 13, 4096, 100_000} {
		t.Run(fmt.Sprintf("buffer=%d", size), func(t *testing.T) {
			wal.SetReadBufferSize(t, size)
			info, got, err := replayAll(t, dir, opts, 0)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			info.Duration = wantInfo.Duration
			assert.Equal(t, wantInfo, info)
		})
	}
}

// smallSegments keeps the preallocated tails short, which a small read
// buffer would otherwise take long to scan.
var smallSegments = wal.Options{SegmentSize: 128 << 10}

// lastSegmentOf writes recs into a fresh log after a Roll, so that they are
// the whole last segment, and returns the log's records, that segment's name
// and its frame offsets.
func lastSegmentOf(t *testing.T, dir string, recs []wal.Record) ([]wal.Record, string, []int) {
	t.Helper()
	opts := smallSegments
	opts.FS = fastFS()
	l, _, _ := openLog(t, dir, opts, 0)
	var all []wal.Record
	for i := 0; i < 3; i++ {
		all = append(all, appendWait(t, l, smallRecord(i)))
	}
	_, err := l.Roll()
	require.NoError(t, err)
	for _, r := range recs {
		all = append(all, appendWait(t, l, r))
	}
	require.NoError(t, l.Close())
	segs := segmentFiles(t, dir)
	last := segs[len(segs)-1]
	return all, last, frameOffsets(t, filepath.Join(dir, last))
}

// TestValidFrameLongerThanBufferAfterDamage: damage before a valid frame
// that is longer than the read buffer is still damage, not a torn tail, and
// SkipDamaged saves every byte from the damage on.
func TestValidFrameLongerThanBufferAfterDamage(t *testing.T) {
	wal.VerifyNoLeaks(t)
	wal.SetReadBufferSize(t, 4096)
	big := smallRecord(3)
	big.Data = make([]byte, 50_000)
	for i := range big.Data {
		big.Data[i] = byte(i*7 + 1)
	}
	dir := t.TempDir()
	recs, last, offs := lastSegmentOf(t, dir, []wal.Record{smallRecord(10), smallRecord(11), big})
	path := filepath.Join(dir, last)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[offs[1]+wal.HeaderSize+2] ^= 0x10
	require.NoError(t, os.WriteFile(path, data, 0o600))

	opts := smallSegments
	opts.FS = fastFS()
	_, _, err = replayAll(t, dir, opts, 0)
	var ce *wal.CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, last, ce.File)
	assert.EqualValues(t, offs[1], ce.Offset)

	opts.SkipDamaged = true
	info, got, err := replayAll(t, dir, opts, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, info.SkippedSegments)
	assert.Equal(t, recs[:4], got)
	saved, err := os.ReadFile(path + ".damaged")
	require.NoError(t, err)
	assert.Equal(t, data[offs[1]:offs[3]], saved)
}

// TestZeroHoleLongerThanBufferIsDamage: zeros followed by valid frames (pages
// of the last segment that reached the disk out of order) are damage even
// when the hole spans several reads.
func TestZeroHoleLongerThanBufferIsDamage(t *testing.T) {
	wal.VerifyNoLeaks(t)
	wal.SetReadBufferSize(t, 64)
	var recs []wal.Record
	for i := 0; i < 40; i++ {
		recs = append(recs, smallRecord(100+i))
	}
	dir := t.TempDir()
	_, last, offs := lastSegmentOf(t, dir, recs)
	path := filepath.Join(dir, last)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, offs[30]-offs[5], 4*64)
	clear(data[offs[5]:offs[30]])
	require.NoError(t, os.WriteFile(path, data, 0o600))

	opts := smallSegments
	opts.FS = fastFS()
	_, _, err = replayAll(t, dir, opts, 0)
	var ce *wal.CorruptError
	require.ErrorAs(t, err, &ce)
	assert.EqualValues(t, offs[5], ce.Offset)
	assert.ErrorIs(t, err, wal.ErrEndMarker)
}

// TestOpenDoesNotReadSegmentsIntoMemory pins the bug where replay read each
// segment whole: opening a log of a few MB in a fresh 64 MiB segment
// allocated 64 MiB. Open now allocates about one read buffer, and nothing
// per record.
func TestOpenDoesNotReadSegmentsIntoMemory(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	const n = 20_000
	l, _, _ := openLog(t, dir, wal.Options{Sync: wal.SyncNo, FS: fastFS()}, 0)
	r := wal.Record{Op: wal.OpPut, Data: make([]byte, 200)}
	for i := 0; i < n; i++ {
		r.Key.Digest[0], r.Key.Digest[1] = byte(i), byte(i>>8)
		appendWait(t, l, r)
	}
	require.NoError(t, l.Close())
	require.Len(t, segmentFiles(t, dir), 1)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	count := 0
	l, info, err := wal.Open(dir, wal.Options{FS: fastFS(), Logger: quiet}, 0, func(*wal.Record) error {
		count++
		return nil
	})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.Equal(t, n, count)
	require.Greater(t, info.Bytes, int64(n*200))
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, allocated, uint64(4<<20), "bytes allocated by Open")
	assert.Less(t, after.Mallocs-before.Mallocs, uint64(n/10), "allocations by Open")
}
