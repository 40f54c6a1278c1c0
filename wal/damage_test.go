package wal_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal"
)

// damageSource is a closed log of several segments; see buildTornSource.
func damageSource(t *testing.T) tornSource { return buildTornSource(t, 300, 6) }

// without returns recs minus those with LSNs in [from, to).
func without(recs []wal.Record, from, to uint64) []wal.Record {
	var out []wal.Record
	for _, r := range recs {
		if r.LSN < from || r.LSN >= to {
			out = append(out, r)
		}
	}
	return out
}

// flipBitsAndCheck flips, one at a time, every bit of data[lo:hi] in the
// named segment of a copy of src, and runs check on each result.
func flipBitsAndCheck(t *testing.T, src tornSource, segment string, lo, hi int, check func(work string, bit int)) {
	t.Helper()
	orig, err := os.ReadFile(filepath.Join(src.dir, segment))
	require.NoError(t, err)
	work := filepath.Join(t.TempDir(), "work")
	for bit := lo * 8; bit < hi*8; bit++ {
		copyDir(t, src.dir, work)
		data := append([]byte(nil), orig...)
		data[bit/8] ^= 1 << (bit % 8)
		require.NoError(t, os.WriteFile(filepath.Join(work, segment), data, 0o600))
		check(work, bit)
	}
}

func TestBitFlipInEarlierSegment(t *testing.T) {
	wal.VerifyNoLeaks(t)
	src := damageSource(t)
	segs := segmentFiles(t, src.dir)
	seg := segs[1]
	first := lsnOf(t, seg)
	next := lsnOf(t, segs[2])
	offs := frameOffsets(t, filepath.Join(src.dir, seg))
	require.Greater(t, len(offs), 3)
	k := len(offs) / 2
	lo, hi := offs[k], offs[k+1]

	flipBitsAndCheck(t, src, seg, lo, hi, func(work string, bit int) {
		_, _, err := replayAll(t, work, wal.Options{FS: fastFS()}, 0)
		var ce *wal.CorruptError
		require.ErrorAs(t, err, &ce, "bit %d", bit)
		assert.ErrorIs(t, err, wal.ErrCorrupt)
		assert.Equal(t, seg, ce.File, "bit %d", bit)
		assert.EqualValues(t, lo, ce.Offset, "bit %d", bit)

		info, got, err := replayAll(t, work, wal.Options{FS: fastFS(), SkipDamaged: true}, 0)
		require.NoError(t, err, "bit %d", bit)
		assert.Equal(t, 1, info.SkippedSegments, "bit %d", bit)
		assert.Equal(t, without(src.recs, first+uint64(k), next), got, "bit %d", bit)
	})

	// The segment header: the whole segment is damaged.
	flipBitsAndCheck(t, src, seg, 0, wal.SegmentHeaderSize-4, func(work string, bit int) {
		_, _, err := replayAll(t, work, wal.Options{FS: fastFS()}, 0)
		var ce *wal.CorruptError
		require.ErrorAs(t, err, &ce, "header bit %d", bit)
		assert.Equal(t, seg, ce.File)
		assert.Zero(t, ce.Offset)
		info, got, err := replayAll(t, work, wal.Options{FS: fastFS(), SkipDamaged: true}, 0)
		require.NoError(t, err, "header bit %d", bit)
		assert.Equal(t, 1, info.SkippedSegments)
		assert.Equal(t, without(src.recs, first, next), got, "header bit %d", bit)
	})
}

func lsnOf(t *testing.T, segment string) uint64 {
	t.Helper()
	for lsn := uint64(1); lsn < 1<<20; lsn++ {
		if wal.SegmentName(lsn) == segment {
			return lsn
		}
	}
	t.Fatalf("not a segment name: %s", segment)
	return 0
}

