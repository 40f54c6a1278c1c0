package wal

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DecodeRecord decodes one canonical payload into r, strictly (see the
// package comment): any non-canonical encoding, wrong type, wrong array
// length, unknown or nested op, LSN 0 or trailing byte is an error wrapping
// ErrMalformed. It never panics.
//
// r's previous contents are discarded, but the capacity of r.Ops is reused, so
// decoding into the same Record does not allocate in steady state. On success
// r.UserID and r.Data alias payload (nil when empty); on error r holds
// whatever was decoded so far. For ops other than Batch, r.Ops has length 0
// but may be non-nil.
func DecodeRecord(payload []byte, r *Record) error {
	ops := r.Ops[:0]
	*r = Record{}
	r.Ops = ops // keeps the capacity for the next decode, whatever the op
	c := cursor{b: payload}
	n := c.arrayLen()
	op := Op(c.uint(math.MaxUint8, "op"))
	if c.bad {
		return c.error()
	}
	switch op {
	case OpPut, OpDelete, OpTouch:
		c.expectLen(n, fieldCount(op)+1, op)
		c.body(r, op)
	case OpBatch:
		c.expectLen(n, batchFields+1, op)
		m := c.arrayLen()
		if !c.bad && m == 0 {
			c.fail("batch", "no ops")
		}
		for i := 0; i < m && !c.bad; i++ {
			ops = append(ops, Record{})
			c.sub(&ops[i])
		}
		r.Op = OpBatch
		r.Ops = ops
	default:
		c.fail("op", fmt.Sprintf("unknown op %d", op))
	}
	r.LSN = c.uint(math.MaxUint64, "lsn")
	switch {
	case c.bad:
		return c.error()
	case r.LSN == 0:
		return fmt.Errorf("%w: lsn 0", ErrMalformed)
	case len(c.b) != 0:
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(c.b))
	}
	return nil
}

func fieldCount(op Op) int {
	switch op {
	case OpPut:
		return putFields
	case OpDelete:
		return deleteFields
	case OpTouch:
		return touchFields
	}
	return batchFields
}

// cursor reads MessagePack values from the front of b. The first failure
// sticks, empties b and turns every later read into a no-op returning zero,
// so callers check once per record. A failure is kept as two constant
// strings rather than an error so that the hot methods stay small enough to
// inline; error builds the error once, at the end.
type cursor struct {
	b       []byte
	bad     bool
	field   string
	problem string
}

func (c *cursor) fail(field, problem string) {
	if !c.bad {
		c.bad, c.field, c.problem = true, field, problem
	}
	c.b = nil
}

func (c *cursor) error() error {
	if !c.bad {
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrMalformed, c.field, c.problem)
}

func (c *cursor) expectLen(got, want int, op Op) {
	if !c.bad && got != want {
		c.fail(op.String(), fmt.Sprintf("array has %d elements, want %d", got, want))
	}
}

// sub decodes one Batch element: a Put, Delete or Touch without its LSN.
func (c *cursor) sub(r *Record) {
	n := c.arrayLen()
	op := Op(c.uint(math.MaxUint8, "op"))
	if c.bad {
		return
	}
	switch op {
	case OpPut, OpDelete, OpTouch:
		c.expectLen(n, fieldCount(op), op)
		c.body(r, op)
	default:
		c.fail("batch", "holds "+op.String())
	}
}

// body decodes the fields after the op of a Put, Delete or Touch.
func (c *cursor) body(r *Record, op Op) {
	r.Op = op
	r.Key.Digest = c.digest()
	r.Key.Hint = uint16(c.uint(math.MaxUint16, "hint"))
	switch op {
	case OpPut:
		r.Version = c.uint(math.MaxUint64, "version")
		r.Created = c.int("created")
		r.LastAccess = c.int("lastAccess")
		r.Idle = c.int("idle")
		r.Absolute = c.int("absolute")
		r.UserID = c.str("userID")
		r.SealKeyID = uint32(c.uint(math.MaxUint32, "sealKeyID"))
		r.Data = c.bin()
		r.Fingerprint = c.uint(math.MaxUint64, "fingerprint")
		r.AuthAt = c.int("authAt")
		r.Label = c.str("label")
	case OpTouch:
		r.LastAccess = c.int("lastAccess")
	}
}

