package httpsession

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Values are decoded by hand rather than by msgpack.Unmarshal because
// msgpack converts leniently: 300 decodes into an int8 as 44, a str into a
// []byte, 1.5 into an int as 1. Here a value decodes only into a Go type
// that holds it exactly, and anything else is an error (see GetAs). Struct
// fields are matched as msgpack names them, so that what Put stored with
// msgpack's encoder comes back.

// mismatch is a value that does not fit the Go type asked for.
type mismatch struct {
	what string
	into reflect.Type
}

func (e *mismatch) Error() string { return e.what + " does not fit " + e.into.String() }

// decodeError turns what decoding key's value returned into this package's
// error: ErrValueType for a misfit, errBadData for damage.
func decodeError(key string, err error) error {
	if m, ok := errors.AsType[*mismatch](err); ok {
		return fmt.Errorf("%w: %q: %v", ErrValueType, key, m)
	}
	return fmt.Errorf("%w: %q: %v", errBadData, key, err)
}

var (
	timeType   = reflect.TypeFor[time.Time]()
	anyType    = reflect.TypeFor[any]()
	stringType = reflect.TypeFor[string]()
	bytesType  = reflect.TypeFor[[]byte]()
	boolType   = reflect.TypeFor[bool]()
	intType    = reflect.TypeFor[int]()
	int64Type  = reflect.TypeFor[int64]()
	floatType  = reflect.TypeFor[float64]()

	// Types that decode themselves; msgpack's encoder lets their
	// counterparts encode them, so only they know what fits.
	selfDecoders = []reflect.Type{
		reflect.TypeFor[msgpack.CustomDecoder](),
		reflect.TypeFor[msgpack.Unmarshaler](),
		reflect.TypeFor[encoding.BinaryUnmarshaler](),
		reflect.TypeFor[encoding.TextUnmarshaler](),
	}
)

// decoder decodes one value of encoded session data exactly.
type decoder struct{ rd *reader }

// decodeRaw decodes raw, one encoded value, with fn, once checkLengths has
// found it whole.
func decodeRaw[T any](raw []byte, fn func(decoder) (T, error)) (T, error) {
	if err := checkLengths(raw); err != nil {
		var zero T
		return zero, err
	}
	rd := newReader(raw)
	defer rd.free()
	v, err := fn(decoder{rd})
	if err == nil && rd.r.Len() != 0 {
		err = fmt.Errorf("%d trailing bytes", rd.r.Len())
	}
	return v, err
}

// plainString decodes raw without a decoder if it is exactly one msgpack
// str, as every stored string is; ok is false for anything else, which
// then takes the general path (and gets its error there).
func plainString(raw []byte) (s string, ok bool) {
	start, end, ok := strSpan(raw, 0)
	if !ok || end != len(raw) {
		return "", false
	}
	return string(raw[start:end]), true
}

// decodeInto decodes raw into v, which must be settable.
func decodeInto(raw []byte, v reflect.Value) error {
	_, err := decodeRaw(raw, func(x decoder) (struct{}, error) { return struct{}{}, x.into(v) })
	return err
}

// decodeGeneric decodes raw into the Go types Get documents.
func decodeGeneric(raw []byte) (any, error) { return decodeRaw(raw, decoder.generic) }

// checkLengths checks that raw is exactly one encoded value whose every
// length fits in it. msgpack allocates what a str, bin or ext header
// declares before reading it, so damaged data declaring gigabytes would
// otherwise cost gigabytes; after this check nothing allocated while
// decoding raw exceeds a small multiple of its size.
func checkLengths(raw []byte) error {
	i, err := skip(raw, 0, 1)
	if err != nil {
		return err
	}
	if i != len(raw) {
		return fmt.Errorf("%d trailing bytes", len(raw)-i)
	}
	return nil
}

