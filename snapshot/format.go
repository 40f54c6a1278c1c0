package snapshot

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sesscache/sesscache/wal"
)

// File format constants; part of the format (see the package comment).
const (
	headerMagic   = "SESSNAP\x00"
	trailerMagic  = "SNAPEND\x00"
	formatVersion = 3
	headerSize    = 40
	entrySize     = 12
	trailerSize   = 32
)

// MaxChunkSize is the largest chunk a snapshot may hold: one frame of the
// largest payload wal allows. A larger length in the chunk table is damage.
// Part of the format.
const MaxChunkSize = wal.MaxFrameSize + wal.HeaderSize

// defaultChunkTarget is the size at which Write closes a chunk (see the
// package comment and BENCHMARKS.md for why 256 KiB). Not part of the
// format: readers take any chunk up to MaxChunkSize.
const defaultChunkTarget = 256 << 10

// File names.
const (
	snapExt    = ".snap"
	tmpExt     = ".tmp"
	lsnDigits  = 16
	tmpDigits  = 8
	nameLen    = lsnDigits + len(snapExt)
	tmpNameLen = nameLen + 1 + tmpDigits + len(tmpExt)
)

const (
	fileMode = 0o600
	dirMode  = 0o700
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fileName returns the name of the snapshot at lsn.
func fileName(lsn uint64) string {
	return fmt.Sprintf("%016x%s", lsn, snapExt)
}

// tempName returns a fresh temporary name for a snapshot at lsn; the random
// part keeps two writers of the same LSN from sharing a file.
func tempName(lsn uint64) string {
	return fmt.Sprintf("%s.%08x%s", fileName(lsn), rand.Uint32(), tmpExt)
}

// parseName returns the LSN named by a snapshot file name, or false if name
// is not exactly 16 lower-case hex digits and ".snap" naming a non-zero LSN.
func parseName(name string) (uint64, bool) {
	if len(name) != nameLen || name[lsnDigits:] != snapExt || !isHex(name[:lsnDigits]) {
		return 0, false
	}
	lsn, err := strconv.ParseUint(name[:lsnDigits], 16, 64)
	return lsn, err == nil && lsn != 0
}

// isTempName reports whether name is one that Write uses for a snapshot in
// progress.
func isTempName(name string) bool {
	if len(name) != tmpNameLen || name[nameLen] != '.' || name[len(name)-len(tmpExt):] != tmpExt {
		return false
	}
	_, ok := parseName(name[:nameLen])
	return ok && isHex(name[nameLen+1:nameLen+1+tmpDigits])
}

func isHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// header is the decoded file header.
type header struct {
	lsn     uint64
	created int64 // unix nanoseconds; 0 if unknown
}

func appendHeader(b []byte, h header) []byte {
	start := len(b)
	b = append(b, headerMagic...)
	b = binary.LittleEndian.AppendUint32(b, formatVersion)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, h.lsn)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.created))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	return binary.LittleEndian.AppendUint32(b, 0)
}

// parseHeader validates a headerSize-byte header. It returns a reason for
// damage, or an error wrapping ErrUnsupportedVersion.
func parseHeader(b []byte) (h header, reason string, err error) {
	switch {
	case string(b[:8]) != headerMagic:
		return h, "bad header magic", nil
	case crc32.Checksum(b[:32], castagnoli) != binary.LittleEndian.Uint32(b[32:]):
		return h, "header checksum mismatch", nil
	case binary.LittleEndian.Uint32(b[8:]) == 0:
		return h, "format version 0", nil // no version 0 was ever written
	case binary.LittleEndian.Uint32(b[8:]) != formatVersion:
		return h, "", fmt.Errorf("%w %d (this build reads version %d only)",
			ErrUnsupportedVersion, binary.LittleEndian.Uint32(b[8:]), formatVersion)
	case binary.LittleEndian.Uint32(b[12:]) != 0 || binary.LittleEndian.Uint32(b[36:]) != 0:
		return h, "non-zero reserved header bytes", nil
	}
	h.lsn = binary.LittleEndian.Uint64(b[16:])
	h.created = int64(binary.LittleEndian.Uint64(b[24:]))
	if h.lsn == 0 {
		return h, "LSN 0", nil
	}
	return h, "", nil
}

// entry is one row of the chunk table.
type entry struct {
	length  uint32
	records uint32
	crc     uint32
}

// trailer is the decoded trailer.
type trailer struct {
	sessions uint64
	lsn      uint64
	chunks   uint32
}

// appendFooter appends the chunk table and the trailer.
func appendFooter(b []byte, table []entry, t trailer) []byte {
	start := len(b)
	for _, e := range table {
		b = binary.LittleEndian.AppendUint32(b, e.length)
		b = binary.LittleEndian.AppendUint32(b, e.records)
		b = binary.LittleEndian.AppendUint32(b, e.crc)
	}
	b = append(b, trailerMagic...)
	b = binary.LittleEndian.AppendUint64(b, t.sessions)
	b = binary.LittleEndian.AppendUint64(b, t.lsn)
	b = binary.LittleEndian.AppendUint32(b, t.chunks)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// parseTrailer decodes the last trailerSize bytes of a file; the CRC is
// checked later, once the table it covers has been read.
func parseTrailer(b []byte) (t trailer, ok bool) {
	if string(b[:8]) != trailerMagic {
		return t, false
	}
	t.sessions = binary.LittleEndian.Uint64(b[8:])
	t.lsn = binary.LittleEndian.Uint64(b[16:])
	t.chunks = binary.LittleEndian.Uint32(b[24:])
	return t, true
}

// parseTable decodes the chunk table and checks the trailer's CRC over it; b
// is the table followed by the trailer.
func parseTable(b []byte) ([]entry, bool) {
	crcAt := len(b) - 4
	if crc32.Checksum(b[:crcAt], castagnoli) != binary.LittleEndian.Uint32(b[crcAt:]) {
		return nil, false
	}
	n := (len(b) - trailerSize) / entrySize
	table := make([]entry, n)
	for i := range table {
		e := b[i*entrySize:]
		table[i] = entry{
			length:  binary.LittleEndian.Uint32(e),
			records: binary.LittleEndian.Uint32(e[4:]),
			crc:     binary.LittleEndian.Uint32(e[8:]),
		}
	}
	return table, true
}

// unixNano and fromUnixNano map the zero Time to 0 and back, so that a
// snapshot written without a creation time loads without one.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
