package wal

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func samplePut() Record {
	r := Record{
		Op: OpPut, LSN: 7,
		Key:     Key{Digest: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, Hint: 0xbeef},
		Version: 3, Created: 1_700_000_000_000_000_000, LastAccess: 1_700_000_001_000_000_000,
		Idle: 30 * 60 * 1e9, Absolute: 1_700_086_400_000_000_000,
		UserID: []byte("user-42"), SealKeyID: 2, Data: bytes.Repeat([]byte{0xab}, 200),
		Fingerprint: 0x9e3779b97f4a7c15, AuthAt: 1_700_000_000_500_000_000, Label: []byte("phone"),
	}
	return r
}

func TestAppendRecordDecodeRecordRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var got Record
	for i := 0; i < 2000; i++ {
		want := RandomRecord(rng)
		want.LSN = randomUint(rng) | 1
		payload := AppendRecord(nil, &want)
		require.NoError(t, DecodeRecord(payload, &got), "record %d", i)
		assert.Equal(t, want, CloneRecord(&got), "record %d", i)
		assert.Equal(t, payload, AppendRecord(nil, &got), "re-encode of record %d", i)
	}
}

// TestPutGoldenBytes pins the Put layout of format version 3 byte by byte,
// written out by hand from the package comment rather than by the encoder,
// so that a change to the encoder that changes the format fails here.
func TestPutGoldenBytes(t *testing.T) {
	r := Record{
		Op: OpPut, LSN: 0x1234,
		Key:     Key{Digest: [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, Hint: 0x0102},
		Version: 1, Created: 2, LastAccess: -1, Idle: 0x80, Absolute: 0x10000,
		UserID: []byte("u"), Data: []byte{0xaa, 0xbb}, Fingerprint: 0xfedcba9876543210,
		AuthAt: 3, Label: []byte("pc"),
	}
	want := bytes.Join([][]byte{
		{0x9f},       // fixarray of 15
		{0x01},       // op Put
		{0xc4, 0x10}, // digest: bin8 of 16
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		{0xcd, 0x01, 0x02},             // hint: uint16
		{0x01},                         // version
		{0x02},                         // created
		{0xff},                         // lastAccess: negative fixint -1
		{0xcc, 0x80},                   // idle: uint8
		{0xce, 0x00, 0x01, 0x00, 0x00}, // absolute: uint32
		{0xa1, 'u'},                    // userID: fixstr
		{0x00},                         // sealKeyID: plaintext
		{0xc4, 0x02, 0xaa, 0xbb},       // data: bin8
		{0xcf, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}, // fingerprint: uint64
		{0x03},             // authAt
		{0xa2, 'p', 'c'},   // label: fixstr
		{0xcd, 0x12, 0x34}, // lsn: uint16
	}, nil)
	assert.Equal(t, want, AppendRecord(nil, &r))
	var got Record
	require.NoError(t, DecodeRecord(want, &got))
	assert.Equal(t, r, CloneRecord(&got))

	r.Fingerprint = 0 // unbound: one byte
	want = append(want[:len(want)-16], 0x00, 0x03, 0xa2, 'p', 'c', 0xcd, 0x12, 0x34)
	assert.Equal(t, want, AppendRecord(nil, &r))
}

func TestPendingMatchesAppendRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var p Pending
	for i := 0; i < 1000; i++ {
		r := RandomRecord(rng)
		require.NoError(t, p.Encode(&r))
		assert.Equal(t, encodedSize(&r), p.Len(), "encodedSize of record %d", i)
		r.LSN = randomUint(rng) | 1
		frame := p.appendTo([]byte("prefix"), r.LSN)
		require.Equal(t, []byte("prefix"), frame[:6])
		assert.Equal(t, AppendFrame(nil, AppendRecord(nil, &r)), frame[6:], "record %d", i)
	}
}

