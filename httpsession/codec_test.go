package httpsession

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

func TestMerge(t *testing.T) {
	long := strings.Repeat("k", 40)    // str 8 key
	longer := strings.Repeat("k", 300) // str 16 key
	many := map[string]any{}
	for i := range 20 { // map 16 header
		many[string(rune('a'+i))] = i
	}
	tests := []struct {
		name  string
		base  map[string]any // nil: no data at all
		delta map[string]any // a nil value removes the key
		want  map[string]any
	}{
		{"new session", nil, map[string]any{"a": 1}, map[string]any{"a": int8(1)}},
		{"add a key", map[string]any{"a": 1}, map[string]any{"b": "x"}, map[string]any{"a": int8(1), "b": "x"}},
		{"overwrite", map[string]any{"a": 1, "b": 2}, map[string]any{"a": "new"}, map[string]any{"a": "new", "b": int8(2)}},
		{"remove", map[string]any{"a": 1, "b": 2}, map[string]any{"a": nil}, map[string]any{"b": int8(2)}},
		{"remove the last key", map[string]any{"a": 1}, map[string]any{"a": nil}, map[string]any{}},
		{"long keys", map[string]any{long: 1}, map[string]any{longer: 2}, map[string]any{long: int8(1), longer: int8(2)}},
		{"many keys", many, map[string]any{"zz": true}, withKey(many, "zz", true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base []byte
			if tt.base != nil {
				base = marshalSorted(t, tt.base)
			}
			baseCopy := bytes.Clone(base)
			delta := map[string]change{}
			for k, v := range tt.delta {
				if v == nil {
					delta[k] = change{removed: true}
				} else {
					delta[k] = change{raw: mustMarshal(t, v)}
				}
			}
			out, err := merge(base, delta)
			require.NoError(t, err)
			assert.Equal(t, baseCopy, base, "input untouched")

			var got map[string]any
			require.NoError(t, msgpack.Unmarshal(out, &got), "any msgpack decoder reads it")
			assert.Equal(t, normalize(t, tt.want), normalize(t, got))
			again, err := merge(out, nil)
			require.NoError(t, err)
			assert.Equal(t, out, again, "canonical: merging nothing changes no byte")
			var keys []string
			require.NoError(t, walk(out, func(k, _ []byte) bool { keys = append(keys, string(k)); return true }))
			assert.True(t, slices.IsSorted(keys), "keys sorted")
			if len(got) < 16 {
				assert.Equal(t, byte(0x80|len(got)), out[0], "shortest map header")
			}
			for k := range tt.want {
				raw, ok, err := lookupValue(out, k)
				require.NoError(t, err)
				require.True(t, ok, k)
				v, err := decodeGeneric(raw)
				require.NoError(t, err)
				want, err := decodeGeneric(mustMarshal(t, tt.want[k]))
				require.NoError(t, err)
				assert.Equal(t, want, v)
			}
			_, ok, err := lookupValue(out, "missing")
			assert.NoError(t, err)
			assert.False(t, ok)
		})
	}
}

func TestWalkRejectsOtherData(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"raw bytes", []byte("theme=dark")},
		{"array", mustMarshal(t, []int{1})},
		{"int keys", mustMarshal(t, map[int]int{1: 1})},
		{"truncated key", mustMarshal(t, map[string]string{"key": "value"})[:3]},
		{"truncated value", mustMarshal(t, map[string]string{"k": "value"})[:5]},
		{"trailing bytes", append(mustMarshal(t, map[string]int{"k": 1}), 0)},
		{"huge length, no entries", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := walk(tt.data, func(k, raw []byte) bool { return true })
			assert.ErrorIs(t, err, errBadData)
			_, err = merge(tt.data, nil)
			assert.ErrorIs(t, err, errBadData)
		})
	}
}

