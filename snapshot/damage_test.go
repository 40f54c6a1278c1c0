package snapshot_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/snapshot"
	"github.com/sesscache/sesscache/wal"
)

// secretRecords returns Puts whose data and user ID say SECRET, so that a
// test can check that no error message repeats record contents.
func secretRecords(n int, dataLen int) []wal.Record {
	recs := make([]wal.Record, n)
	for i := range recs {
		data := []byte(strings.Repeat("SECRET", dataLen/6+1)[:dataLen])
		recs[i] = putRecord(i+1, data)
		recs[i].UserID = []byte("SECRET-USER")
	}
	return recs
}

// smallSnapshot writes 7 records in several chunks and returns the file's
// path and bytes.
func smallSnapshot(t *testing.T) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	w := writeRecords(t, dir, 0x42, secretRecords(7, 8), 3, testOptions(2, 100))
	b, err := os.ReadFile(w.Path)
	require.NoError(t, err)
	_, counts, err := snapshot.Table(w.Path)
	require.NoError(t, err)
	require.Greater(t, len(counts), 2, "want several chunks")
	return w.Path, b
}

// loadDamaged writes b to path and loads it, counting apply calls.
func loadDamaged(t *testing.T, path string, b []byte) (applied int, err error) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, b, 0o600))
	var n atomic.Int64
	_, err = snapshot.Load(path, testOptions(2, 0), func(*wal.Record) error {
		n.Add(1)
		return nil
	})
	return int(n.Load()), err
}

// assertCorrupt checks that err reports damage properly.
func assertCorrupt(t *testing.T, err error, path string, msgAndArgs ...any) bool {
	t.Helper()
	if !assert.ErrorIs(t, err, snapshot.ErrCorrupt, msgAndArgs...) {
		return false
	}
	var ce *snapshot.CorruptError
	ok := assert.ErrorAs(t, err, &ce, msgAndArgs...) &&
		assert.Equal(t, filepath.Base(path), ce.File, msgAndArgs...) &&
		assert.GreaterOrEqual(t, ce.Offset, int64(0), msgAndArgs...) &&
		assert.NotContains(t, err.Error(), "SECRET", msgAndArgs...)
	return ok
}

func TestTruncateAtEveryOffset(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	path, good := smallSnapshot(t)
	for n := range len(good) {
		applied, err := loadDamaged(t, path, good[:n])
		if !assertCorrupt(t, err, path, "truncated to %d of %d bytes", n, len(good)) ||
			!assert.Zero(t, applied, "truncated to %d bytes", n) {
			return
		}
	}
}

func TestFlipEveryBit(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	path, good := smallSnapshot(t)
	b := make([]byte, len(good))
	for bit := range 8 * len(good) {
		copy(b, good)
		b[bit/8] ^= 1 << (bit % 8)
		applied, err := loadDamaged(t, path, b)
		if !assertCorrupt(t, err, path, "bit %d of byte %d", bit%8, bit/8) ||
			!assert.Zero(t, applied, "bit %d of byte %d", bit%8, bit/8) {
			return
		}
	}
}

// TestFlipSampledBitsInLargerFile flips every bit of the header and footer
// and a dense sample (every 151st bit) of the chunks of a file of about
// 50 KiB.
func TestFlipSampledBitsInLargerFile(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	w := writeRecords(t, dir, 0x99, secretRecords(200, 200), 5, testOptions(2, 4<<10))
	good, err := os.ReadFile(w.Path)
	require.NoError(t, err)
	offsets, _, err := snapshot.Table(w.Path)
	require.NoError(t, err)
	require.Greater(t, len(offsets), 8)
	footerAt := len(good) - snapshot.TrailerSize - snapshot.EntrySize*len(offsets)

	b := make([]byte, len(good))
	flips := 0
	for bit := 0; bit < 8*len(good); bit++ {
		if at := bit / 8; at >= snapshot.HeaderSize && at < footerAt && bit%151 != 0 {
			continue
		}
		flips++
		copy(b, good)
		b[bit/8] ^= 1 << (bit % 8)
		applied, err := loadDamaged(t, w.Path, b)
		if !assertCorrupt(t, err, w.Path, "bit %d of byte %d", bit%8, bit/8) ||
			!assert.Zero(t, applied, "bit %d of byte %d", bit%8, bit/8) {
			return
		}
	}
	t.Logf("%d flips over %d bytes", flips, len(good))
}