func TestPendingEncodeRejects(t *testing.T) {
	big := make([]byte, MaxFrameSize)
	cases := []struct {
		name string
		r    Record
		want error
	}{
		{"unknown op", Record{Op: 9}, ErrInvalidRecord},
		{"zero op", Record{}, ErrInvalidRecord},
		{"empty batch", Record{Op: OpBatch}, ErrInvalidRecord},
		{"nested batch", Record{Op: OpBatch, Ops: []Record{{Op: OpBatch, Ops: []Record{{Op: OpDelete}}}}}, ErrInvalidRecord},
		{"too large", Record{Op: OpPut, Data: big}, ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p Pending
			p.buf = append(p.buf, "stale"...)
			assert.ErrorIs(t, p.Encode(&tc.r), tc.want)
			assert.Zero(t, p.Len(), "a failed Encode leaves p empty")
			assert.Less(t, cap(p.buf), MaxFrameSize, "no buffer sized for the rejected record")
		})
	}
}

// TestAppendRecordInvalidIsRejectedOnDecode pins AppendRecord's promise for
// records that fail Validate.
func TestAppendRecordInvalidIsRejectedOnDecode(t *testing.T) {
	for _, r := range []Record{
		{Op: 9, LSN: 1},
		{Op: OpBatch, LSN: 1},
		{Op: OpBatch, LSN: 1, Ops: []Record{{Op: OpBatch}}},
		{Op: OpBatch, LSN: 1, Ops: []Record{{Op: 0}}},
		{Op: OpDelete, LSN: 0},
	} {
		var got Record
		assert.ErrorIs(t, DecodeRecord(AppendRecord(nil, &r), &got), ErrMalformed, "%+v", r)
	}
}

func TestDecodeRecordReusesOps(t *testing.T) {
	batch := Record{Op: OpBatch, LSN: 5, Ops: []Record{{Op: OpDelete}, {Op: OpTouch, LastAccess: 9}}}
	payload := AppendRecord(nil, &batch)
	var r Record
	require.NoError(t, DecodeRecord(payload, &r))
	allocs := testing.AllocsPerRun(100, func() {
		if err := DecodeRecord(payload, &r); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
	put := samplePut()
	require.NoError(t, DecodeRecord(AppendRecord(nil, &put), &r))
	assert.Empty(t, r.Ops)
	assert.Equal(t, 2, cap(r.Ops), "capacity kept across ops")
}

// TestIntegerEncodingBoundaries checks every width change against the
// reference implementation's canonical choice (its EncodeUint and EncodeInt
// pick the smallest form) and reads each value back.
func TestIntegerEncodingBoundaries(t *testing.T) {
	var ref bytes.Buffer
	enc := msgpack.NewEncoder(&ref)
	uints := []uint64{0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000, math.MaxUint64}
	for _, v := range uints {
		ref.Reset()
		require.NoError(t, enc.EncodeUint(v))
		assert.Equal(t, ref.Bytes(), appendUint(nil, v), "uint %d", v)
		c := cursor{b: ref.Bytes()}
		assert.Equal(t, v, c.uint(math.MaxUint64, "v"))
		assert.NoError(t, c.error())
	}
	ints := []int64{0, 1, 127, 128, -1, -32, -33, -128, -129, -32768, -32769,
		math.MinInt32, math.MinInt32 - 1, math.MinInt64, math.MaxInt64}
	for _, v := range ints {
		ref.Reset()
		require.NoError(t, enc.EncodeInt(v))
		got := appendInt(nil, v)
		assert.Equal(t, ref.Bytes(), got, "int %d", v)
		var back any
		require.NoError(t, msgpack.Unmarshal(got, &back))
		assert.EqualValues(t, v, toInt64(t, back), "int %d", v)
		c := cursor{b: got}
		assert.Equal(t, v, c.int("v"))
		assert.NoError(t, c.error())
		assert.Empty(t, c.b)
	}
}

func toInt64(t *testing.T, v any) int64 {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	}
	t.Fatalf("not an integer: %T", v)
	return 0
}

// TestPayloadIsGenericMessagePack proves the payload is real MessagePack:
// a generic decoder that knows nothing of our schema reads the values back.
func TestPayloadIsGenericMessagePack(t *testing.T) {
	put := samplePut()
	del := Record{Op: OpDelete, LSN: 300, Key: put.Key}
	touch := Record{Op: OpTouch, LSN: 1 << 40, Key: put.Key, LastAccess: -5}
	batch := Record{Op: OpBatch, LSN: 9, Ops: []Record{del, put}}
	batch.Ops[0].LSN, batch.Ops[1].LSN = 0, 0

	digest := put.Key.Digest[:]
	putFields := []any{uint64(1), digest, uint64(0xbeef), uint64(3), put.Created, put.LastAccess,
		put.Idle, put.Absolute, "user-42", uint64(2), put.Data, put.Fingerprint, put.AuthAt, "phone"}
	cases := []struct {
		name string
		r    Record
		want []any
	}{
		{"put", put, append(append([]any{}, putFields...), uint64(7))},
		{"delete", del, []any{uint64(2), digest, uint64(0xbeef), uint64(300)}},
		{"touch", touch, []any{uint64(3), digest, uint64(0xbeef), int64(-5), uint64(1 << 40)}},
		{"batch", batch, []any{uint64(4), []any{
			[]any{uint64(2), digest, uint64(0xbeef)},
			putFields,
		}, uint64(9)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got any
			require.NoError(t, msgpack.Unmarshal(AppendRecord(nil, &tc.r), &got))
			assert.Equal(t, normalize(tc.want), normalize(got))
		})
	}
}

// normalize maps every integer to int64 or uint64 so that values compare
// regardless of the width the generic decoder picked.
func normalize(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case int8:
		return normalize(int64(x))
	case int16:
		return normalize(int64(x))
	case int32:
		return normalize(int64(x))
	case int64:
		if x >= 0 {
			return uint64(x)
		}
		return x
	case uint8:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint32:
		return uint64(x)
	}
	return v
}