// take returns the next n bytes, or nil after recording a truncation.
func (c *cursor) take(n int, field string) []byte {
	if uint(n) > uint(len(c.b)) {
		c.fail(field, "truncated")
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) byte1(field string) byte {
	if len(c.b) == 0 {
		c.fail(field, "truncated")
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

// size reads a big-endian length or integer of width bytes.
func (c *cursor) size(width int, field string) uint64 {
	b := c.take(width, field)
	switch {
	case b == nil:
		return 0
	case width == 1:
		return uint64(b[0])
	case width == 2:
		return uint64(binary.BigEndian.Uint16(b))
	case width == 4:
		return uint64(binary.BigEndian.Uint32(b))
	}
	return binary.BigEndian.Uint64(b)
}

// uintBody decodes the value of a uint whose type byte t was already read,
// enforcing the smallest encoding. ok is false if t is not a uint type.
func (c *cursor) uintBody(t byte, field string) (v uint64, ok bool) {
	var width int
	var min uint64 // smallest value that needs this width
	switch t {
	case mpUint8:
		width, min = 1, mpPosFixintMax+1
	case mpUint16:
		width, min = 2, 0x100
	case mpUint32:
		width, min = 4, 0x10000
	case mpUint64:
		width, min = 8, 0x100000000
	default:
		if t <= mpPosFixintMax {
			return uint64(t), true
		}
		return 0, false
	}
	v = c.size(width, field)
	if !c.bad && v < min {
		c.fail(field, "non-canonical uint")
	}
	return v, true
}

func (c *cursor) uint(max uint64, field string) uint64 {
	t := c.byte1(field)
	if c.bad {
		return 0
	}
	v, ok := c.uintBody(t, field)
	switch {
	case !ok:
		c.fail(field, "want uint")
	case v > max:
		c.fail(field, "out of range")
	}
	return v
}

func (c *cursor) int(field string) int64 {
	t := c.byte1(field)
	if c.bad {
		return 0
	}
	if v, ok := c.uintBody(t, field); ok {
		if v > math.MaxInt64 {
			c.fail(field, "out of range")
		}
		return int64(v)
	}
	if t >= mpNegFixintMin {
		return int64(int8(t))
	}
	var v, max int64 // max: largest value that needs this width
	switch t {
	case mpInt8:
		v, max = int64(int8(c.size(1, field))), -33
	case mpInt16:
		v, max = int64(int16(c.size(2, field))), math.MinInt8-1
	case mpInt32:
		v, max = int64(int32(c.size(4, field))), math.MinInt16-1
	case mpInt64:
		v, max = int64(c.size(8, field)), math.MinInt32-1
	default:
		c.fail(field, "want int")
		return 0
	}
	if !c.bad && v > max {
		c.fail(field, "non-canonical int")
	}
	return v
}

func (c *cursor) arrayLen() int {
	t := c.byte1("array")
	if c.bad {
		return 0
	}
	var n, min uint64
	switch {
	case t&0xf0 == mpFixarray:
		return int(t & 0x0f)
	case t == mpArray16:
		n, min = c.size(2, "array"), 16
	case t == mpArray32:
		n, min = c.size(4, "array"), 0x10000
	default:
		c.fail("array", "want array")
		return 0
	}
	switch {
	case c.bad:
		return 0
	case n < min:
		c.fail("array", "non-canonical length")
		return 0
	case n > uint64(len(c.b)):
		// Each element takes at least one byte: refuse before anyone
		// sizes a slice from n.
		c.fail("array", "length exceeds payload")
		return 0
	}
	return int(n)
}

func (c *cursor) str(field string) []byte {
	t := c.byte1(field)
	if c.bad {
		return nil
	}
	var n, min uint64
	switch {
	case t&0xe0 == mpFixstr:
		n = uint64(t & 0x1f)
	case t == mpStr8:
		n, min = c.size(1, field), 32
	case t == mpStr16:
		n, min = c.size(2, field), 0x100
	case t == mpStr32:
		n, min = c.size(4, field), 0x10000
	default:
		c.fail(field, "want str")
		return nil
	}
	return c.blob(n, min, field)
}

func (c *cursor) bin() []byte {
	t := c.byte1("data")
	if c.bad {
		return nil
	}
	var n, min uint64
	switch t {
	case mpBin8:
		n = c.size(1, "data")
	case mpBin16:
		n, min = c.size(2, "data"), 0x100
	case mpBin32:
		n, min = c.size(4, "data"), 0x10000
	default:
		c.fail("data", "want bin")
		return nil
	}
	return c.blob(n, min, "data")
}

func (c *cursor) blob(n, min uint64, field string) []byte {
	switch {
	case c.bad:
		return nil
	case n < min:
		c.fail(field, "non-canonical length")
		return nil
	case n > uint64(len(c.b)):
		c.fail(field, "truncated")
		return nil
	case n == 0:
		return nil
	}
	return c.take(int(n), field)
}

func (c *cursor) digest() (d [16]byte) {
	if len(c.b) < 2 || c.b[0] != mpBin8 || c.b[1] != byte(len(d)) {
		c.fail("digest", "want bin of 16 bytes")
		return d
	}
	c.b = c.b[2:]
	copy(d[:], c.take(len(d), "digest"))
	return d
}
