package token

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewIsRandomAndRoundTrips(t *testing.T) {
	seen := make(map[ID]bool)
	for range 1000 {
		id := New()
		require.False(t, seen[id], "duplicate ID")
		seen[id] = true
		s := id.String()
		require.Len(t, s, Len)
		assert.Equal(t, base64.RawURLEncoding.EncodeToString(id[:]), s)
		got, err := Parse(s)
		require.NoError(t, err)
		assert.Equal(t, id, got)
		assert.Equal(t, s, string(id.AppendText(nil)))
	}
}

func TestParseAgreesWithStandardDecoder(t *testing.T) {
	// Every ID's canonical form, including edge bytes, decodes like encoding/base64.
	for b := range 256 {
		var id ID
		for i := range id {
			id[i] = byte(b + i*17)
		}
		s := base64.RawURLEncoding.EncodeToString(id[:])
		got, err := Parse(s)
		require.NoError(t, err)
		assert.Equal(t, id, got)
	}
}

func TestParseRejects(t *testing.T) {
	valid := New().String()
	last := valid[:Len-1]
	// A last character whose 4 padding bits are set decodes, leniently, to the
	// same bytes as a canonical one; it must still be rejected.
	nonCanonical := last + "B"
	if strings.HasSuffix(valid, "B") {
		nonCanonical = last + "C"
	}
	cases := map[string]string{
		"empty":             "",
		"short":             valid[:Len-1],
		"long":              valid + "A",
		"padding":           valid[:Len-2] + "==",
		"std alphabet plus": "+" + valid[1:],
		"std alphabet /":    valid[:5] + "/" + valid[6:],
		"space":             valid[:10] + " " + valid[11:],
		"nul":               valid[:3] + "\x00" + valid[4:],
		"high byte":         valid[:7] + "\xff" + valid[8:],
		"non-canonical end": nonCanonical,
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(s)
			assert.ErrorIs(t, err, ErrMalformed)
			if err != nil && s != "" {
				assert.NotContains(t, err.Error(), s)
			}
		})
	}
}

func TestParseEveryLastCharacter(t *testing.T) {
	// Exactly the 4 characters whose padding bits are zero are accepted last.
	prefix := New().String()[:Len-1]
	accepted := 0
	for c := range 256 {
		if _, err := Parse(prefix + string([]byte{byte(c)})); err == nil {
			accepted++
		}
	}
	assert.Equal(t, 4, accepted)
}

func BenchmarkParse(b *testing.B) {
	s := New().String()
	b.ReportAllocs()
	for b.Loop() {
		id, _ := Parse(s)
		_ = id
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = New()
	}
}
