package wal_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal"
)

// tornSource is a small closed log: three or more segments, the last of
// which holds exactly lastRecords records after a Roll.
type tornSource struct {
	dir      string
	recs     []wal.Record // every record, in LSN order
	last     string       // the last segment's file name
	lastFrom int          // index in recs of the last segment's first record
	offs     []int        // frame offsets in the last segment, then its data end
}

func buildTornSource(t *testing.T, segmentSize int64, lastRecords int) tornSource {
	t.Helper()
	return buildTornSourceOpts(t, wal.Options{SegmentSize: segmentSize, FS: fastFS()}, lastRecords)
}

func buildTornSourceOpts(t *testing.T, opts wal.Options, lastRecords int) tornSource {
	t.Helper()
	src := tornSource{dir: t.TempDir()}
	l, _, _ := openLog(t, src.dir, opts, 0)
	for i := 0; len(segmentFiles(t, src.dir)) < 3; i++ {
		src.recs = append(src.recs, appendWait(t, l, smallRecord(i)))
	}
	_, err := l.Roll()
	require.NoError(t, err)
	src.lastFrom = len(src.recs)
	for i := 0; i < lastRecords; i++ {
		src.recs = append(src.recs, appendWait(t, l, smallRecord(1000+i)))
	}
	require.NoError(t, l.Close())
	segs := segmentFiles(t, src.dir)
	src.last = segs[len(segs)-1]
	require.Equal(t, wal.SegmentName(uint64(src.lastFrom+1)), src.last)
	src.offs = frameOffsets(t, filepath.Join(src.dir, src.last))
	require.Len(t, src.offs, lastRecords+1)
	return src
}

// expectAt returns the records that survive a cut of the last segment at
// cut, and the torn bytes recovery should report. The header's last four
// bytes (the synced-through offset) are outside its checksum, so zeroing
// from there on leaves it whole: it then says that nothing was synced.
func (s tornSource) expectAt(cut int, data, orig []byte) ([]wal.Record, int64) {
	hs := wal.SegmentHeaderSize
	if len(data) < hs || !bytes.Equal(data[:hs-4], orig[:hs-4]) {
		return s.recs[:s.lastFrom], int64(nonzeroLen(data[:min(cut, len(data))]))
	}
	cut = max(cut, hs)
	kept := 0
	for kept+1 < len(s.offs) && s.offs[kept+1] <= cut {
		kept++
	}
	return s.recs[:s.lastFrom+kept], int64(nonzeroLen(data[s.offs[kept]:cut]))
}

func nonzeroLen(b []byte) int {
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	return n
}

// TestRepairTornTailAtEveryOffset cuts the last segment at every byte of its
// written region, by truncating the file and, separately, by zeroing the rest
// of it (a preallocated file whose last write was lost), and checks that
// recovery keeps exactly the whole records before the cut, reports the torn
// bytes, and leaves a log that takes appends and recovers them.
func TestRepairTornTailAtEveryOffset(t *testing.T) {
	wal.VerifyNoLeaks(t)
	src := buildTornSource(t, 400, 8)
	srcPath := filepath.Join(src.dir, src.last)
	orig, err := os.ReadFile(srcPath)
	require.NoError(t, err)
	end := src.offs[len(src.offs)-1]
	require.Greater(t, len(orig), end, "the last segment is preallocated past its data")

	work := filepath.Join(t.TempDir(), "work")
	opts := wal.Options{SegmentSize: 400, FS: fastFS()}
	for _, mode := range []string{"truncate", "zero"} {
		for cut := 0; cut <= end; cut++ {
			name := fmt.Sprintf("%s at %d", mode, cut)
			copyDir(t, src.dir, work)
			data := append([]byte(nil), orig...)
			if mode == "truncate" {
				data = data[:cut]
			} else {
				clear(data[cut:])
			}
			require.NoError(t, os.WriteFile(filepath.Join(work, src.last), data, 0o600))
			want, torn := src.expectAt(cut, data, orig)

			var c collector
			l, info, err := wal.Open(work, wal.Options{SegmentSize: 400, FS: fastFS(), Logger: quiet}, 0, c.apply)
			require.NoError(t, err, name)
			if !assert.Equal(t, want, c.recs, name) {
				l.Close()
				return
			}
			assert.Equal(t, torn, info.TornBytes, name)
			assert.Equal(t, torn, l.Stats().TornBytes, name)
			more := appendWait(t, l, smallRecord(7))
			require.NoError(t, l.Close(), name)
			require.EqualValues(t, len(want)+1, more.LSN, name)

			info, got, err := replayAll(t, work, opts, 0)
			require.NoError(t, err, name)
			assert.Equal(t, append(want[:len(want):len(want)], more), got, name)
			assert.Zero(t, info.TornBytes, "%s: the repair left a clean end", name)
		}
	}
}

