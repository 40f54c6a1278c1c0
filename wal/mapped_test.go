package wal_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal"
	"github.com/sesscache/sesscache/wal/waltest"
)

// TestMappedAndWrittenSegmentsAreTheSameBytes: mapped segments are the
// write mode's format byte for byte, across rotations, rolls and a frame
// larger than a segment.
func TestMappedAndWrittenSegmentsAreTheSameBytes(t *testing.T) {
	wal.VerifyNoLeaks(t)
	recs := randomRecords(7, 400)
	big := smallRecord(1)
	big.Data = bytes.Repeat([]byte{0xbb}, 40<<10)
	dirs := map[bool]string{}
	for _, noMap := range []bool{false, true} {
		dir := t.TempDir()
		dirs[noMap] = dir
		l, _, _ := openLog(t, dir, wal.Options{Sync: wal.SyncAlways, SegmentSize: 16 << 10, Map: mapMode(noMap)}, 0)
		assert.Equal(t, !noMap, l.AcksAtAppend() || l.Mapped(), "mapped where it can be")
		for i, r := range recs {
			appendWait(t, l, r)
			if i == 100 || i == 101 {
				_, err := l.Roll()
				require.NoError(t, err)
			}
			if i == 200 {
				appendWait(t, l, big)
			}
		}
		require.NoError(t, l.Close())
	}
	a, b := segmentFiles(t, dirs[false]), segmentFiles(t, dirs[true])
	require.Equal(t, b, a)
	for _, name := range a {
		ma, err := os.ReadFile(filepath.Join(dirs[false], name))
		require.NoError(t, err)
		mb, err := os.ReadFile(filepath.Join(dirs[true], name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(ma, mb), "%s differs between mapped and written", name)
	}
	_, got, err := replayAll(t, dirs[false], wal.Options{}, 0)
	require.NoError(t, err)
	assert.Len(t, got, len(recs)+1)
}

// TestMappedRecordsSurviveTheProcess: under SyncEverySecond a mapped
// record is in the page cache when Append returns, so another reader of
// the directory, as after a kill -9, finds every acknowledged record
// though the log was never closed nor fsynced.
func TestMappedRecordsSurviveTheProcess(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	l, _, _ := openLog(t, dir, wal.Options{Sync: wal.SyncEverySecond, SegmentSize: 8 << 10}, 0)
	require.True(t, l.AcksAtAppend())
	recs := randomRecords(9, 300)
	var p wal.Pending
	for _, r := range recs {
		require.NoError(t, p.Encode(&r))
		lsn, err := l.Append(&p)
		require.NoError(t, err)
		require.NoError(t, l.Wait(lsn), "acknowledged at once")
	}
	assert.Zero(t, l.Stats().Writes, "no write call")
	_, got, err := replayAll(t, dir, wal.Options{}, 0)
	require.NoError(t, err)
	require.Len(t, got, len(recs))
	for i := range recs {
		recs[i].LSN = uint64(i + 1)
		assert.Equal(t, recs[i], got[i])
	}
	require.NoError(t, l.Close())
}

// TestMappedPowerCut: with a simulated mapping, a power cut keeps exactly
// what an fsync covered: every record acknowledged under SyncAlways, and
// under SyncEverySecond at least what the last Sync covered (the rest may
// go, as the policy allows), always a prefix of the log.
func TestMappedPowerCut(t *testing.T) {
	wal.VerifyNoLeaks(t)
	for _, policy := range []wal.SyncPolicy{wal.SyncAlways, wal.SyncEverySecond} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			fsys := &waltest.FS{Mappable: true, NeedDirSync: true}
			l, _, _ := openLog(t, dir, wal.Options{Sync: policy, SegmentSize: 8 << 10, SyncInterval: time.Hour, FS: fsys, Map: wal.MapAlways}, 0)
			require.True(t, l.Mapped())
			recs := randomRecords(11, 200)
			var p wal.Pending
			for i, r := range recs {
				require.NoError(t, p.Encode(&r))
				lsn, err := l.Append(&p)
				require.NoError(t, err)
				require.NoError(t, l.Wait(lsn))
				if i == 120 {
					require.NoError(t, l.Sync())
				}
			}
			require.NoError(t, fsys.PowerCut())
			_ = l.Close() // the power is off
			_, got, err := replayAll(t, dir, wal.Options{}, 0)
			require.NoError(t, err)
			if policy == wal.SyncAlways {
				require.Len(t, got, len(recs), "every acknowledged record")
			} else {
				require.GreaterOrEqual(t, len(got), 121, "what the Sync covered")
				require.Less(t, len(got), len(recs), "what no fsync covered is gone")
			}
			for i := range got {
				recs[i].LSN = uint64(i + 1)
				require.Equal(t, recs[i], got[i], "a prefix of the log")
			}
		})
	}
}

// mapMode is MapNever for noMap and MapAlways otherwise.
func mapMode(noMap bool) wal.MapMode {
	if noMap {
		return wal.MapNever
	}
	return wal.MapAlways
}

// TestMapAuto: by default the log maps its segments under SyncEverySecond
// and SyncNo, and writes them under SyncAlways.
func TestMapAuto(t *testing.T) {
	wal.VerifyNoLeaks(t)
	for _, policy := range []wal.SyncPolicy{wal.SyncAlways, wal.SyncEverySecond, wal.SyncNo} {
		fsys := &waltest.FS{Mappable: true}
		l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: policy, FS: fsys}, 0)
		assert.Equal(t, policy != wal.SyncAlways, l.Mapped(), "%s", policy)
		require.NoError(t, l.Close())
	}
}
