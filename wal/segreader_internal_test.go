package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memFile is a read-only in-memory File, for driving segmentReader directly.
type memFile struct {
	b         []byte
	reads     int
	readSizes []int
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.reads++
	m.readSizes = append(m.readSizes, len(p))
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt([]byte, int64) (int, error) { return 0, io.ErrShortWrite }
func (m *memFile) Sync() error                        { return nil }
func (m *memFile) Truncate(int64) error               { return nil }
func (m *memFile) Preallocate(int64) error            { return nil }
func (m *memFile) Size() (int64, error)               { return int64(len(m.b)), nil }
func (m *memFile) Close() error                       { return nil }

// wholeValidFrameAfter is the whole-buffer search that replay used before it
// streamed: the reference for validFrameAfter.
func wholeValidFrameAfter(b []byte, off int) bool {
	end := nonzeroEnd(b)
	for o := off + 1; o < end && o+HeaderSize < len(b); o++ {
		length := binary.LittleEndian.Uint32(b[o:])
		if length == 0 || length > MaxFrameSize || int64(length) > int64(len(b)-o-HeaderSize) {
			continue
		}
		payload := b[o+HeaderSize : o+HeaderSize+int(length)]
		if crc32.Checksum(payload, castagnoli) == binary.LittleEndian.Uint32(b[o+4:]) {
			return true
		}
	}
	return false
}

func newReader(t *testing.T, b []byte, bufSize int) *segmentReader {
	t.Helper()
	old := readBufferSize
	readBufferSize = bufSize
	t.Cleanup(func() { readBufferSize = old })
	var sr segmentReader
	require.NoError(t, sr.reset(&memFile{b: b}))
	return &sr
}

// TestStreamingScansMatchWholeBuffer compares dataEnd and validFrameAfter,
// through buffers of several sizes, with the whole-buffer versions on files
// of zero runs, random bytes and valid frames.
func TestStreamingScansMatchWholeBuffer(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 300; i++ {
		var b []byte
		for len(b) < 2000 {
			switch rng.IntN(4) {
			case 0:
				b = append(b, make([]byte, rng.IntN(300))...)
			case 1:
				for n := rng.IntN(20); n > 0; n-- {
					b = append(b, byte(rng.Uint32()))
				}
			case 2:
				payload := make([]byte, 1+rng.IntN(200))
				for j := range payload {
					payload[j] = byte(rng.IntN(3)) // zeros among the payload too
				}
				b = AppendFrame(b, payload)
			case 3:
				f := AppendFrame(nil, []byte{1, 2, 3, 4, 5})
				f[HeaderSize+rng.IntN(5)] ^= 1 // a frame that fails its CRC
				b = append(b, f...)
			}
		}
		if rng.IntN(2) == 0 {
			b = append(b, make([]byte, rng.IntN(5000))...) // a zero tail
		}
		off := rng.IntN(len(b))
		for _, size := range []int{1, 13, 64, 4096} {
			name := fmt.Sprintf("file %d, buffer %d, offset %d", i, size, off)
			sr := newReader(t, b, size)
			end, err := sr.dataEnd(int64(off))
			require.NoError(t, err)
			require.EqualValues(t, max(off, nonzeroEnd(b)), end, name)
			got, err := sr.validFrameAfter(int64(off), end)
			require.NoError(t, err)
			require.Equal(t, wholeValidFrameAfter(b, off), got, name)
		}
	}
}

// TestValidFrameAfterZerosWithHighByteLength: the zero-run skip must not pass
// over a header whose length has only its top byte set (16 MiB here).
func TestValidFrameAfterZerosWithHighByteLength(t *testing.T) {
	b := make([]byte, 100, 100+HeaderSize+1<<24)
	b = AppendFrame(b, make([]byte, 1<<24))
	require.Equal(t, []byte{0, 0, 0, 1}, b[100:104])
	sr := newReader(t, b, 4096)
	end, err := sr.dataEnd(0)
	require.NoError(t, err)
	ok, err := sr.validFrameAfter(0, end)
	require.NoError(t, err)
	assert.True(t, ok)
}

// TestBufferGrowsOnlyForAValidFrame: a frame longer than the buffer is
// checksummed in chunks first, so a damaged length never grows the buffer;
// a valid frame grows it to exactly its size.
func TestBufferGrowsOnlyForAValidFrame(t *testing.T) {
	payload := make([]byte, 100_000)
	for i := range payload {
		payload[i] = byte(i)
	}
	frame := AppendFrame(nil, payload)

	damaged := append([]byte(nil), frame...)
	damaged[len(damaged)-1] ^= 1
	sr := newReader(t, damaged, 4096)
	_, _, ferr, err := sr.frame()
	require.NoError(t, err)
	assert.ErrorIs(t, ferr, ErrChecksum)
	assert.LessOrEqual(t, cap(sr.buf), 4096)

	sr = newReader(t, frame, 4096)
	got, n, ferr, err := sr.frame()
	require.NoError(t, err)
	require.NoError(t, ferr)
	assert.Equal(t, payload, got)
	assert.Equal(t, len(frame), n)
	assert.Equal(t, len(frame), cap(sr.buf))
}

// TestReadsAreBufferSized: reading a file front to back makes reads of the
// buffer's size, not one per frame, and keeps doing so after the buffer grew
// for one large frame.
func TestReadsAreBufferSized(t *testing.T) {
	const size = 64 << 10
	b := AppendFrame(nil, make([]byte, 200_000))
	for len(b) < 1<<20 {
		b = AppendFrame(b, make([]byte, 1+len(b)%300))
	}
	f := &memFile{b: b}
	sr := newReader(t, nil, size)
	require.NoError(t, sr.reset(f))
	for {
		_, n, ferr, err := sr.frame()
		require.NoError(t, err)
		if ferr != nil {
			require.ErrorIs(t, ferr, ErrShortFrame)
			break
		}
		sr.off += int64(n)
	}
	assert.EqualValues(t, len(b), sr.off)
	large := 0
	for _, n := range f.readSizes {
		if n > size {
			large++
		}
	}
	assert.Equal(t, 1, large, "only the read of the large frame is longer than the buffer: %v", f.readSizes)
	// Checksumming the large frame in chunks, then reading it, then the rest.
	assert.LessOrEqual(t, f.reads, 2*200_000/size+len(b)/size+3)
}
