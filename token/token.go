// Package token generates and parses session IDs.
//
// An ID is 16 bytes (128 bits) from crypto/rand, written as 22 characters of
// unpadded base64url. Parse accepts only the canonical encoding of an ID, so
// no two strings name the same session, and it rejects anything else before
// the caller touches a map. Parsing does the same work for every input of the
// right length, whatever its content.
//
// This package never stores, logs or prints an ID.
package token

import (
	"crypto/rand"
	"errors"
)

// Size is the number of random bytes in an ID.
const Size = 16

// Len is the length of an encoded ID: Size bytes in unpadded base64url.
const Len = 22

// ErrMalformed reports a string that is not an encoded ID: wrong length,
// a character outside the base64url alphabet, or a non-canonical encoding.
var ErrMalformed = errors.New("token: malformed session token")

// ID is the raw form of a session ID.
type ID [Size]byte

// New returns a fresh random ID.
func New() ID {
	var id ID
	// crypto/rand.Read never fails on the platforms Go supports (Go ≥ 1.24
	// crashes the program rather than return short output).
	_, _ = rand.Read(id[:])
	return id
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// decodeMap maps a byte to its 6-bit value, or to 0xFF when the byte is not
// in the alphabet. The high bit lets Parse check all characters with one OR.
var decodeMap = func() (m [256]byte) {
	for i := range m {
		m[i] = 0xFF
	}
	for i := 0; i < len(alphabet); i++ {
		m[alphabet[i]] = byte(i)
	}
	return m
}()

// String returns the canonical encoding of id.
func (id ID) String() string {
	var b [Len]byte
	id.encode(&b)
	return string(b[:])
}

// AppendText appends the canonical encoding of id to dst.
func (id ID) AppendText(dst []byte) []byte {
	var b [Len]byte
	id.encode(&b)
	return append(dst, b[:]...)
}

func (id *ID) encode(b *[Len]byte) {
	for i, j := 0, 0; i < 15; i, j = i+3, j+4 {
		v := uint(id[i])<<16 | uint(id[i+1])<<8 | uint(id[i+2])
		b[j] = alphabet[v>>18&0x3F]
		b[j+1] = alphabet[v>>12&0x3F]
		b[j+2] = alphabet[v>>6&0x3F]
		b[j+3] = alphabet[v&0x3F]
	}
	b[20] = alphabet[id[15]>>2]
	b[21] = alphabet[id[15]&0x3<<4]
}

// Parse decodes s, which must be exactly the canonical encoding of an ID.
// It returns ErrMalformed otherwise; the error never contains s.
func Parse(s string) (ID, error) {
	var id ID
	if len(s) != Len {
		return id, ErrMalformed
	}
	var bad byte
	for g := range 5 {
		q := s[g*4 : g*4+4]
		a, b, c, d := decodeMap[q[0]], decodeMap[q[1]], decodeMap[q[2]], decodeMap[q[3]]
		bad |= a | b | c | d
		v := uint(a)<<18 | uint(b)<<12 | uint(c)<<6 | uint(d)
		o := id[g*3 : g*3+3]
		o[0], o[1], o[2] = byte(v>>16), byte(v>>8), byte(v)
	}
	a, b := decodeMap[s[20]], decodeMap[s[21]]
	// The last character carries 2 bits of the final byte and 4 padding bits
	// that a canonical encoding leaves at zero.
	bad |= a | b
	id[15] = a<<2 | b>>4
	if bad&0xC0 != 0 || b&0x0F != 0 {
		return ID{}, ErrMalformed
	}
	return id, nil
}