// skip returns the offset just past the pending whole values that start at
// raw[i], checking that every length they declare fits in raw.
func skip(raw []byte, i, pending int) (int, error) {
	for pending > 0 {
		if i >= len(raw) {
			return 0, errors.New("truncated")
		}
		c := raw[i]
		i++
		pending--
		var size, lenBytes, extra int // payload size, or the bytes holding it
		switch {
		case c <= msgpcode.PosFixedNumHigh || c >= msgpcode.NegFixedNumLow,
			c == msgpcode.Nil, c == msgpcode.False, c == msgpcode.True:
		case msgpcode.IsFixedMap(c):
			pending += 2 * int(c&msgpcode.FixedMapMask)
		case msgpcode.IsFixedArray(c):
			pending += int(c & msgpcode.FixedArrayMask)
		case msgpcode.IsFixedString(c):
			size = int(c & msgpcode.FixedStrMask)
		case c == msgpcode.Float:
			size = 4
		case c == msgpcode.Double:
			size = 8
		case c >= msgpcode.Uint8 && c <= msgpcode.Uint64:
			size = 1 << (c - msgpcode.Uint8)
		case c >= msgpcode.Int8 && c <= msgpcode.Int64:
			size = 1 << (c - msgpcode.Int8)
		case c >= msgpcode.FixExt1 && c <= msgpcode.FixExt16:
			size = 1 + 1<<(c-msgpcode.FixExt1)
		case c >= msgpcode.Bin8 && c <= msgpcode.Bin32:
			lenBytes = 1 << (c - msgpcode.Bin8)
		case c >= msgpcode.Str8 && c <= msgpcode.Str32:
			lenBytes = 1 << (c - msgpcode.Str8)
		case c >= msgpcode.Ext8 && c <= msgpcode.Ext32:
			lenBytes, extra = 1<<(c-msgpcode.Ext8), 1
		case c == msgpcode.Array16 || c == msgpcode.Array32 || c == msgpcode.Map16 || c == msgpcode.Map32:
			lenBytes = 2
			if c == msgpcode.Array32 || c == msgpcode.Map32 {
				lenBytes = 4
			}
		default:
			return 0, fmt.Errorf("code 0x%02x", c)
		}
		if lenBytes > 0 {
			if i+lenBytes > len(raw) {
				return 0, errors.New("truncated")
			}
			n := 0
			for _, b := range raw[i : i+lenBytes] {
				n = n<<8 | int(b)
			}
			if n < 0 { // a 32-bit length past a 32-bit int
				return 0, errors.New("a length past the end of the data")
			}
			i += lenBytes
			switch c {
			case msgpcode.Array16, msgpcode.Array32:
				pending += n
			case msgpcode.Map16, msgpcode.Map32:
				pending += 2 * n
			default:
				size = n + extra
			}
		}
		if i += size; i > len(raw) || pending > len(raw)-i {
			return 0, errors.New("a length past the end of the data")
		}
	}
	return i, nil
}

func (x decoder) peek() (byte, error) { return x.rd.d.PeekCode() }

func isUint(c byte) bool {
	return c <= msgpcode.PosFixedNumHigh || (c >= msgpcode.Uint8 && c <= msgpcode.Uint64)
}
func isInt(c byte) bool {
	return c >= msgpcode.NegFixedNumLow || (c >= msgpcode.Int8 && c <= msgpcode.Int64)
}
func isArray(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}
func isMap(c byte) bool { return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 }

// describe names the kind of value c starts, for errors.
func describe(c byte) string {
	switch {
	case c == msgpcode.Nil:
		return "nil"
	case c == msgpcode.True || c == msgpcode.False:
		return "a bool"
	case isUint(c) || isInt(c):
		return "an integer"
	case c == msgpcode.Float || c == msgpcode.Double:
		return "a float"
	case msgpcode.IsString(c):
		return "a string"
	case msgpcode.IsBin(c):
		return "a byte string"
	case isArray(c):
		return "an array"
	case isMap(c):
		return "a map"
	case msgpcode.IsExt(c):
		return "an extension value"
	}
	return fmt.Sprintf("code 0x%02x", c)
}

