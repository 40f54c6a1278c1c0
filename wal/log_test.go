package wal_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal"
)

var policies = []wal.SyncPolicy{wal.SyncAlways, wal.SyncEverySecond, wal.SyncNo}

func TestRoundTripThroughLogEveryPolicy(t *testing.T) {
	for _, policy := range policies {
		t.Run(policy.String(), func(t *testing.T) {
			wal.VerifyNoLeaks(t)
			dir := t.TempDir()
			opts := wal.Options{Sync: policy, SegmentSize: 64 << 10}
			l, info, recs := openLog(t, dir, opts, 0)
			require.Empty(t, recs)
			require.Zero(t, info.LastLSN)

			var want []wal.Record
			for _, r := range randomRecords(1, 300) {
				want = append(want, appendWait(t, l, r))
			}
			require.NoError(t, l.Close())

			for pass := 0; pass < 2; pass++ {
				info, got, err := replayAll(t, dir, opts, 0)
				require.NoError(t, err, "pass %d", pass)
				assert.Equal(t, want, got, "pass %d: replay gives the appended records", pass)
				assert.EqualValues(t, len(want), info.Records)
				assert.EqualValues(t, len(want), info.LastLSN)
				assert.Zero(t, info.TornBytes)
				assert.Greater(t, info.Segments, 1, "64 KiB segments: the log rotated")
			}
		})
	}
}

func TestReplayFromSkipsOlderRecordsAndSegments(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	opts := wal.Options{SegmentSize: 300, FS: fastFS()}
	l, _, _ := openLog(t, dir, opts, 0)
	var want []wal.Record
	for i := 0; i < 60; i++ {
		want = append(want, appendWait(t, l, smallRecord(i)))
	}
	require.NoError(t, l.Close())
	segs := segmentFiles(t, dir)
	require.Greater(t, len(segs), 3)

	for _, from := range []uint64{0, 1, 17, 59, 60, 100} {
		info, got, err := replayAll(t, dir, opts, from)
		require.NoError(t, err, "from %d", from)
		start := min(int(from), len(want))
		assert.Equal(t, want[start:], nilIfEmpty(got), "from %d", from)
		assert.EqualValues(t, 60, info.LastLSN, "from %d", from)
		if from >= 59 {
			assert.Equal(t, 1, info.Segments, "from %d: only the last segment is read", from)
		}
	}
}

func nilIfEmpty(r []wal.Record) []wal.Record {
	if len(r) == 0 {
		return []wal.Record{}
	}
	return r
}

// TestOpenFromBeyondLogContinuesAfterSnapshot pins the rule that appends
// continue after max(from, last LSN): a snapshot newer than the log's end
// (the log lost its unsynced tail in a crash) must not see its LSNs reused.
func TestOpenFromBeyondLogContinuesAfterSnapshot(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	opts := wal.Options{FS: fastFS()}
	l, _, _ := openLog(t, dir, opts, 0)
	for i := 0; i < 5; i++ {
		appendWait(t, l, smallRecord(i))
	}
	require.NoError(t, l.Close())

	l, info, recs := openLog(t, dir, opts, 10)
	assert.Empty(t, recs)
	assert.EqualValues(t, 5, info.LastLSN)
	assert.EqualValues(t, 10, l.LastLSN())
	r := appendWait(t, l, smallRecord(7))
	assert.EqualValues(t, 11, r.LSN)
	require.NoError(t, l.Close())
	assert.Equal(t, []string{wal.SegmentName(1), wal.SegmentName(11)}, segmentFiles(t, dir))
	offs := frameOffsets(t, filepath.Join(dir, wal.SegmentName(1)))
	fi, err := os.Stat(filepath.Join(dir, wal.SegmentName(1)))
	require.NoError(t, err)
	assert.EqualValues(t, offs[len(offs)-1], fi.Size(), "the old last segment is trimmed to its data")

	_, got, err := replayAll(t, dir, opts, 10)
	require.NoError(t, err)
	assert.Equal(t, []wal.Record{r}, got)

	// From an older point the log really is missing records 6..10.
	_, _, err = replayAll(t, dir, opts, 0)
	var ce *wal.CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, wal.SegmentName(11), ce.File)
}

func TestEmptyDirectoryWithFromStartsAfterIt(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := filepath.Join(t.TempDir(), "a", "wal")
	l, info, _ := openLog(t, dir, wal.Options{}, 41)
	assert.Zero(t, info.LastLSN)
	r := appendWait(t, l, smallRecord(1))
	assert.EqualValues(t, 42, r.LSN)
	require.NoError(t, l.Close())
	assert.Equal(t, []string{wal.SegmentName(42)}, segmentFiles(t, dir))
}

