package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/sesscache/sesscache/wal"
)

// EncryptionKey is one key of the ring that seals session data at rest.
type EncryptionKey struct {
	// ID names the key in every record it sealed; it must be unique in the
	// ring and not zero (zero marks plaintext on disk).
	ID uint32
	// Key is 32 bytes of secret randomness (AES-256).
	Key []byte
}

// ErrEncryptionKey: a record on disk was sealed with a key the engine does
// not have, or does not open with the key of that ID (wrong key, or damage).
var ErrEncryptionKey = errors.New("sesscache: cannot open sealed session data")

// sealer seals session data in log and snapshot records with AES-256-GCM:
// a random 12-byte nonce, then the ciphertext and tag. The record's digest is
// the additional data, so sealed data moved to another session's record on
// disk fails to open. Memory holds plaintext; only files are sealed.
type sealer struct {
	seal   cipher.AEAD
	sealID uint32
	open   map[uint32]cipher.AEAD
	bufs   sync.Pool
}

func newSealer(keys []EncryptionKey) (*sealer, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	s := &sealer{open: make(map[uint32]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if k.ID == 0 {
			return nil, fmt.Errorf("%w: encryption key ID 0 is reserved", ErrInvalid)
		}
		if len(k.Key) != 32 {
			return nil, fmt.Errorf("%w: encryption key %d is %d bytes, want 32", ErrInvalid, k.ID, len(k.Key))
		}
		if _, dup := s.open[k.ID]; dup {
			return nil, fmt.Errorf("%w: encryption key ID %d appears twice", ErrInvalid, k.ID)
		}
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.open[k.ID] = aead
		if i == 0 {
			s.seal, s.sealID = aead, k.ID
		}
	}
	s.bufs.New = func() any { return new([]byte) }
	return s, nil
}

// sealRecord replaces r's Data with its sealed form, in a buffer the caller
// returns with release once r has been encoded.
func (s *sealer) sealRecord(r *wal.Record) *[]byte {
	if s == nil || r.Op != wal.OpPut {
		return nil
	}
	buf := s.bufs.Get().(*[]byte)
	nonce := s.seal.NonceSize()
	b := append((*buf)[:0], zeroNonce[:nonce]...)
	_, _ = rand.Read(b[:nonce])
	b = s.seal.Seal(b, b[:nonce], r.Data, r.Key.Digest[:])
	*buf = b
	r.Data, r.SealKeyID = b, s.sealID
	return buf
}

var zeroNonce [12]byte

func (s *sealer) release(buf *[]byte) {
	if buf != nil {
		s.bufs.Put(buf)
	}
}

// openRecord replaces a sealed Put's Data with its plaintext, decrypted into
// scratch (which it returns, grown as needed) when s has the key.
func (s *sealer) openRecord(r *wal.Record, scratch []byte) ([]byte, error) {
	if r.Op != wal.OpPut || r.SealKeyID == 0 {
		return scratch, nil
	}
	var aead cipher.AEAD
	if s != nil {
		aead = s.open[r.SealKeyID]
	}
	if aead == nil {
		return scratch, fmt.Errorf("%w: no key with ID %d (Options.EncryptionKeys)", ErrEncryptionKey, r.SealKeyID)
	}
	n := aead.NonceSize()
	if len(r.Data) < n+aead.Overhead() {
		return scratch, fmt.Errorf("%w: sealed data too short", ErrEncryptionKey)
	}
	plain, err := aead.Open(scratch[:0], r.Data[:n], r.Data[n:], r.Key.Digest[:])
	if err != nil {
		return scratch, fmt.Errorf("%w: key %d does not open it (wrong key or damaged record)", ErrEncryptionKey, r.SealKeyID)
	}
	r.Data, r.SealKeyID = plain, 0
	return plain, nil
}