// integer reads an integer of any width: as n if it is negative, as u
// otherwise.
func (x decoder) integer(c byte, into reflect.Type) (n int64, u uint64, neg bool, err error) {
	switch {
	case isUint(c):
		u, err = x.rd.d.DecodeUint64()
		return 0, u, false, err
	case isInt(c):
		if n, err = x.rd.d.DecodeInt64(); n < 0 {
			return n, 0, true, err
		}
		return 0, uint64(n), false, err
	}
	return 0, 0, false, &mismatch{describe(c), into}
}

// signed reads an integer that must fit in bits bits, signed.
func (x decoder) signed(bits int, into reflect.Type) (int64, error) {
	c, err := x.peek()
	if err != nil {
		return 0, err
	}
	n, u, neg, err := x.integer(c, into)
	switch {
	case err != nil:
		return 0, err
	case neg:
		if bits < 64 && n < -1<<(bits-1) {
			return 0, &mismatch{strconv.FormatInt(n, 10), into}
		}
		return n, nil
	case u > 1<<(bits-1)-1:
		return 0, &mismatch{strconv.FormatUint(u, 10), into}
	}
	return int64(u), nil
}

// unsigned reads a non-negative integer that must fit in bits bits.
func (x decoder) unsigned(bits int, into reflect.Type) (uint64, error) {
	c, err := x.peek()
	if err != nil {
		return 0, err
	}
	n, u, neg, err := x.integer(c, into)
	switch {
	case err != nil:
		return 0, err
	case neg:
		return 0, &mismatch{strconv.FormatInt(n, 10), into}
	case bits < 64 && u >= 1<<bits:
		return 0, &mismatch{strconv.FormatUint(u, 10), into}
	}
	return u, nil
}

// float reads a float, or an integer the float type represents exactly,
// into a float of bits bits.
func (x decoder) float(bits int, into reflect.Type) (float64, error) {
	c, err := x.peek()
	if err != nil {
		return 0, err
	}
	var f float64
	switch c {
	case msgpcode.Float:
		f32, err := x.rd.d.DecodeFloat32()
		return float64(f32), err
	case msgpcode.Double:
		if f, err = x.rd.d.DecodeFloat64(); err != nil {
			return 0, err
		}
		if bits == 32 && float64(float32(f)) != f && !math.IsNaN(f) {
			return 0, &mismatch{strconv.FormatFloat(f, 'g', -1, 64), into}
		}
		return f, nil
	}
	n, u, neg, err := x.integer(c, into)
	if err != nil {
		return 0, err
	}
	var exact bool
	if neg {
		f = float64(n)
		exact = f > math.MinInt64 && int64(f) == n || f == math.MinInt64 && n == math.MinInt64
	} else {
		f = float64(u)
		exact = f < math.MaxUint64 && uint64(f) == u
	}
	if bits == 32 {
		exact = exact && float64(float32(f)) == f
	}
	if !exact {
		return 0, &mismatch{"the integer " + strconv.FormatFloat(f, 'f', 0, 64), into}
	}
	return f, nil
}

func (x decoder) string(into reflect.Type) (string, error) {
	c, err := x.peek()
	if err != nil {
		return "", err
	}
	if !msgpcode.IsString(c) {
		return "", &mismatch{describe(c), into}
	}
	return x.rd.d.DecodeString()
}

func (x decoder) bytes(into reflect.Type) ([]byte, error) {
	c, err := x.peek()
	if err != nil {
		return nil, err
	}
	if !msgpcode.IsBin(c) && c != msgpcode.Nil {
		return nil, &mismatch{describe(c), into}
	}
	return x.rd.d.DecodeBytes()
}

func (x decoder) bool(into reflect.Type) (bool, error) {
	c, err := x.peek()
	if err != nil {
		return false, err
	}
	if c != msgpcode.True && c != msgpcode.False {
		return false, &mismatch{describe(c), into}
	}
	return x.rd.d.DecodeBool()
}

