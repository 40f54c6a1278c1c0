package wal

import (
	"encoding/binary"
	"hash/crc32"
)

// HeaderSize is the size of a frame header: a little-endian uint32 payload
// length followed by a little-endian uint32 CRC-32C of the payload. Part of
// the format.
const HeaderSize = 8

// MaxFrameSize is the largest payload length a frame may declare: 64 MiB of
// session data plus room for the rest of a record or a batch. A larger length
// is damage and is rejected before anything is allocated or read. Part of the
// format.
const MaxFrameSize = 64<<20 + 64<<10

// castagnoli is the CRC-32C table; hardware-accelerated on amd64 and arm64.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendFrame appends a frame holding payload to dst. The payload must not be
// empty (a zero length is the end marker) and must not exceed MaxFrameSize.
func AppendFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// ReadFrame reads the frame at the start of b. On success it returns the
// payload, which aliases b, and n, the bytes the frame occupies. Otherwise n
// is 0 and err is one of:
//
//   - ErrShortFrame: b ends before the header or the payload does;
//   - ErrEndMarker: the length is zero, the end of written data;
//   - ErrFrameTooLarge: the length exceeds MaxFrameSize;
//   - ErrChecksum: the payload does not match the CRC.
func ReadFrame(b []byte) (payload []byte, n int, err error) {
	if len(b) < HeaderSize {
		return nil, 0, ErrShortFrame
	}
	length := binary.LittleEndian.Uint32(b)
	switch {
	case length == 0:
		return nil, 0, ErrEndMarker
	case length > MaxFrameSize:
		return nil, 0, ErrFrameTooLarge
	case uint64(length) > uint64(len(b)-HeaderSize):
		return nil, 0, ErrShortFrame
	}
	n = HeaderSize + int(length)
	payload = b[HeaderSize:n:n]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, ErrChecksum
	}
	return payload, n, nil
}