func TestDecodeRecordStrict(t *testing.T) {
	put := samplePut()
	valid := AppendRecord(nil, &put)
	digest := append([]byte{mpBin8, 16}, put.Key.Digest[:]...)
	del := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	b := func(v ...byte) []byte { return v }
	goodDel := del(b(0x94, 2), digest, b(0x05), b(0x07))

	cases := []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"not an array", b(0x02)},
		{"map instead of array", b(0x84, 2)},
		{"array16 for 4 elements", del(b(mpArray16, 0, 4, 2), digest, b(5, 7))},
		{"delete with 5 elements", del(b(0x95, 2), digest, b(5, 7, 7))},
		{"delete with 3 elements", del(b(0x93, 2), digest, b(5))},
		{"unknown op", del(b(0x94, 9), digest, b(5, 7))},
		{"op 0", del(b(0x94, 0), digest, b(5, 7))},
		{"op as uint8", del(b(0x94, mpUint8, 2), digest, b(5, 7))},
		{"op as int8", del(b(0x94, mpInt8, 2), digest, b(5, 7))},
		{"digest as str", del(b(0x94, 2, 0xb0), put.Key.Digest[:], b(5, 7))},
		{"digest 15 bytes", del(b(0x94, 2, mpBin8, 15), put.Key.Digest[:15], b(5, 7))},
		{"digest 17 bytes", del(b(0x94, 2, mpBin8, 17), put.Key.Digest[:], b(0, 5, 7))},
		{"digest as bin16", del(b(0x94, 2, mpBin16, 0, 16), put.Key.Digest[:], b(5, 7))},
		{"hint out of range", del(b(0x94, 2), digest, b(mpUint32, 0, 1, 0, 0, 7))},
		{"hint non-canonical", del(b(0x94, 2), digest, b(mpUint16, 0, 5, 7))},
		{"hint negative", del(b(0x94, 2), digest, b(0xff, 7))},
		{"lsn 0", del(b(0x94, 2), digest, b(5, 0))},
		{"lsn uint64 small", del(b(0x94, 2), digest, b(5, mpUint64, 0, 0, 0, 0, 0, 0, 0, 7))},
		{"lsn uint8 small", del(b(0x94, 2), digest, b(5, mpUint8, 0x7f))},
		{"lsn as int", del(b(0x94, 2), digest, b(5, mpInt8, 7))},
		{"lsn as float", del(b(0x94, 2), digest, b(5, 0xcb, 0x40, 0x1c, 0, 0, 0, 0, 0, 0))},
		{"lsn nil", del(b(0x94, 2), digest, b(5, 0xc0))},
		{"trailing byte", append(append([]byte{}, goodDel...), 0)},
		{"truncated lsn", del(b(0x94, 2), digest, b(5, mpUint16, 1))},
		{"truncated", valid[:len(valid)-1]},
		{"batch empty", del(b(0x93, 4, 0x90, 1))},
		{"batch nested", del(b(0x93, 4, 0x91, 0x93, 4, 0x91, 0x93, 2), digest, b(5, 1, 1))},
		{"batch sub with lsn", del(b(0x93, 4, 0x91, 0x94, 2), digest, b(5, 7, 8))},
		{"batch array16 small", del(b(0x93, 4, mpArray16, 0, 1, 0x93, 2), digest, b(5, 8))},
		{"batch count beyond payload", b(0x93, 4, mpArray32, 0xff, 0xff, 0xff, 0xff, 8)},
		{"batch with 4 elements", del(b(0x94, 4, 0x91, 0x93, 2), digest, b(5, 8, 8))},
	}

	// Put field mutations, built from a valid Put by replacing one element.
	putWith := func(i int, elem []byte) []byte {
		fields := splitPut(t, valid)
		fields[i] = elem
		return bytes.Join(fields, nil)
	}
	cases = append(cases, []struct {
		name    string
		payload []byte
	}{
		{"put version as int", putWith(4, b(mpInt8, 3))},
		{"put created int8 non-canonical", putWith(5, b(mpInt8, 5))},
		{"put created int16 fits int8", putWith(5, b(mpInt16, 0xff, 0x80))},
		{"put created int64 fits int32", putWith(5, b(mpInt64, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0))},
		{"put created uint64 above MaxInt64", putWith(5, b(mpUint64, 0x80, 0, 0, 0, 0, 0, 0, 0))},
		{"put created negative fixint as int8", putWith(5, b(mpInt8, 0xff))},
		{"put idle as str", putWith(7, b(0xa1, '1'))},
		{"put userID as bin", putWith(9, b(mpBin8, 1, 'u'))},
		{"put userID str8 short", putWith(9, b(mpStr8, 1, 'u'))},
		{"put userID str16 short", putWith(9, append(b(mpStr16, 0, 40), bytes.Repeat([]byte("u"), 40)...))},
		{"put userID nil", putWith(9, b(0xc0))},
		{"put sealKeyID too big", putWith(10, b(mpUint64, 0, 0, 0, 1, 0, 0, 0, 0))},
		{"put data as str", putWith(11, b(0xa1, 'd'))},
		{"put data bin16 short", putWith(11, b(mpBin16, 0, 1, 'd'))},
		{"put data bin32 short", putWith(11, append(b(mpBin32, 0, 0, 1, 0), make([]byte, 256)...))},
		{"put data length beyond payload", putWith(11, b(mpBin32, 0x7f, 0xff, 0xff, 0xff))},
		{"put fingerprint negative", putWith(12, b(0xff))},
		{"put fingerprint as int64", putWith(12, b(mpInt64, 0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a, 0x7c, 0x15))},
		{"put fingerprint uint64 small", putWith(12, b(mpUint64, 0, 0, 0, 0, 0, 0, 0, 5))},
		{"put fingerprint uint8 small", putWith(12, b(mpUint8, 5))},
		{"put fingerprint nil", putWith(12, b(0xc0))},
		{"put fingerprint as bin", putWith(12, b(mpBin8, 8, 0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a, 0x7c, 0x15))},
		// Format version 1's Put had no fingerprint: 12 elements, lsn last.
		{"put in version 1 layout", func() []byte {
			fields := splitPut(t, valid)
			fields[0], fields[12] = b(0x9c), nil
			return bytes.Join(fields, nil)
		}()},
		{"put 13 elements under a 12-element header", putWith(0, b(0x9c))},
		{"batch put in version 1 layout", func() []byte {
			fields := splitPut(t, valid)
			sub := bytes.Join(append([][]byte{b(0x9b)}, fields[1:12]...), nil)
			return del(b(0x93, 4, 0x91), sub, b(8))
		}()},
	}...)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r Record
			assert.NotPanics(t, func() {
				assert.ErrorIs(t, DecodeRecord(tc.payload, &r), ErrMalformed)
			})
		})
	}
	var r Record
	require.NoError(t, DecodeRecord(goodDel, &r), "the table's base Delete is valid")
	require.NoError(t, DecodeRecord(valid, &r), "the table's base Put is valid")
}