func TestFileModes(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := filepath.Join(t.TempDir(), "nested", "wal")
	l, _, _ := openLog(t, dir, wal.Options{SegmentSize: 200}, 0)
	for i := 0; i < 20; i++ {
		appendWait(t, l, smallRecord(i))
	}
	require.NoError(t, l.Close())
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	segs := segmentFiles(t, dir)
	require.Greater(t, len(segs), 1)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, len(segs), "Close leaves segments only, no spare")
	for _, name := range segs {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), name)
	}
}

func TestRotationBySizeNamesSegmentsByFirstLSN(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	const size = 256
	l, _, _ := openLog(t, dir, wal.Options{SegmentSize: size, FS: fastFS()}, 0)
	for i := 0; i < 100; i++ {
		appendWait(t, l, smallRecord(i))
	}
	st := l.Stats()
	require.NoError(t, l.Close())

	segs := segmentFiles(t, dir)
	assert.Equal(t, len(segs), st.Segments)
	var total int64
	next := uint64(1)
	for i, name := range segs {
		assert.Equal(t, wal.SegmentName(next), name, "segment %d is named by its first LSN", i)
		offs := frameOffsets(t, filepath.Join(dir, name))
		next += uint64(len(offs) - 1)
		end := offs[len(offs)-1]
		total += int64(end)
		if i < len(segs)-1 {
			assert.LessOrEqual(t, end, size, "segment %d stays within SegmentSize", i)
			fi, err := os.Stat(filepath.Join(dir, name))
			require.NoError(t, err)
			assert.EqualValues(t, end, fi.Size(), "a finished segment is trimmed to its data")
		}
	}
	assert.EqualValues(t, 101, next)
	assert.Equal(t, total, st.DiskBytes)
}

func TestRecordLargerThanSegmentGetsItsOwn(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	opts := wal.Options{SegmentSize: 128, FS: fastFS()}
	l, _, _ := openLog(t, dir, opts, 0)
	big := wal.Record{Op: wal.OpPut, Data: make([]byte, 1000)}
	want := []wal.Record{appendWait(t, l, smallRecord(1)), appendWait(t, l, big), appendWait(t, l, smallRecord(2))}
	require.NoError(t, l.Close())
	assert.Equal(t, []string{wal.SegmentName(1), wal.SegmentName(2), wal.SegmentName(3)}, segmentFiles(t, dir))
	_, got, err := replayAll(t, dir, opts, 0)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestRollAndRemoveThrough(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	opts := wal.Options{FS: fastFS()}
	l, _, _ := openLog(t, dir, opts, 0)

	last, err := l.Roll()
	require.NoError(t, err)
	assert.Zero(t, last, "rolling a fresh log changes nothing")
	for i := 0; i < 5; i++ {
		appendWait(t, l, smallRecord(i))
	}
	last, err = l.Roll()
	require.NoError(t, err)
	assert.EqualValues(t, 5, last)
	last, err = l.Roll()
	require.NoError(t, err)
	assert.EqualValues(t, 5, last, "a second Roll without appends is a no-op")

	var want []wal.Record
	for i := 5; i < 8; i++ {
		want = append(want, appendWait(t, l, smallRecord(i)))
	}
	require.NoError(t, l.Sync())
	assert.Equal(t, []string{wal.SegmentName(1), wal.SegmentName(6)}, segmentFiles(t, dir))

	require.NoError(t, l.RemoveThrough(4))
	assert.Len(t, segmentFiles(t, dir), 2, "segment 1 still holds LSN 5")
	require.NoError(t, l.RemoveThrough(5))
	assert.Equal(t, []string{wal.SegmentName(6)}, segmentFiles(t, dir))
	require.NoError(t, l.RemoveThrough(1000))
	assert.Equal(t, []string{wal.SegmentName(6)}, segmentFiles(t, dir), "never the current segment")
	assert.Equal(t, 1, l.Stats().Segments)

	// A Roll between appends that share one batch still splits them.
	last, err = l.Roll()
	require.NoError(t, err)
	var p wal.Pending
	r := smallRecord(9)
	require.NoError(t, p.Encode(&r))
	lsn, err := l.Append(&p)
	require.NoError(t, err)
	_, err = l.Roll()
	require.NoError(t, err)
	lsn2, err := l.Append(&p)
	require.NoError(t, err)
	require.NoError(t, l.Sync())
	assert.Equal(t, []string{wal.SegmentName(6), wal.SegmentName(last + 1), wal.SegmentName(lsn2)}, segmentFiles(t, dir))
	assert.Equal(t, last+1, lsn)
	require.NoError(t, l.Close())

	r.LSN = lsn
	r2 := r
	r2.LSN = lsn2
	_, got, err := replayAll(t, dir, opts, 5)
	require.NoError(t, err)
	assert.Equal(t, append(want, r, r2), got)
}

func TestGapBetweenSegmentsIsCorruption(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	opts := wal.Options{SegmentSize: 200, FS: fastFS()}
	l, _, _ := openLog(t, dir, opts, 0)
	for i := 0; i < 40; i++ {
		appendWait(t, l, smallRecord(i))
	}
	require.NoError(t, l.Close())
	segs := segmentFiles(t, dir)
	require.Greater(t, len(segs), 3)
	require.NoError(t, os.Remove(filepath.Join(dir, segs[1])))

	for _, skip := range []bool{false, true} {
		_, _, err := replayAll(t, dir, wal.Options{FS: fastFS(), SkipDamaged: skip}, 0)
		var ce *wal.CorruptError
		require.ErrorAs(t, err, &ce, "SkipDamaged %v: a missing segment is never skipped", skip)
		assert.ErrorIs(t, err, wal.ErrCorrupt)
		assert.Equal(t, segs[2], ce.File)
		assert.Contains(t, err.Error(), segs[2])
	}

	// A segment renamed to claim other LSNs: its header disagrees.
	dir2 := t.TempDir()
	copyDir(t, dir, dir2)
	require.NoError(t, os.Rename(filepath.Join(dir2, segs[2]), filepath.Join(dir2, segs[1])))
	_, _, err := replayAll(t, dir2, opts, 0)
	var ce *wal.CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, segs[1], ce.File)
	assert.Zero(t, ce.Offset)
}