// frames encodes recs as consecutive wal frames.
func frames(recs ...wal.Record) []byte {
	var b []byte
	for i := range recs {
		b = wal.AppendFrame(b, wal.AppendRecord(nil, &recs[i]))
	}
	return b
}

// patchHeader changes a header field and recomputes the header's CRC, making
// damage that only the field checks can catch.
func patchHeader(b []byte, off int, v uint32) []byte {
	b = append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(b[off:], v)
	binary.LittleEndian.PutUint32(b[32:], snapshot.CRC(b[:32]))
	return b
}

// TestChecksummedDamage covers files whose every checksum is right but whose
// content is wrong: a buggy or hostile writer rather than a bad disk.
func TestChecksummedDamage(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	const lsn = 0x42
	recs := withLSN(secretRecords(3, 20), lsn)
	good := snapshot.Chunk{Frames: frames(recs...), Records: 3}
	build := func(chunks ...snapshot.Chunk) []byte {
		return snapshot.BuildFile(lsn, 1, chunks, snapshot.Footer{})
	}
	del := recs[0]
	del.Op = wal.OpDelete
	otherLSN := recs[1]
	otherLSN.LSN = lsn + 1
	badFrameCRC := frames(recs[0])
	badFrameCRC[4] ^= 1
	trailing := wal.AppendFrame(nil, append(wal.AppendRecord(nil, &recs[0]), 0))
	hugeFrame := binary.LittleEndian.AppendUint32(nil, wal.MaxFrameSize+1)
	hugeFrame = append(hugeFrame, make([]byte, 60)...)
	valid := build(good)
	tableAt := len(valid) - snapshot.TrailerSize - snapshot.EntrySize
	gap := append(append(append([]byte(nil), valid[:tableAt]...), 0, 0, 0, 0), valid[tableAt:]...)

	cases := []struct {
		name string
		file []byte
	}{
		{"records count above the chunk's", build(snapshot.Chunk{Frames: good.Frames, Records: 4})},
		{"records count below the chunk's", build(snapshot.Chunk{Frames: good.Frames, Records: 2})},
		{"sessions disagree with the chunks", snapshot.BuildFile(lsn, 1, []snapshot.Chunk{good}, snapshot.Footer{Sessions: 4})},
		{"trailer LSN disagrees", snapshot.BuildFile(lsn, 1, []snapshot.Chunk{good}, snapshot.Footer{LSN: lsn + 1})},
		{"delete record", build(good, snapshot.Chunk{Frames: frames(del), Records: 1})},
		{"record of another LSN", build(snapshot.Chunk{Frames: frames(recs[0], otherLSN), Records: 2})},
		{"frame checksum", build(good, snapshot.Chunk{Frames: badFrameCRC, Records: 1})},
		{"non-canonical payload", build(snapshot.Chunk{Frames: trailing, Records: 1})},
		{"end marker in a chunk", build(good, snapshot.Chunk{Frames: make([]byte, 16), Records: 1})},
		{"frame length above the maximum", build(snapshot.Chunk{Frames: hugeFrame, Records: 1})},
		{"chunk without records", build(good, snapshot.Chunk{Frames: frames(recs[0]), Records: 0})},
		{"chunk of length 0", build(good, snapshot.Chunk{Records: 1})},
		{"chunk longer than the maximum", build(snapshot.Chunk{Frames: good.Frames, Records: 3, Length: snapshot.MaxChunkSize + 1})},
		{"chunk runs into the table", build(snapshot.Chunk{Frames: good.Frames, Records: 3, Length: uint32(len(good.Frames) + 1)})},
		{"chunk shorter than its frames", build(snapshot.Chunk{Frames: good.Frames, Records: 3, Length: uint32(len(good.Frames) - 1)})},
		{"frame across a chunk boundary", build(
			snapshot.Chunk{Frames: good.Frames[:len(good.Frames)-1], Records: 3},
			snapshot.Chunk{Frames: append(good.Frames[len(good.Frames)-1:], frames(recs[0])...), Records: 1})},
		{"gap before the table", gap},
		{"chunk checksum in the table", build(snapshot.Chunk{Frames: good.Frames, Records: 3, CRC: snapshot.CRC(good.Frames) + 1})},
		{"header version 0", patchHeader(valid, 8, 0)},
		{"header reserved word", patchHeader(valid, 12, 1)},
		{"header second reserved word", append(append(append([]byte(nil), valid[:36]...), 1, 0, 0, 0), valid[40:]...)},
		{"bytes after the trailer", append(append([]byte(nil), valid...), 0)},
		{"wrong header magic", append([]byte("SESSWAL\x00"), valid[8:]...)},
		{"wrong trailer magic", append(append([]byte(nil), valid[:len(valid)-32]...), append([]byte("SNAPEND\x01"), valid[len(valid)-24:]...)...)},
		{"a wal segment", append(append([]byte("SESSWAL\x00\x01\x00\x00\x00"), make([]byte, 28)...), good.Frames...)},
		{"empty file", nil},
		{"zeros", make([]byte, 4096)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := snapPath(t.TempDir(), lsn)
			applied, err := loadDamaged(t, path, c.file)
			assertCorrupt(t, err, path)
			t.Log(err)
			assert.Zero(t, applied)
		})
	}

	t.Run("valid", func(t *testing.T) {
		path := snapPath(t.TempDir(), lsn)
		applied, err := loadDamaged(t, path, build(good, snapshot.Chunk{Frames: frames(recs[0]), Records: 1}))
		require.NoError(t, err)
		assert.Equal(t, 4, applied)
	})
}