// time reads msgpack's timestamp extension, in UTC: the zone a time was
// stored in is not kept, so the one answer that does not depend on the
// server's TZ.
func (x decoder) time(into reflect.Type) (time.Time, error) {
	c, err := x.peek()
	if err != nil {
		return time.Time{}, err
	}
	if id, ok := x.extType(c); !ok || id != -1 {
		return time.Time{}, &mismatch{describe(c), into}
	}
	t, err := x.rd.d.DecodeTime()
	return t.UTC(), err
}

// extType returns the type of the extension value c starts, without
// reading past c.
func (x decoder) extType(c byte) (int8, bool) {
	var off int
	switch {
	case msgpcode.IsFixedExt(c):
		off = 1
	case c == msgpcode.Ext8:
		off = 2
	case c == msgpcode.Ext16:
		off = 3
	case c == msgpcode.Ext32:
		off = 5
	default:
		return 0, false
	}
	p := x.rd.pos() + off
	if p >= len(x.rd.b) {
		return 0, false
	}
	return int8(x.rd.b[p]), true
}

// length reads an array or map header of at most what the rest of the data
// can hold, each entry taking at least per bytes, so that a damaged header
// cannot make the decoder allocate gigabytes.
func (x decoder) length(mapHeader bool) (int, error) {
	var n int
	var err error
	per := 1
	if mapHeader {
		n, err = x.rd.d.DecodeMapLen()
		per = 2
	} else {
		n, err = x.rd.d.DecodeArrayLen()
	}
	if err == nil && n > x.rd.r.Len()/per {
		err = fmt.Errorf("length %d past the end of the data", n)
	}
	return max(n, 0), err
}

// generic decodes a value into the Go types Get documents.
func (x decoder) generic() (any, error) {
	d := x.rd.d
	c, err := x.peek()
	if err != nil {
		return nil, err
	}
	switch {
	case c == msgpcode.Nil:
		return nil, d.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		return d.DecodeBool()
	case isUint(c) || isInt(c):
		n, u, neg, err := x.integer(c, anyType)
		switch {
		case neg && int64(int(n)) == n:
			return int(n), err
		case neg:
			return n, err
		case u <= math.MaxInt:
			return int(u), err
		case u <= math.MaxInt64:
			return int64(u), err
		}
		return u, err
	case c == msgpcode.Float || c == msgpcode.Double:
		return d.DecodeFloat64()
	case msgpcode.IsString(c):
		return d.DecodeString()
	case msgpcode.IsBin(c):
		return d.DecodeBytes()
	case isArray(c):
		n, err := x.length(false)
		if err != nil {
			return nil, err
		}
		s := make([]any, n)
		for i := range s {
			if s[i], err = x.generic(); err != nil {
				return nil, err
			}
		}
		return s, nil
	case isMap(c):
		return x.genericMap()
	case msgpcode.IsExt(c):
		if id, ok := x.extType(c); ok && id == -1 {
			return x.time(timeType)
		}
		// Another extension: whatever msgpack.RegisterExt says it is.
		return d.DecodeInterface()
	}
	return nil, fmt.Errorf("code 0x%02x", c)
}

// genericMap decodes a map into a map[string]any, or a map[any]any if one
// of its keys is not a string.
func (x decoder) genericMap() (any, error) {
	n, err := x.length(true)
	if err != nil {
		return nil, err
	}
	keys, vals := make([]any, n), make([]any, n)
	strs := true
	for i := range n {
		if keys[i], err = x.generic(); err != nil {
			return nil, err
		}
		if vals[i], err = x.generic(); err != nil {
			return nil, err
		}
		if _, ok := keys[i].(string); !ok {
			strs = false
		}
	}
	if strs {
		m := make(map[string]any, n)
		for i, k := range keys {
			m[k.(string)] = vals[i]
		}
		return m, nil
	}
	m := make(map[any]any, n)
	for i, k := range keys {
		if k != nil && !reflect.TypeOf(k).Comparable() {
			return nil, &mismatch{"a map with a key of type " + reflect.TypeOf(k).String(), reflect.TypeFor[map[any]any]()}
		}
		m[k] = vals[i]
	}
	return m, nil
}
