package httpsession

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func TestValuesRoundTrip(t *testing.T) {
	v := values{"b": mustMarshal(t, 2), "a": mustMarshal(t, "x"), "": mustMarshal(t, nil)}
	data, err := encodeValues(v)
	require.NoError(t, err)
	again, err := encodeValues(v)
	require.NoError(t, err)
	assert.Equal(t, data, again, "deterministic")
	got, err := decodeValues(data)
	require.NoError(t, err)
	assert.Equal(t, v, got)

	var generic map[string]any
	require.NoError(t, msgpack.Unmarshal(data, &generic), "any msgpack decoder reads it")
	assert.Equal(t, map[string]any{"a": "x", "b": int8(2), "": nil}, generic)
}

func TestDecodeValuesRejectsOtherData(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"raw bytes", []byte("theme=dark")},
		{"array", mustMarshal(t, []int{1})},
		{"int keys", mustMarshal(t, map[int]int{1: 1})},
		{"truncated", mustMarshal(t, map[string]string{"k": "value"})[:5]},
		{"trailing bytes", append(mustMarshal(t, map[string]int{"k": 1}), 0)},
		{"huge length, no entries", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeValues(tt.data)
			assert.ErrorIs(t, err, errBadData)
		})
	}
}

func TestWithLeavesInputAlone(t *testing.T) {
	base := values{"a": {1}, "b": {2}}
	out := base.with(map[string]change{"a": {removed: true}, "c": {raw: []byte{3}}})
	assert.Equal(t, values{"a": {1}, "b": {2}}, base)
	assert.Equal(t, values{"b": {2}, "c": {3}}, out)
}

func FuzzDecodeValues(f *testing.F) {
	f.Add([]byte{0x80})
	f.Add(mustMarshal(f, map[string]any{"k": []any{1, "x", map[string]int{"n": 1}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeValues(data)
		if err != nil {
			return
		}
		enc, err := encodeValues(v)
		require.NoError(t, err)
		again, err := decodeValues(enc)
		require.NoError(t, err)
		assert.Equal(t, len(v), len(again))
	})
}

func mustMarshal(tb testing.TB, v any) []byte {
	b, err := msgpack.Marshal(v)
	require.NoError(tb, err)
	return b
}
