package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"hash"
	"sync"
)

// A signed token is an ID, a dot and a tag:
//
//	<ID: 22 chars> "." <tag: 22 chars>
//
// The tag is the first 16 bytes of HMAC-SHA256(key, "sesscache.v1." + raw
// ID), in unpadded base64url. A server that signs its tokens rejects a forged
// or altered one by its tag alone, before it looks anything up.
const (
	tagSize   = 16
	SignedLen = Len + 1 + Len
	// MinKeySize is the shortest signing key NewSigner accepts.
	MinKeySize = 32
)

var domain = []byte("sesscache.v1.")

// ErrKeySize reports a signing key shorter than MinKeySize.
var ErrKeySize = errors.New("token: signing key shorter than 32 bytes")

// Signer signs IDs and verifies signed tokens with a ring of keys: the first
// key signs, every key verifies, so keys can be rotated by putting a new key
// first and dropping the old one once no live token carries its tag. A Signer
// is safe for concurrent use.
type Signer struct {
	macs []sync.Pool // one pool of *macState per key
}

// macState is a keyed HMAC with buffers for its input and output, pooled so
// that verifying a token allocates nothing.
type macState struct {
	h   hash.Hash
	in  [len("sesscache.v1.") + Size]byte
	out [sha256.Size]byte
}

// NewSigner returns a Signer for the given keys, first key signing. Each key
// must be at least MinKeySize bytes of secret randomness. The keys are copied.
func NewSigner(keys ...[]byte) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("token: NewSigner needs at least one key")
	}
	s := &Signer{macs: make([]sync.Pool, len(keys))}
	for i, k := range keys {
		if len(k) < MinKeySize {
			return nil, ErrKeySize
		}
		k := append([]byte(nil), k...)
		s.macs[i].New = func() any {
			m := &macState{h: hmac.New(sha256.New, k)}
			copy(m.in[:], domain)
			return m
		}
	}
	return s, nil
}

// tag computes the tag of id under key i into dst.
func (s *Signer) tag(i int, id *ID, dst *[tagSize]byte) {
	m := s.macs[i].Get().(*macState)
	copy(m.in[len(domain):], id[:])
	m.h.Reset()
	m.h.Write(m.in[:])
	m.h.Sum(m.out[:0])
	copy(dst[:], m.out[:tagSize])
	s.macs[i].Put(m)
}

// Sign returns the signed token for id.
func (s *Signer) Sign(id ID) string {
	var t ID
	s.tag(0, &id, (*[tagSize]byte)(t[:]))
	var b [SignedLen]byte
	id.encode((*[Len]byte)(b[:Len]))
	b[Len] = '.'
	t.encode((*[Len]byte)(b[Len+1:]))
	return string(b[:])
}

// Verify returns the ID in a signed token if its tag matches one of the
// keys, and ErrMalformed otherwise, without saying why. The work does not
// depend on which key matches, nor on how much of a wrong tag is right.
func (s *Signer) Verify(tok string) (ID, error) {
	if len(tok) != SignedLen || tok[Len] != '.' {
		return ID{}, ErrMalformed
	}
	id, err1 := Parse(tok[:Len])
	tag, err2 := Parse(tok[Len+1:])
	ok := 0
	var sum [tagSize]byte
	for i := range s.macs {
		s.tag(i, &id, &sum)
		ok |= subtle.ConstantTimeCompare(sum[:], tag[:])
	}
	if err1 != nil || err2 != nil || ok != 1 {
		return ID{}, ErrMalformed
	}
	return id, nil
}
