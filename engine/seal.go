package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/sesscache/sesscache/wal"
)

// EncryptionKey is one key of the ring that seals session records at rest.
type EncryptionKey struct {
	// ID names the key in every record it sealed; it must be unique in the
	// ring and not zero (zero marks plaintext on disk).
	ID uint32
	// Key is 32 bytes of secret randomness (AES-256).
	Key []byte
}

// ErrEncryptionKey: a record on disk was sealed with a key the engine does
// not have, or does not open with the key of that ID (a wrong key, or a
// record damaged or edited on disk).
var ErrEncryptionKey = errors.New("sesscache: cannot open sealed session record")

// errSealBroken marks a record that names a key the engine has but does not
// open with it: damaged or edited, or sealed under another key of that ID.
var errSealBroken = fmt.Errorf("%w: it does not open with the key it names (wrong key, or a record damaged or edited on disk)", ErrEncryptionKey)

// sealer seals session records in log and snapshot files with AES-256-GCM.
// A sealed Put keeps in the clear only what replay needs to route it (op,
// digest, hint) and the key ID; everything else (version, times, idle
// timeout, fingerprint, owner, label and data) is sealed together:
//
//	data = nonce(12) | AES-GCM(plaintext, additional data)
//	plaintext = version u64 | created i64 | lastAccess i64 | idle i64 |
//	            absolute i64 | authAt i64 | fingerprint u64 |
//	            len(userID) u16 | len(label) u16 | userID | label | data
//	additional data = "sesscache.seal.3" | op u8 | digest [16] | hint u16
//
// (integers little-endian). So a record edited on disk, or moved to another
// session's digest, fails to open instead of loading: its owner, deadlines
// and binding are as authenticated as its data. Memory holds plaintext.
type sealer struct {
	seal   cipher.AEAD
	sealID uint32
	open   map[uint32]cipher.AEAD
	bufs   sync.Pool
}

const (
	sealDomain    = "sesscache.seal.3"
	sealHeader    = 7*8 + 2*2
	sealADLen     = len(sealDomain) + 1 + 16 + 2
	sealNonceSize = 12
)

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

func sealAD(r *wal.Record) [sealADLen]byte {
	var ad [sealADLen]byte
	n := copy(ad[:], sealDomain)
	ad[n] = byte(r.Op)
	copy(ad[n+1:], r.Key.Digest[:])
	binary.LittleEndian.PutUint16(ad[n+17:], r.Key.Hint)
	return ad
}

// sealRecord seals a Put in place: r's Data becomes the sealed record, in a
// buffer the caller returns with release once r has been encoded, and its
// other fields become zero. Other ops are left as they are.
func (s *sealer) sealRecord(r *wal.Record) *[]byte {
	if s == nil || r.Op != wal.OpPut {
		return nil
	}
	buf := s.bufs.Get().(*[]byte)
	le := binary.LittleEndian
	b := (*buf)[:0]
	b = append(b, make([]byte, sealNonceSize)...)
	_, _ = rand.Read(b[:sealNonceSize])
	b = le.AppendUint64(b, r.Version)
	b = le.AppendUint64(b, uint64(r.Created))
	b = le.AppendUint64(b, uint64(r.LastAccess))
	b = le.AppendUint64(b, uint64(r.Idle))
	b = le.AppendUint64(b, uint64(r.Absolute))
	b = le.AppendUint64(b, uint64(r.AuthAt))
	b = le.AppendUint64(b, r.Fingerprint)
	b = le.AppendUint16(b, uint16(len(r.UserID)))
	b = le.AppendUint16(b, uint16(len(r.Label)))
	b = append(b, r.UserID...)
	b = append(b, r.Label...)
	b = append(b, r.Data...)
	ad := sealAD(r)
	// Room for the tag, so that Seal writes over the plaintext in place
	// rather than into a new slice.
	b = slices.Grow(b, s.seal.Overhead())
	plain := b[sealNonceSize:]
	b = b[:sealNonceSize+len(s.seal.Seal(plain[:0], b[:sealNonceSize], plain, ad[:]))]
	*buf = b
	*r = wal.Record{Op: r.Op, LSN: r.LSN, Key: r.Key, SealKeyID: s.sealID, Data: b}
	return buf
}

func (s *sealer) release(buf *[]byte) {
	if buf != nil {
		s.bufs.Put(buf)
	}
}

// clearFieldsZero reports whether a sealed Put keeps nothing in the clear
// but what routes it: the fields the seal holds are zero outside it. A
// non-zero one was put there by an edit on disk, which would otherwise be
// ignored; rejecting it keeps one meaning per record.
func clearFieldsZero(r *wal.Record) bool {
	return r.Version == 0 && r.Created == 0 && r.LastAccess == 0 && r.Idle == 0 &&
		r.Absolute == 0 && r.AuthAt == 0 && r.Fingerprint == 0 &&
		len(r.UserID) == 0 && len(r.Label) == 0
}

// openRecord replaces a sealed Put's fields with what it sealed, decrypted
// into scratch (which it returns, grown as needed) when s has the key. The
// record's slices then alias scratch.
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
	if len(r.Data) < sealNonceSize+aead.Overhead()+sealHeader || !clearFieldsZero(r) {
		return scratch, errSealBroken
	}
	ad := sealAD(r)
	plain, err := aead.Open(scratch[:0], r.Data[:sealNonceSize], r.Data[sealNonceSize:], ad[:])
	if err != nil || len(plain) < sealHeader {
		return scratch, errSealBroken
	}
	le := binary.LittleEndian
	nu, nl := int(le.Uint16(plain[56:])), int(le.Uint16(plain[58:]))
	if sealHeader+nu+nl > len(plain) {
		return plain, errSealBroken
	}
	rest := plain[sealHeader:]
	*r = wal.Record{
		Op: r.Op, LSN: r.LSN, Key: r.Key,
		Version:     le.Uint64(plain[0:]),
		Created:     int64(le.Uint64(plain[8:])),
		LastAccess:  int64(le.Uint64(plain[16:])),
		Idle:        int64(le.Uint64(plain[24:])),
		Absolute:    int64(le.Uint64(plain[32:])),
		AuthAt:      int64(le.Uint64(plain[40:])),
		Fingerprint: le.Uint64(plain[48:]),
		UserID:      rest[:nu:nu],
		Label:       rest[nu : nu+nl : nu+nl],
		Data:        rest[nu+nl:],
	}
	return plain, nil
}