func FuzzWalk(f *testing.F) {
	f.Add([]byte{0x80})
	f.Add(mustMarshal(f, map[string]any{"k": []any{1, "x", map[string]int{"n": 1}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n int
		if walk(data, func(k, raw []byte) bool { n++; return true }) != nil {
			return
		}
		out, err := merge(data, nil)
		require.NoError(t, err)
		var m int
		require.NoError(t, walk(out, func(k, raw []byte) bool {
			got, ok, err := lookupValue(out, string(k))
			require.NoError(t, err)
			require.True(t, ok)
			if n == len(distinctKeys(t, data)) { // no duplicate keys: every value is found as is
				assert.Equal(t, raw, got)
			}
			m++
			return true
		}))
		assert.Equal(t, n, m)
	})
}

func distinctKeys(t *testing.T, data []byte) map[string]bool {
	keys := map[string]bool{}
	require.NoError(t, walk(data, func(k, _ []byte) bool { keys[string(k)] = true; return true }))
	return keys
}

func mustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := encodeValue(v)
	require.NoError(tb, err)
	return b
}

// marshalSorted encodes m as msgpack with sorted keys.
func marshalSorted(tb testing.TB, m map[string]any) []byte {
	tb.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.SetSortMapKeys(true)
	require.NoError(tb, e.Encode(m))
	return buf.Bytes()
}

// normalize re-decodes m so that integer widths compare equal.
func normalize(tb testing.TB, m map[string]any) map[string]any {
	var out map[string]any
	require.NoError(tb, msgpack.Unmarshal(marshalSorted(tb, m), &out))
	return out
}

func withKey(m map[string]any, k string, v any) map[string]any {
	m = maps.Clone(m)
	m[k] = v
	return m
}

// Damaged data never makes the decoders panic or allocate past its size.
func FuzzDecode(f *testing.F) {
	f.Add(mustMarshal(f, map[string]any{"k": []any{1, "x", map[string]int{"n": 300}}}))
	f.Add(mustMarshal(f, struct {
		A []int16
		B map[int]string
		C [2]byte
		D *float32
	}{[]int16{1}, map[int]string{1: "a"}, [2]byte{1, 2}, nil}))
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}) // an array of 4 G entries, and no data
	f.Add([]byte{0xd6, 0xff, 0, 0, 0, 1})       // a timestamp
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeGeneric(data)
		for _, v := range []any{
			new(int8), new(uint64), new(float32), new(string), new([]byte), new([3]byte),
			new([]any), new(map[string]int16), new(map[int]string), new(*bool),
			new(struct {
				A []int16
				B map[int]string
				C [2]byte
				D *float32
				E any
			}),
		} {
			_ = decodeInto(data, reflect.ValueOf(v).Elem())
		}
	})
}

// plainString, the decoder-free path for strings, agrees with the general
// decoder on everything it accepts, and accepts every encoded string
// (each msgpack str header: fixstr, str8, str16, str32).
func TestPlainStringMatchesDecoder(t *testing.T) {
	general := func(raw []byte) (string, error) {
		return decodeRaw(raw, func(x decoder) (string, error) { return x.string(stringType) })
	}
	var inputs [][]byte
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		enc, err := msgpack.Marshal(strings.Repeat("é", n/2) + strings.Repeat("x", n%2))
		require.NoError(t, err)
		s, ok := plainString(enc)
		require.True(t, ok, "an encoded string of %d bytes", n)
		g, err := general(enc)
		require.NoError(t, err)
		require.Equal(t, g, s)
		inputs = append(inputs, enc, enc[:len(enc)-1], append(slices.Clone(enc), 0))
	}
	// Hand-made headers: a long form for a short string is still a str.
	inputs = append(inputs, []byte{0xd9, 1, 'a'}, []byte{0xda, 0, 1, 'a'}, []byte{0xdb, 0, 0, 0, 1, 'a'},
		[]byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, []byte{0xc4, 1, 'a'}, []byte{0xc0}, nil)
	// And every two- and three-byte input.
	for a := range 256 {
		for b := range 256 {
			inputs = append(inputs, []byte{byte(a), byte(b)}, []byte{byte(a), 1, byte(b)})
		}
	}
	accepted := 0
	for _, raw := range inputs {
		s, ok := plainString(raw)
		if !ok {
			continue
		}
		accepted++
		g, err := general(raw)
		require.NoError(t, err, "%x", raw)
		require.Equal(t, g, s, "%x", raw)
	}
	assert.Greater(t, accepted, 100)
}