func TestMissingStartOfLogIsCorruption(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	opts := wal.Options{SegmentSize: 200, FS: fastFS()}
	l, _, _ := openLog(t, dir, opts, 0)
	for i := 0; i < 20; i++ {
		appendWait(t, l, smallRecord(i))
	}
	require.NoError(t, l.Close())
	segs := segmentFiles(t, dir)
	require.NoError(t, os.Remove(filepath.Join(dir, segs[0])))
	_, _, err := replayAll(t, dir, opts, 0)
	assert.ErrorIs(t, err, wal.ErrCorrupt, "records 1.. are needed but gone")
}

func TestClosedLogRefusesCalls(t *testing.T) {
	wal.VerifyNoLeaks(t)
	l, _, _ := openLog(t, t.TempDir(), wal.Options{}, 0)
	r := appendWait(t, l, smallRecord(1))
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "Close is idempotent")

	var p wal.Pending
	require.NoError(t, p.Encode(&r))
	_, err := l.Append(&p)
	assert.ErrorIs(t, err, wal.ErrClosed)
	assert.ErrorIs(t, l.Sync(), wal.ErrClosed)
	_, err = l.Roll()
	assert.ErrorIs(t, err, wal.ErrClosed)
	assert.ErrorIs(t, l.RemoveThrough(1), wal.ErrClosed)
	assert.NoError(t, l.Wait(r.LSN), "a record that made it still reports so")
	assert.NoError(t, l.Err())
}

func TestStatsCounters(t *testing.T) {
	wal.VerifyNoLeaks(t)
	l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: wal.SyncAlways, FS: fastFS()}, 0)
	var bytes uint64
	for i := 0; i < 10; i++ {
		r := smallRecord(i)
		var p wal.Pending
		require.NoError(t, p.Encode(&r))
		lsn, err := l.Append(&p)
		require.NoError(t, err)
		require.NoError(t, l.Wait(lsn))
		bytes += uint64(wal.HeaderSize + p.Len() + 1) // LSNs below 128 take one byte
	}
	st := l.Stats()
	assert.EqualValues(t, 10, st.LastLSN)
	assert.EqualValues(t, 10, st.WrittenLSN)
	assert.EqualValues(t, 10, st.DurableLSN)
	assert.EqualValues(t, 10, st.Records)
	assert.Equal(t, bytes, st.BytesAppended)
	assert.EqualValues(t, 10, st.Writes, "one writer waiting each time: one write per record")
	assert.EqualValues(t, 10, st.Fsyncs)
	assert.InDelta(t, 1.0, st.RecordsPerFsync(), 1e-9)
	assert.Equal(t, 1, st.Segments)
	assert.EqualValues(t, int64(wal.SegmentHeaderSize)+int64(bytes), st.DiskBytes)
	assert.False(t, st.Failed)
	require.NoError(t, l.Close())
}

func TestApplyErrorStopsOpen(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	l, _, _ := openLog(t, dir, wal.Options{}, 0)
	appendWait(t, l, smallRecord(1))
	require.NoError(t, l.Close())
	boom := errors.New("boom")
	_, _, err := wal.Open(dir, wal.Options{Logger: quiet}, 0, func(*wal.Record) error { return boom })
	assert.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, wal.ErrCorrupt)
}