// TestBitFlipInLastSegmentBeforeValidFrame: damage in the last segment with
// a valid frame after it is not a torn write.
func TestBitFlipInLastSegmentBeforeValidFrame(t *testing.T) {
	wal.VerifyNoLeaks(t)
	src := damageSource(t)
	k := 2
	lo, hi := src.offs[k], src.offs[k+1]
	first := uint64(src.lastFrom + 1)

	flipBitsAndCheck(t, src, src.last, lo, hi, func(work string, bit int) {
		_, _, err := replayAll(t, work, wal.Options{FS: fastFS()}, 0)
		var ce *wal.CorruptError
		require.ErrorAs(t, err, &ce, "bit %d", bit)
		assert.Equal(t, src.last, ce.File, "bit %d", bit)
		assert.EqualValues(t, lo, ce.Offset, "bit %d", bit)
		assert.Contains(t, err.Error(), src.last)
	})

	// With SkipDamaged the rest is set aside and the log goes on, also for
	// a later Open without SkipDamaged.
	flipBitsAndCheck(t, src, src.last, lo+wal.HeaderSize, lo+wal.HeaderSize+1, func(work string, bit int) {
		want := src.recs[:src.lastFrom+k]
		l, info, got := openLog(t, work, wal.Options{FS: fastFS(), SkipDamaged: true}, 0)
		assert.Equal(t, 1, info.SkippedSegments)
		assert.Equal(t, want, got)
		more := appendWait(t, l, smallRecord(5))
		assert.Equal(t, first+uint64(k), more.LSN)
		require.NoError(t, l.Close())
		saved, err := os.ReadFile(filepath.Join(work, src.last+".damaged"))
		require.NoError(t, err)
		assert.Len(t, saved, src.offs[len(src.offs)-1]-lo, "the damaged bytes are kept aside")

		_, got, err = replayAll(t, work, wal.Options{FS: fastFS()}, 0)
		require.NoError(t, err)
		assert.Equal(t, append(want[:len(want):len(want)], more), got)
	})
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// writeAtEnd appends raw bytes after the last frame of the last segment.
func writeAtEnd(t *testing.T, src tornSource, b []byte) int {
	t.Helper()
	path := filepath.Join(src.dir, src.last)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	end := src.offs[len(src.offs)-1]
	_, err = f.WriteAt(b, int64(end))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return end
}

func TestCRCValidDamageAtTailIsCorruption(t *testing.T) {
	next := func(src tornSource) uint64 { return uint64(len(src.recs) + 1) }
	del := func(lsn uint64) []byte {
		return wal.AppendRecord(nil, &wal.Record{Op: wal.OpDelete, LSN: lsn})
	}
	cases := []struct {
		name    string
		payload func(src tornSource) []byte
		reason  string
	}{
		{"undecodable payload", func(tornSource) []byte { return []byte{0xc1, 0xc1} }, "undecodable"},
		{"non-canonical payload", func(src tornSource) []byte {
			p := del(next(src))
			return append(p[:len(p)-1:len(p)-1], 0xcc, p[len(p)-1]) // LSN as uint8
		}, "undecodable"},
		{"LSN gap", func(src tornSource) []byte { return del(next(src) + 1) }, "LSN"},
		{"LSN repeated", func(src tornSource) []byte { return del(next(src) - 1) }, "LSN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wal.VerifyNoLeaks(t)
			src := damageSource(t)
			off := writeAtEnd(t, src, wal.AppendFrame(nil, tc.payload(src)))
			_, _, err := replayAll(t, src.dir, wal.Options{FS: fastFS()}, 0)
			var ce *wal.CorruptError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, src.last, ce.File)
			assert.EqualValues(t, off, ce.Offset)
			assert.Contains(t, ce.Reason, tc.reason)

			info, got, err := replayAll(t, src.dir, wal.Options{FS: fastFS(), SkipDamaged: true}, 0)
			require.NoError(t, err)
			assert.Equal(t, 1, info.SkippedSegments)
			assert.Equal(t, src.recs, got)
		})
	}
}

func TestEndMarkerBeforeValidFrameIsCorruption(t *testing.T) {
	wal.VerifyNoLeaks(t)
	src := damageSource(t)
	path := filepath.Join(src.dir, src.last)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	binary.LittleEndian.PutUint32(data[src.offs[1]:], 0)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	_, _, err = replayAll(t, src.dir, wal.Options{FS: fastFS()}, 0)
	var ce *wal.CorruptError
	require.ErrorAs(t, err, &ce)
	assert.EqualValues(t, src.offs[1], ce.Offset)
	assert.ErrorIs(t, err, wal.ErrEndMarker)
}

// TestUnsupportedVersionIsNeverSkipped covers older formats (versions 1 and
// 2, whose Puts were shorter and must not be misread as version 3) and a
// newer one: all fail Open naming the version, even with SkipDamaged.
func TestUnsupportedVersionIsNeverSkipped(t *testing.T) {
	wal.VerifyNoLeaks(t)
	src := damageSource(t)
	work := filepath.Join(t.TempDir(), "work")
	for _, version := range []uint32{1, 2, 4} {
		copyDir(t, src.dir, work)
		path := filepath.Join(work, wal.SegmentName(1))
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.EqualValues(t, wal.FormatVersion, binary.LittleEndian.Uint32(data[8:]))
		binary.LittleEndian.PutUint32(data[8:], version)
		binary.LittleEndian.PutUint32(data[24:], crc32c(data[:24]))
		require.NoError(t, os.WriteFile(path, data, 0o600))
		for _, skip := range []bool{false, true} {
			_, _, err = replayAll(t, work, wal.Options{FS: fastFS(), SkipDamaged: skip}, 0)
			require.Error(t, err, "version %d", version)
			assert.NotErrorIs(t, err, wal.ErrCorrupt)
			assert.Contains(t, err.Error(), fmt.Sprintf("version %d (this build reads version %d only)", version, wal.FormatVersion))
			assert.Contains(t, err.Error(), wal.SegmentName(1))
		}
	}
}

// TestRandomDamageNeverPanicsOrInventsRecords mutates random bytes of a log
// and checks that Open either fails with ErrCorrupt or returns records that
// were really written, at their own LSNs.
func TestRandomDamageNeverPanicsOrInventsRecords(t *testing.T) {
	wal.VerifyNoLeaks(t)
	src := damageSource(t)
	segs := segmentFiles(t, src.dir)
	byLSN := map[uint64]wal.Record{}
	for _, r := range src.recs {
		byLSN[r.LSN] = r
	}
	rng := rand.New(rand.NewPCG(7, 8))
	work := filepath.Join(t.TempDir(), "work")
	for i := 0; i < 300; i++ {
		copyDir(t, src.dir, work)
		seg := segs[rng.IntN(len(segs))]
		path := filepath.Join(work, seg)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		for n := 1 + rng.IntN(4); n > 0; n-- {
			data[rng.IntN(len(data))] = byte(rng.Uint32())
		}
		if rng.IntN(4) == 0 {
			data = data[:rng.IntN(len(data))]
		}
		require.NoError(t, os.WriteFile(path, data, 0o600))
		skip := rng.IntN(2) == 0
		require.NotPanics(t, func() {
			_, got, err := replayAll(t, work, wal.Options{FS: fastFS(), SkipDamaged: skip}, 0)
			if err != nil {
				assert.ErrorIs(t, err, wal.ErrCorrupt, "iteration %d", i)
				return
			}
			for _, r := range got {
				assert.Equal(t, byLSN[r.LSN], r, "iteration %d", i)
			}
		})
	}
}
