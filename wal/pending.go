package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Pending holds one record encoded outside any lock, ready for Log.Append:
// room for the frame header, the payload without its LSN, and the CRC of that
// payload so far. Append only has to copy it, append the LSN and finish the
// CRC. A Pending is reusable and not safe for concurrent use; keep one per
// goroutine (or in a sync.Pool) to avoid allocating per write.
type Pending struct {
	buf []byte // HeaderSize bytes of room, then the payload without the LSN
	crc uint32 // CRC-32C of buf[HeaderSize:]
}

// Reset empties p, keeping its buffer for the next Encode.
func (p *Pending) Reset() {
	p.buf = p.buf[:0]
	p.crc = 0
}

// Encode replaces p's contents with r encoded without its LSN (r.LSN is
// ignored; Append assigns it). It fails with ErrInvalidRecord if r does not
// pass Validate and with ErrTooLarge if the payload could exceed MaxFrameSize;
// p is then empty.
func (p *Pending) Encode(r *Record) error {
	p.Reset()
	if err := r.Validate(); err != nil {
		return err
	}
	// Check the size before encoding so a huge record is refused without
	// growing the buffer to hold it.
	if n := encodedSize(r); n+maxUintLen > MaxFrameSize {
		return fmt.Errorf("%w: %d-byte payload, limit %d", ErrTooLarge, n+maxUintLen, MaxFrameSize)
	}
	var room [HeaderSize]byte
	p.buf = appendBody(append(p.buf, room[:]...), r, true)
	p.crc = crc32.Checksum(p.buf[HeaderSize:], castagnoli)
	return nil
}

// Len returns the payload bytes encoded so far, without the LSN (Append adds
// 1 to 9 bytes) and without the frame header (HeaderSize more on disk). It is
// 0 for an empty Pending.
func (p *Pending) Len() int {
	if len(p.buf) < HeaderSize {
		return 0
	}
	return len(p.buf) - HeaderSize
}

// appendTo appends p as a complete frame with the given LSN to dst. It is the
// part of Append that runs under the log's lock.
func (p *Pending) appendTo(dst []byte, lsn uint64) []byte {
	off := len(dst)
	dst = append(dst, p.buf...)
	body := len(dst)
	dst = appendUint(dst, lsn)
	crc := crc32.Update(p.crc, castagnoli, dst[body:])
	binary.LittleEndian.PutUint32(dst[off:], uint32(len(dst)-off-HeaderSize))
	binary.LittleEndian.PutUint32(dst[off+4:], crc)
	return dst
}

// encodedSize returns the length of appendBody's output for a valid r,
// withLSN set, without building it.
func encodedSize(r *Record) int {
	if r.Op != OpBatch {
		return bodySize(r)
	}
	n := 1 + 1 + arrayLenSize(len(r.Ops))
	for i := range r.Ops {
		n += bodySize(&r.Ops[i])
	}
	return n
}

// bodySize is the size of a Put, Delete or Touch array, not counting the LSN.
// Every array here has fewer than 16 elements: one header byte.
func bodySize(r *Record) int {
	const key = 1 + 2 + 16 // op, bin8 type and length, digest
	n := 1 + key + uintSize(uint64(r.Key.Hint))
	switch r.Op {
	case OpPut:
		n += uintSize(r.Version) + intSize(r.Created) + intSize(r.LastAccess) +
			intSize(r.Idle) + intSize(r.Absolute) + uintSize(uint64(r.SealKeyID)) +
			strHeaderSize(len(r.UserID)) + len(r.UserID) +
			binHeaderSize(len(r.Data)) + len(r.Data) + uintSize(r.Fingerprint) +
			intSize(r.AuthAt) + strHeaderSize(len(r.Label)) + len(r.Label)
	case OpTouch:
		n += intSize(r.LastAccess)
	}
	return n
}

func uintSize(v uint64) int {
	switch {
	case v <= mpPosFixintMax:
		return 1
	case v <= 0xff:
		return 2
	case v <= 0xffff:
		return 3
	case v <= 0xffffffff:
		return 5
	}
	return 9
}

func intSize(v int64) int {
	switch {
	case v >= 0:
		return uintSize(uint64(v))
	case v >= -32:
		return 1
	case v >= -1<<7:
		return 2
	case v >= -1<<15:
		return 3
	case v >= -1<<31:
		return 5
	}
	return 9
}

func arrayLenSize(n int) int {
	switch {
	case n <= 15:
		return 1
	case n <= 0xffff:
		return 3
	}
	return 5
}

func strHeaderSize(n int) int {
	switch {
	case n <= 31:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	}
	return 5
}

func binHeaderSize(n int) int {
	switch {
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	}
	return 5
}
