package token

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestSignVerify(t *testing.T) {
	s, err := NewSigner(key(1))
	require.NoError(t, err)
	id := New()
	tok := s.Sign(id)
	require.Len(t, tok, SignedLen)
	assert.True(t, strings.HasPrefix(tok, id.String()+"."))
	got, err := s.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, id, got)
}

func TestKeyRotation(t *testing.T) {
	old, err := NewSigner(key(1))
	require.NoError(t, err)
	both, err := NewSigner(key(2), key(1))
	require.NoError(t, err)
	next, err := NewSigner(key(2))
	require.NoError(t, err)

	id := New()
	cases := []struct {
		name     string
		signer   *Signer
		verifier *Signer
		ok       bool
	}{
		{"old key, old ring", old, old, true},
		{"old key, rotating ring", old, both, true},
		{"new key, rotating ring", both, both, true},
		{"new key, old ring", both, old, false},
		{"old key, ring after the old key was dropped", old, next, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.verifier.Verify(c.signer.Sign(id))
			if c.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrMalformed)
			}
		})
	}
	assert.Equal(t, both.Sign(id), next.Sign(id), "the first key signs")
}

func TestVerifyRejectsForgeries(t *testing.T) {
	s, err := NewSigner(key(1))
	require.NoError(t, err)
	id := New()
	tok := s.Sign(id)
	other := s.Sign(New())
	flip := func(i int) string {
		b := []byte(tok)
		b[i] = alphabet[(strings.IndexByte(alphabet, b[i])+1)%64]
		return string(b)
	}
	cases := map[string]string{
		"unsigned ID":         id.String(),
		"empty":               "",
		"tag of another ID":   tok[:Len+1] + other[Len+1:],
		"altered ID":          flip(3),
		"altered tag":         flip(Len + 5),
		"last tag character":  flip(SignedLen - 1),
		"missing dot":         tok[:Len] + "x" + tok[Len+1:],
		"truncated":           tok[:SignedLen-1],
		"extended":            tok + "A",
		"tag not base64url":   tok[:Len+1] + strings.Repeat("*", Len),
		"signed by other key": mustSigner(t, key(9)).Sign(id),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.Verify(tok)
			assert.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func mustSigner(t *testing.T, keys ...[]byte) *Signer {
	s, err := NewSigner(keys...)
	require.NoError(t, err)
	return s
}

func TestNewSignerChecksKeys(t *testing.T) {
	_, err := NewSigner()
	assert.Error(t, err)
	_, err = NewSigner(key(1), []byte("short"))
	assert.ErrorIs(t, err, ErrKeySize)
	k := key(1)
	s := mustSigner(t, k)
	id := New()
	tok := s.Sign(id)
	k[0] ^= 1 // the Signer copied the key
	_, err = s.Verify(tok)
	assert.NoError(t, err)
}

func BenchmarkVerify(b *testing.B) {
	for _, keys := range []int{1, 2} {
		ring := make([][]byte, keys)
		for i := range ring {
			ring[i] = key(byte(i + 1))
		}
		s, _ := NewSigner(ring...)
		tok := s.Sign(New())
		b.Run(string(rune('0'+keys))+"keys", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Verify(tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