func TestHeaderLSNMustMatchFileName(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	w := writeRecords(t, dir, 5, makeRecords(10, 1), 1, testOptions(1, 0))
	other := snapPath(dir, 6)
	require.NoError(t, os.Rename(w.Path, other))
	_, err := snapshot.Load(other, testOptions(1, 0), nil)
	assertCorrupt(t, err, other)

	// A name that is not a snapshot's is not checked, so a copy can be
	// loaded from anywhere.
	elsewhere := filepath.Join(dir, "copy")
	require.NoError(t, os.Rename(other, elsewhere))
	info, err := snapshot.Load(elsewhere, testOptions(1, 0), nil)
	require.NoError(t, err)
	assert.Equal(t, uint64(5), info.LSN)

	// But LSN 0 is never valid.
	b, err := os.ReadFile(elsewhere)
	require.NoError(t, err)
	b = append([]byte(nil), b...)
	binary.LittleEndian.PutUint64(b[16:], 0)
	binary.LittleEndian.PutUint32(b[32:], snapshot.CRC(b[:32]))
	_, err = loadDamaged(t, elsewhere, b)
	assertCorrupt(t, err, elsewhere)
}

// TestOtherVersionIsNotDamage: a snapshot of an older or a newer format is
// refused naming its version, never reported as damage (which would make
// recovery fall back past it).
func TestOtherVersionIsNotDamage(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	recs := withLSN(makeRecords(3, 1), 9)
	valid := snapshot.BuildFile(9, 1, []snapshot.Chunk{{Frames: frames(recs...), Records: 3}}, snapshot.Footer{})
	path := snapPath(t.TempDir(), 9)
	for _, v := range []uint32{snapshot.FormatVersion - 1, snapshot.FormatVersion + 1} {
		applied, err := loadDamaged(t, path, patchHeader(valid, 8, v))
		require.ErrorIs(t, err, snapshot.ErrUnsupportedVersion)
		assert.NotErrorIs(t, err, snapshot.ErrCorrupt)
		assert.Contains(t, err.Error(), filepath.Base(path))
		assert.Contains(t, err.Error(), fmt.Sprintf("version %d (this build reads version %d only)", v, snapshot.FormatVersion))
		assert.Zero(t, applied)
	}
}

