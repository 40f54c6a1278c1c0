package fuzz

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/sesscache/sesscache/token"
)

// FuzzTokenParse: Parse never panics and accepts exactly the canonical
// encodings of IDs (as strict unpadded base64url decoding of 16 bytes
// defines them), and its error never repeats the input.
func FuzzTokenParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		id, err := token.Parse(s)
		raw, derr := base64.RawURLEncoding.Strict().DecodeString(s)
		canonical := len(s) == token.Len && derr == nil && len(raw) == token.Size
		if err != nil {
			if !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			if canonical {
				t.Fatalf("Parse rejects %q, a canonical encoding", s)
			}
			if len(s) == token.Len && strings.Contains(err.Error(), s) {
				t.Fatalf("Parse's error repeats the input")
			}
			if id != (token.ID{}) {
				t.Fatalf("Parse returned a non-zero ID with its error")
			}
			return
		}
		if !canonical || !bytes.Equal(raw, id[:]) {
			t.Fatalf("Parse accepts %q as %x; strict base64url says %x, %v", s, id, raw, derr)
		}
		if id.String() != s || string(id.AppendText(nil)) != s {
			t.Fatalf("Parse(%q) = %x, which encodes as %q", s, id, id.String())
		}
	})
}

var (
	keyA = bytes.Repeat([]byte{'a'}, token.MinKeySize) // signs in the ring
	keyB = bytes.Repeat([]byte{'b'}, token.MinKeySize) // verifies in the ring
	keyC = bytes.Repeat([]byte{'c'}, token.MinKeySize) // not in the ring
)

// FuzzTokenVerify: a Signer's Verify never panics and accepts a token only if
// a key of its ring issued it: re-signing the ID it returns with that key
// gives back the token exactly. Tokens derived from the input are signed by
// each key and altered in one character: the ring's pass, the others' and
// every altered one fail.
func FuzzTokenVerify(f *testing.F) {
	ring := mustSigner(f, keyA, keyB)
	signers := []*token.Signer{mustSigner(f, keyA), mustSigner(f, keyB), mustSigner(f, keyC)}
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := ring.Verify(s); err == nil {
			if s != signers[0].Sign(id) && s != signers[1].Sign(id) {
				t.Fatalf("Verify accepts %q, which no key of the ring issued for its ID", s)
			}
		} else if !errors.Is(err, token.ErrMalformed) || id != (token.ID{}) {
			t.Fatalf("Verify failed with %v and ID %x", err, id)
		}

		sum := sha256.Sum256([]byte(s))
		id := token.ID(sum[:token.Size])
		for i, signer := range signers {
			tok := signer.Sign(id)
			got, err := ring.Verify(tok)
			if inRing := i < 2; inRing != (err == nil) || (inRing && got != id) {
				t.Fatalf("Verify of a token signed by key %d: %x, %v", i, got, err)
			}
			// Change one character to another of the alphabet, or the dot
			// to anything: the token is then either malformed or names
			// another ID or tag, and must fail.
			pos := int(sum[16]) % len(tok)
			alt := []byte(tok)
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			alt[pos] = alphabet[(strings.IndexByte(alphabet, alt[pos])+1+int(sum[17])%63)%64]
			if _, err := ring.Verify(string(alt)); err == nil {
				t.Fatalf("Verify accepts a token altered at %d: %q from %q", pos, alt, tok)
			}
		}
	})
}

func mustSigner(tb testing.TB, keys ...[]byte) *token.Signer {
	s, err := token.NewSigner(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
