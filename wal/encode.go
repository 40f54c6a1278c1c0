package wal

import "encoding/binary"

// MessagePack type bytes used by the record format.
const (
	mpPosFixintMax = 0x7f
	mpFixarray     = 0x90
	mpFixstr       = 0xa0
	mpBin8         = 0xc4
	mpBin16        = 0xc5
	mpBin32        = 0xc6
	mpUint8        = 0xcc
	mpUint16       = 0xcd
	mpUint32       = 0xce
	mpUint64       = 0xcf
	mpInt8         = 0xd0
	mpInt16        = 0xd1
	mpInt32        = 0xd2
	mpInt64        = 0xd3
	mpStr8         = 0xd9
	mpStr16        = 0xda
	mpStr32        = 0xdb
	mpArray16      = 0xdc
	mpArray32      = 0xdd
	mpNegFixintMin = 0xe0
)

// Element counts of each record array, with and without the trailing LSN.
const (
	putFields    = 14
	deleteFields = 3
	touchFields  = 4
	batchFields  = 2
)

// maxUintLen is the longest canonical encoding of a uint (the LSN).
const maxUintLen = 9

// AppendRecord appends r's canonical payload, LSN included, to dst. It does
// not validate r: a record that fails Validate encodes to a payload that
// DecodeRecord rejects.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = appendBody(dst, r, true)
	return appendUint(dst, r.LSN)
}

// appendBody appends the record array without its LSN element. The array
// header counts the LSN when withLSN is set, since a top-level record's LSN
// follows later.
func appendBody(b []byte, r *Record, withLSN bool) []byte {
	extra := 0
	if withLSN {
		extra = 1
	}
	switch r.Op {
	case OpPut:
		b = appendArrayLen(b, putFields+extra)
		b = appendKey(b, r.Op, &r.Key)
		b = appendUint(b, r.Version)
		b = appendInt(b, r.Created)
		b = appendInt(b, r.LastAccess)
		b = appendInt(b, r.Idle)
		b = appendInt(b, r.Absolute)
		b = appendStr(b, r.UserID)
		b = appendUint(b, uint64(r.SealKeyID))
		b = appendBin(b, r.Data)
		b = appendUint(b, r.Fingerprint)
		b = appendInt(b, r.AuthAt)
		return appendStr(b, r.Label)
	case OpDelete:
		b = appendArrayLen(b, deleteFields+extra)
		return appendKey(b, r.Op, &r.Key)
	case OpTouch:
		b = appendArrayLen(b, touchFields+extra)
		b = appendKey(b, r.Op, &r.Key)
		return appendInt(b, r.LastAccess)
	case OpBatch:
		if withLSN {
			b = appendArrayLen(b, batchFields+extra)
			b = appendUint(b, uint64(r.Op))
			b = appendArrayLen(b, len(r.Ops))
			for i := range r.Ops {
				b = appendBody(b, &r.Ops[i], false)
			}
			return b
		}
	}
	// Not encodable (see Validate): a lone op that the decoder refuses.
	b = appendArrayLen(b, extra+1)
	return appendUint(b, uint64(r.Op))
}

func appendKey(b []byte, op Op, k *Key) []byte {
	b = append(b, byte(op), mpBin8, byte(len(k.Digest)))
	b = append(b, k.Digest[:]...)
	return appendUint(b, uint64(k.Hint))
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= mpPosFixintMax:
		return append(b, byte(v))
	case v <= 0xff:
		return append(b, mpUint8, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, mpUint16), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v)) // negative fixint
	case v >= -1<<7:
		return append(b, mpInt8, byte(v))
	case v >= -1<<15:
		return binary.BigEndian.AppendUint16(append(b, mpInt16), uint16(v))
	case v >= -1<<31:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v))
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, mpFixarray|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, mpArray16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mpArray32), uint32(n))
}

func appendStr(b []byte, s []byte) []byte {
	n := len(s)
	switch {
	case n <= 31:
		b = append(b, mpFixstr|byte(n))
	case n <= 0xff:
		b = append(b, mpStr8, byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, mpStr16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, s []byte) []byte {
	n := len(s)
	switch {
	case n <= 0xff:
		b = append(b, mpBin8, byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, mpBin16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpBin32), uint32(n))
	}
	return append(b, s...)
}