// TestLengthsCannotForceAllocation: lengths in the footer are checked against
// the file's size before anything is sized from them.
func TestLengthsCannotForceAllocation(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	recs := withLSN(makeRecords(1, 1), 3)
	valid := snapshot.BuildFile(3, 1, []snapshot.Chunk{{Frames: frames(recs...), Records: 1}}, snapshot.Footer{})
	hugeCount := append([]byte(nil), valid...)
	binary.LittleEndian.PutUint32(hugeCount[len(hugeCount)-8:], 0xffffffff)
	hugeChunk := snapshot.BuildFile(3, 1, []snapshot.Chunk{{Frames: frames(recs...), Records: 1, Length: snapshot.MaxChunkSize}}, snapshot.Footer{})

	for name, b := range map[string][]byte{"chunk count": hugeCount, "chunk length": hugeChunk} {
		t.Run(name, func(t *testing.T) {
			path := snapPath(t.TempDir(), 3)
			require.NoError(t, os.WriteFile(path, b, 0o600))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := snapshot.Load(path, testOptions(1, 0), nil)
			runtime.ReadMemStats(&after)
			assertCorrupt(t, err, path)
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10))
		})
	}
}

// TestReadErrorIsNotDamage: an I/O error is reported as such, not as a
// corrupt file that recovery might skip.
func TestReadErrorIsNotDamage(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	w := writeRecords(t, dir, 5, makeRecords(2000, 1), 4, testOptions(2, 8<<10))
	errRead := errors.New("injected read error")
	for _, failAt := range []int{0, 1, 2, 3, 10} {
		fsys := &faultFS{readErr: errRead, readSkip: failAt}
		applied := 0
		_, err := snapshot.Load(w.Path, snapshot.Options{FS: fsys, Workers: 1, Logger: quiet}, func(*wal.Record) error {
			applied++
			return nil
		})
		require.ErrorIs(t, err, errRead, "read %d", failAt)
		assert.NotErrorIs(t, err, snapshot.ErrCorrupt)
		assert.Zero(t, applied, "read %d", failAt)
	}
}

// TestOnePassFindsTheSameDamage: with OnePass a damaged chunk still fails
// Load with ErrCorrupt (after the chunks before it were applied), and an
// intact file applies every record once.
func TestOnePassFindsTheSameDamage(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	recs := withLSN(makeRecords(40, 1), 9)
	good := snapshot.Chunk{Frames: frames(recs[:20]...), Records: 20}
	bad := snapshot.Chunk{Frames: frames(recs[20:]...), Records: 20}
	file := snapshot.BuildFile(9, 1, []snapshot.Chunk{good, bad}, snapshot.Footer{})
	path := snapPath(t.TempDir(), 9)
	require.NoError(t, os.WriteFile(path, file, 0o600))
	var n atomic.Int64
	info, err := snapshot.Load(path, snapshot.Options{OnePass: true, Workers: 1}, func(*wal.Record) error { n.Add(1); return nil })
	require.NoError(t, err)
	assert.EqualValues(t, 40, n.Load())
	assert.EqualValues(t, 40, info.Sessions)

	damaged := append([]byte(nil), file...)
	damaged[40+len(good.Frames)+30] ^= 1 // inside the second chunk
	require.NoError(t, os.WriteFile(path, damaged, 0o600))
	n.Store(0)
	_, err = snapshot.Load(path, snapshot.Options{OnePass: true, Workers: 1}, func(*wal.Record) error { n.Add(1); return nil })
	assertCorrupt(t, err, path)
	assert.EqualValues(t, 20, n.Load(), "the chunk before the damage was applied: the caller discards it")
}
