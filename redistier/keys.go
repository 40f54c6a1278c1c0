package redistier

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"

	"github.com/sesscache/sesscache/engine"
)

// Key layout. Every key carries a hash tag of two hexadecimal digits, its
// bucket, so that Redis Cluster puts the keys of one bucket in one slot:
//
//	<prefix>s:{bb}<handle>   a session's record (a hash; tracked)
//	<prefix>a:{bb}<handle>   its last access in ms (a string; not tracked)
//	<prefix>u:{bb}<owner>    an owner's index: handles scored by auth time
//
// A session's bucket is the first byte of its handle; an owner's is the
// first byte of the owner's hash, and the store mints the IDs of an
// owner's sessions until their handles fall in that bucket, so that all of
// an owner's keys share one slot and every per-owner operation is one
// script. Only records sit under the tracked prefix "<prefix>s:", so a
// touch, which changes only the access key, invalidates nothing.

const (
	kindRecord = 's'
	kindAccess = 'a'
	kindOwner  = 'u'
)

// keyOf returns the key of kind for the 16-byte name (a handle or an owner
// hash), whose first byte is its bucket.
func (s *Store) keyOf(kind byte, name [16]byte) string {
	b := make([]byte, 0, len(s.prefix)+2+4+32)
	b = append(b, s.prefix...)
	b = append(b, kind, ':', '{')
	b = hex.AppendEncode(b, name[:1])
	b = append(b, '}')
	b = hex.AppendEncode(b, name[:])
	return string(b)
}

// handleOfKey parses a record key back into its handle; ok is false for
// any other key.
func (s *Store) handleOfKey(key string) (h engine.Handle, ok bool) {
	p := s.trackedPrefix
	if len(key) != len(p)+4+32 || key[:len(p)] != p || key[len(p)] != '{' || key[len(p)+3] != '}' {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(key[len(p)+4:])); err != nil {
		return h, false
	}
	return h, true
}

// ownerHash names an owner in Redis: HMAC-SHA256 of the owner ID under
// Options.OwnerKey, truncated to 16 bytes. It is not the owner ID, and
// without the key it cannot be checked against a guess.
func (s *Store) ownerHash(user string) [16]byte {
	m := hmac.New(sha256.New, s.ownerKey)
	m.Write([]byte(user))
	var h [16]byte
	copy(h[:], m.Sum(nil))
	return h
}

// ownerField is the record's plaintext owner field: the owner hash in
// hexadecimal, "" for an anonymous session.
func (s *Store) ownerField(user string) string {
	if user == "" {
		return ""
	}
	h := s.ownerHash(user)
	return hex.EncodeToString(h[:])
}

// mint returns a fresh ID whose handle is in bucket b, or in any bucket if
// b < 0. About 256 tries on average for a given bucket (a few hundred
// microseconds): only creations of owned sessions and rotations pay it.
func (s *Store) mint(b int) (string, engine.Handle) {
	for {
		id := s.local.NewID()
		h, err := s.local.HandleOf(id)
		if err != nil {
			panic("redistier: the engine does not parse its own ID: " + err.Error())
		}
		if b < 0 || int(h[0]) == b {
			return id, h
		}
	}
}