// walkWithDecoder is walk as it was written with msgpack's decoder, kept
// to check the hand-written walk against.
func walkWithDecoder(data []byte, fn func(key, raw []byte) bool) error {
	if len(data) == 0 {
		return nil
	}
	rd := newReader(data)
	defer rd.free()
	n, err := rd.d.DecodeMapLen()
	if err != nil {
		return fmt.Errorf("%w: %v", errBadData, err)
	}
	for range max(n, 0) { // msgpack nil reads as -1: an empty session
		k, err := rd.key()
		if err != nil {
			return err
		}
		start := rd.pos()
		if err := rd.d.Skip(); err != nil {
			return fmt.Errorf("%w: %v", errBadData, err)
		}
		end := rd.pos()
		if !fn(k, rd.b[start:end:end]) {
			return nil
		}
	}
	if rd.r.Len() != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errBadData, rd.r.Len())
	}
	return nil
}

// sameWalk checks that walk and walkWithDecoder agree on data: the same
// entries, then both an error of errBadData or neither.
func sameWalk(t *testing.T, data []byte) {
	t.Helper()
	collect := func(w func([]byte, func(k, raw []byte) bool) error) ([][2][]byte, error) {
		var got [][2][]byte
		err := w(data, func(k, raw []byte) bool {
			got = append(got, [2][]byte{k, raw})
			return true
		})
		return got, err
	}
	a, errA := collect(walk)
	if len(data) > 0 && msgpcode.IsExt(data[0]) {
		// msgpack's decoder unwraps a map in an ext header; session data
		// is written as a plain map, and walk refuses anything else.
		require.ErrorIs(t, errA, errBadData, "%x", data)
		return
	}
	b, errB := collect(walkWithDecoder)
	require.Equal(t, b, a, "entries of %x", data)
	require.Equal(t, errB == nil, errA == nil, "%x: decoder %v, walk %v", data, errB, errA)
	if errA != nil {
		require.ErrorIs(t, errA, errBadData)
	}
}

// The hand-written walk reads session data exactly as msgpack's decoder
// did: every encoding of every type, every truncation, and random damage.
func TestWalkMatchesDecoder(t *testing.T) {
	samples := []any{
		map[string]any{},
		map[string]any{"s": "x", "n": -1, "u": uint64(1 << 40), "f": 1.5, "f32": float32(2.5), "b": true, "nil": nil,
			"bin": []byte{1, 2}, "arr": []any{1, "a", []any{}}, "map": map[string]any{"k": map[string]int{"n": 1}},
			"t": time.Unix(1e9, 5), "long": strings.Repeat("l", 300), "big": make([]byte, 70000)},
	}
	many := map[string]int{}
	for i := range 20 {
		many[fmt.Sprint("k", i)] = i
	}
	samples = append(samples, many)
	r := rand.New(rand.NewPCG(7, 8))
	for _, v := range samples {
		data := mustMarshal(t, v)
		for n := range len(data) + 1 {
			if n > 512 && n < len(data)-64 {
				continue // long stretches of the 70,000-byte value teach nothing new
			}
			sameWalk(t, data[:n])
		}
		sameWalk(t, append(slices.Clone(data), 0))
		for range 2000 {
			d := slices.Clone(data[:min(len(data), 600)])
			for range 1 + r.IntN(3) {
				d[r.IntN(len(d))] = byte(r.Uint32())
			}
			sameWalk(t, d)
		}
	}
	for a := range 256 {
		sameWalk(t, []byte{byte(a)})
		for b := range 256 {
			sameWalk(t, []byte{0x81, byte(a), byte(b)})
			sameWalk(t, []byte{0x81, 0xa1, byte(a), byte(b)})
		}
	}
	// Map headers in every width, nil, and a map of nothing but nil.
	for _, d := range [][]byte{{0xc0}, {0xde, 0, 1, 0xa1, 'k', 0xc0}, {0xdf, 0, 0, 0, 1, 0xa1, 'k', 0xc0},
		{0xde, 0}, {0xdf, 0, 0}, {0x80}} {
		sameWalk(t, d)
	}
}

func FuzzWalkMatchesDecoder(f *testing.F) {
	f.Add([]byte{0x80})
	f.Add(mustMarshal(f, map[string]any{"k": []any{1, "x", map[string]int{"n": 1}}, "t": time.Unix(1, 2)}))
	f.Fuzz(func(t *testing.T, data []byte) { sameWalk(t, data) })
}
