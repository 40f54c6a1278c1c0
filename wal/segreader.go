package wal

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
)

// readBufferSize is the size of replay's reads and of its buffer. Reads
// this large cost little in system calls against the decoding of what they
// bring, and the buffer still fits in cache, so each byte is checksummed and
// decoded while it is hot. Open's memory does not depend on the segment size:
// the buffer only grows for a single frame larger than it, and never beyond
// HeaderSize+MaxFrameSize. A variable so that tests can shrink it and make
// frames straddle reads.
var readBufferSize = 1 << 20

// checksumChunk is the largest read made to checksum a frame too long for
// the buffer, which is done without growing the buffer, since the frame may
// be damage.
const checksumChunk = 64 << 10

// segmentReader reads one segment file at a time, front to back, through a
// buffer kept across files. Frames are decoded in place; a frame cut by the
// end of the buffer is moved to its front before the next read. Not safe
// for concurrent use.
type segmentReader struct {
	f     File
	size  int64  // file size; lowered if a read meets an earlier end
	start int64  // file offset of buf[0]
	buf   []byte // the file's bytes [start, start+len(buf))
	off   int64  // offset of the next frame

	scratch []byte // for checksumMatches; allocated on first use
}

// reset points the reader at the start of f.
func (sr *segmentReader) reset(f File) error {
	size, err := f.Size()
	if err != nil {
		return err
	}
	sr.f, sr.size, sr.start, sr.buf, sr.off = f, size, 0, sr.buf[:0], 0
	// Sized to the file, so that a log of small segments (tests) does not
	// allocate the full buffer on every Open.
	if want := int(min(size, int64(readBufferSize))); cap(sr.buf) < want {
		sr.buf = make([]byte, 0, want)
	}
	return nil
}

// at returns the file's bytes from off to the end of what is buffered, at
// least min(need, size-off) of them unless the file turns out shorter. When
// it must read, it keeps what is buffered from off on and reads up to
// readBufferSize (or need) bytes in all, so that reading a file front to
// back makes reads of that size.
func (sr *segmentReader) at(off int64, need int) ([]byte, error) {
	need = int(max(0, min(int64(need), sr.size-off)))
	end := sr.start + int64(len(sr.buf))
	if off >= sr.start && off+int64(need) <= end {
		return sr.buf[off-sr.start:], nil
	}
	var keep []byte
	if off >= sr.start && off < end {
		keep = sr.buf[off-sr.start:]
	}
	if need > cap(sr.buf) {
		grown := make([]byte, len(keep), need)
		copy(grown, keep)
		sr.buf = grown
	} else {
		sr.buf = sr.buf[:copy(sr.buf[:cap(sr.buf)], keep)]
	}
	sr.start = off
	// Reads stay readBufferSize long after the buffer grew for one frame,
	// so that the rest of the replay keeps its working set in cache.
	k, n := len(sr.buf), min(cap(sr.buf), max(need, readBufferSize))
	n = int(min(int64(n), sr.size-off))
	m, err := sr.f.ReadAt(sr.buf[k:n], off+int64(k))
	sr.buf = sr.buf[:k+m]
	if err == io.EOF {
		sr.size = off + int64(k+m)
		err = nil
	}
	return sr.buf, err
}

// frame returns the frame at the cursor as ReadFrame would return it from
// the whole rest of the file; err is an I/O error. The payload aliases the
// buffer and is valid until the next call.
func (sr *segmentReader) frame() (payload []byte, n int, ferr, err error) {
	b, err := sr.at(sr.off, HeaderSize)
	if err != nil {
		return nil, 0, nil, err
	}
	if len(b) >= HeaderSize {
		length := binary.LittleEndian.Uint32(b)
		need := HeaderSize + int64(length)
		if length != 0 && length <= MaxFrameSize && need > int64(len(b)) && need <= sr.size-sr.off {
			if need > int64(cap(sr.buf)) {
				// Grow only for a frame that checks out, so that a
				// damaged length cannot make Open allocate.
				ok, err := sr.checksumMatches(sr.off, length)
				if err != nil {
					return nil, 0, nil, err
				}
				if !ok {
					return nil, 0, ErrChecksum, nil
				}
			}
			if b, err = sr.at(sr.off, int(need)); err != nil {
				return nil, 0, nil, err
			}
		}
	}
	payload, n, ferr = ReadFrame(b)
	return payload, n, ferr, nil
}