func TestTornTailIsLoggedWithFileAndOffset(t *testing.T) {
	wal.VerifyNoLeaks(t)
	src := buildTornSource(t, 400, 4)
	path := filepath.Join(src.dir, src.last)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	cut := src.offs[3] + 5
	require.NoError(t, os.WriteFile(path, data[:cut], 0o600))

	var logs capture
	var c collector
	l, info, err := wal.Open(src.dir, wal.Options{FS: fastFS(), Logger: logs.logger()}, 0, c.apply)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	assert.EqualValues(t, 5, info.TornBytes)
	assert.Contains(t, logs.String(), "file="+src.last)
	assert.Contains(t, logs.String(), fmt.Sprintf("offset=%d", src.offs[3]))
	assert.Len(t, c.recs, len(src.recs)-1)

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, fi.Size(), int64(cut), "the segment is preallocated again for appends")
}

// TestTornTailAfterGarbageWithoutValidFrame: garbage after the last frame
// that holds no CRC-valid frame is still a torn write.
func TestTornTailAfterGarbageWithoutValidFrame(t *testing.T) {
	wal.VerifyNoLeaks(t)
	src := buildTornSource(t, 400, 3)
	path := filepath.Join(src.dir, src.last)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	end := src.offs[3]
	garbage := []byte{0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 7, 0, 0, 0, 1, 2, 3}
	copy(data[end+20:], garbage)
	require.NoError(t, os.WriteFile(path, data, 0o600))

	info, got, err := replayAll(t, src.dir, wal.Options{FS: fastFS()}, 0)
	require.NoError(t, err)
	assert.Equal(t, src.recs, got)
	assert.EqualValues(t, 20+len(garbage), info.TornBytes)
}

// TestZeroFilledTailIsTheEnd: under SyncAlways the space after a segment's
// data is written with zeros (zeroAhead), not only reserved. Replay must
// read it as the end of the data, as it reads preallocated space, and
// repair a torn last frame in it the same way.
func TestZeroFilledTailIsTheEnd(t *testing.T) {
	wal.VerifyNoLeaks(t)
	opts := wal.Options{Sync: wal.SyncAlways, SegmentSize: 400, FS: fastFS()}
	src := buildTornSourceOpts(t, opts, 4)
	path := filepath.Join(src.dir, src.last)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Len(t, data, 400, "the last segment keeps its preallocated space")

	info, got, err := replayAll(t, src.dir, opts, 0)
	require.NoError(t, err)
	assert.Equal(t, src.recs, got)
	assert.Zero(t, info.TornBytes)

	// The second half of the last frame never reached the disk.
	mid := (src.offs[3] + src.offs[4]) / 2
	clear(data[mid:])
	require.NoError(t, os.WriteFile(path, data, 0o600))
	info, got, err = replayAll(t, src.dir, opts, 0)
	require.NoError(t, err)
	assert.Equal(t, src.recs[:len(src.recs)-1], got)
	assert.EqualValues(t, nonzeroLen(data[src.offs[3]:mid]), info.TornBytes)
}

// TestHeadlessTailSegmentsAreTorn: a power cut can leave segments whose
// names were durable but not their contents (a mapped segment's header is
// in the page cache until its first fsync): zero-filled files at the end of
// the log, holding no record. Open removes them as torn creations; a
// headless segment with a valid one after it is damage.
func TestHeadlessTailSegmentsAreTorn(t *testing.T) {
	wal.VerifyNoLeaks(t)
	dir := t.TempDir()
	l, _, _ := openLog(t, dir, wal.Options{Sync: wal.SyncAlways}, 0)
	for i := range 10 {
		appendWait(t, l, smallRecord(i))
	}
	require.NoError(t, l.Close())
	for _, first := range []uint64{11, 12} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, wal.SegmentName(first)), make([]byte, 8192), 0o600))
	}
	info, got, err := replayAll(t, dir, wal.Options{}, 0)
	require.NoError(t, err)
	assert.Len(t, got, 10)
	assert.Equal(t, []string{wal.SegmentName(1)}, segmentFiles(t, dir), "both headless segments removed")
	assert.Zero(t, info.TornBytes, "all zeros: nothing torn but the files")

	// A headless segment followed by one with records is damage.
	require.NoError(t, os.WriteFile(filepath.Join(dir, wal.SegmentName(11)), make([]byte, 8192), 0o600))
	other := t.TempDir()
	l, _, _ = openLog(t, other, wal.Options{}, 11) // its first segment holds LSN 12 on
	appendWait(t, l, smallRecord(0))
	require.NoError(t, l.Close())
	b, err := os.ReadFile(filepath.Join(other, wal.SegmentName(12)))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, wal.SegmentName(12)), b, 0o600))
	_, _, err = replayAll(t, dir, wal.Options{}, 0)
	assert.ErrorIs(t, err, wal.ErrCorrupt)
}