// splitPut splits a Put payload into its array header and 13 elements, so a
// test can swap one element for a malformed one.
func splitPut(t *testing.T, payload []byte) [][]byte {
	t.Helper()
	c := cursor{b: payload}
	out := [][]byte{payload[:1]}
	c.b = c.b[1:]
	mark := func(read func()) {
		before := c.b
		read()
		require.NoError(t, c.error())
		out = append(out, before[:len(before)-len(c.b)])
	}
	mark(func() { c.uint(255, "op") })
	mark(func() { c.digest() })
	mark(func() { c.uint(math.MaxUint16, "hint") })
	mark(func() { c.uint(math.MaxUint64, "version") })
	for i := 0; i < 4; i++ {
		mark(func() { c.int("time") })
	}
	mark(func() { c.str("userID") })
	mark(func() { c.uint(math.MaxUint32, "seal") })
	mark(func() { c.bin() })
	mark(func() { c.uint(math.MaxUint64, "fingerprint") })
	mark(func() { c.int("authAt") })
	mark(func() { c.str("label") })
	mark(func() { c.uint(math.MaxUint64, "lsn") })
	require.Empty(t, c.b)
	return out
}

func TestReadFrame(t *testing.T) {
	payload := []byte("hello, frame")
	frame := AppendFrame(nil, payload)
	got, n, err := ReadFrame(append(frame, 0, 0, 0, 0))
	require.NoError(t, err)
	assert.Equal(t, payload, got)
	assert.Equal(t, len(frame), n)

	flipped := bytes.Clone(frame)
	flipped[HeaderSize+3] ^= 1
	huge := binary.LittleEndian.AppendUint32(nil, MaxFrameSize+1)
	huge = append(huge, 0, 0, 0, 0)
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShortFrame},
		{"partial header", frame[:5], ErrShortFrame},
		{"partial payload", frame[:len(frame)-1], ErrShortFrame},
		{"zero length", make([]byte, 16), ErrEndMarker},
		{"too large", huge, ErrFrameTooLarge},
		{"max uint32 length", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, ErrFrameTooLarge},
		{"checksum", flipped, ErrChecksum},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, n, err := ReadFrame(tc.b)
			assert.ErrorIs(t, err, tc.want)
			assert.Nil(t, p)
			assert.Zero(t, n)
		})
	}
	allocs := testing.AllocsPerRun(10, func() { _, _, _ = ReadFrame(huge) })
	assert.Zero(t, allocs, "a too-large length allocates nothing")
}

// FuzzDecodeRecord checks the canonical property: whatever decodes
// re-encodes to the same bytes, and nothing panics.
func FuzzDecodeRecord(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 20; i++ {
		r := RandomRecord(rng)
		r.LSN = uint64(i + 1)
		f.Add(AppendRecord(nil, &r))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var r Record
		if DecodeRecord(payload, &r) != nil {
			return
		}
		if re := AppendRecord(nil, &r); !bytes.Equal(re, payload) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", payload, re)
		}
	})
}