// checksumMatches reports whether the frame at off, whose header is
// buffered, has a payload of length bytes matching its CRC. What the buffer
// lacks is read in chunks through scratch, leaving the buffer as it was.
func (sr *segmentReader) checksumMatches(off int64, length uint32) (bool, error) {
	b := sr.buf[off-sr.start:]
	want := binary.LittleEndian.Uint32(b[4:])
	b = b[HeaderSize:]
	if len(b) >= int(length) {
		return crc32.Checksum(b[:length], castagnoli) == want, nil
	}
	crc := crc32.Update(0, castagnoli, b)
	if sr.scratch == nil {
		sr.scratch = make([]byte, min(checksumChunk, readBufferSize))
	}
	for pos, end := off+HeaderSize+int64(len(b)), off+HeaderSize+int64(length); pos < end; {
		chunk := sr.scratch[:min(int64(len(sr.scratch)), end-pos)]
		m, err := sr.f.ReadAt(chunk, pos)
		if err == io.EOF {
			return false, nil // the file ends inside the payload
		}
		if err != nil {
			return false, err
		}
		crc = crc32.Update(crc, castagnoli, chunk[:m])
		pos += int64(m)
	}
	return crc == want, nil
}

// dataEnd returns the offset just past the last non-zero byte at or after
// from, or from if the rest of the file is zeros. Only the last segment has
// a long zero tail (its preallocated space); this reads all of it.
func (sr *segmentReader) dataEnd(from int64) (int64, error) {
	end := from
	for pos := from; pos < sr.size; {
		w, err := sr.at(pos, 1)
		if err != nil {
			return 0, err
		}
		if n := nonzeroEnd(w); n > 0 {
			end = pos + int64(n)
		}
		pos += int64(len(w))
	}
	return end, nil
}

// validFrameAfter reports whether a frame with a matching CRC starts anywhere
// in (off, end), end being dataEnd's answer. That tells a torn tail (nothing
// valid follows) from damage in the middle of the log.
func (sr *segmentReader) validFrameAfter(off, end int64) (bool, error) {
	for o := off + 1; o < end && o+HeaderSize < sr.size; {
		w, err := sr.at(o, HeaderSize)
		if err != nil {
			return false, err
		}
		// Each header that lies wholly in w; at least one does.
		i := 0
		for ; i+HeaderSize <= len(w) && o+int64(i) < end && o+int64(i)+HeaderSize < sr.size; i++ {
			length := binary.LittleEndian.Uint32(w[i:])
			if length == 0 {
				// A non-zero length has a non-zero byte among the four, so
				// a run of zeros is passed over at memory speed.
				i = max(i, i+firstNonzero(w[i:])-4)
				continue
			}
			if length > MaxFrameSize || int64(length) > sr.size-(o+int64(i))-HeaderSize {
				continue
			}
			ok, err := sr.checksumMatches(o+int64(i), length)
			if err != nil || ok {
				return ok, err
			}
		}
		o += int64(i)
	}
	return false, nil
}

// copyTo writes the file's bytes [from, to) to dst at offset 0.
func (sr *segmentReader) copyTo(dst File, from, to int64) error {
	for pos := from; pos < to; {
		w, err := sr.at(pos, 1)
		if err != nil {
			return err
		}
		if len(w) == 0 {
			return io.ErrUnexpectedEOF
		}
		w = w[:min(int64(len(w)), to-pos)]
		if err := writeAll(dst, w, pos-from); err != nil {
			return err
		}
		pos += int64(len(w))
	}
	return nil
}

// zeros is compared against, a page at a time, so that scans of zero-filled
// space run at memcmp speed (also under the race detector, which would
// otherwise instrument every load of a Go loop).
var zeros [4096]byte

// nonzeroEnd returns the length of b without its trailing zero bytes.
func nonzeroEnd(b []byte) int {
	n := len(b)
	for n > 0 {
		k := min(n, len(zeros))
		if !bytes.Equal(b[n-k:n], zeros[:k]) {
			break
		}
		n -= k
	}
	for n >= 8 && binary.LittleEndian.Uint64(b[n-8:]) == 0 {
		n -= 8
	}
	for n > 0 && b[n-1] == 0 {
		n--
	}
	return n
}

// firstNonzero returns the index of b's first non-zero byte, or len(b).
func firstNonzero(b []byte) int {
	i := 0
	for i < len(b) {
		k := min(len(b)-i, len(zeros))
		if !bytes.Equal(b[i:i+k], zeros[:k]) {
			break
		}
		i += k
	}
	for i+8 <= len(b) && binary.LittleEndian.Uint64(b[i:]) == 0 {
		i += 8
	}
	for i < len(b) && b[i] == 0 {
		i++
	}
	return i
}
