package redistier

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// In LayoutHash, a session's record in Redis is a hash (LayoutString's
// record is in stringrec.go):
//
//	v  version (decimal)              plaintext, for compare-and-swap
//	k  "s" a session, "g" a grace entry (an old ID within RotateGrace)
//	x  absolute expiry, unix ms       plaintext, for the scripts' expiry checks
//	i  idle timeout, ms               plaintext, likewise
//	u  owner hash (hex), "" if none   plaintext pseudonym, names the owner index
//	a  auth time, unix µs             the owner index's score
//	t  new handle (hex)               grace entries only: where the session went
//	b  the blob: the whole state      sealed when Options has EncryptionKeys
//
// The blob holds everything (version, times, owner, label, fingerprint
// hash, data) and is what a read believes; the plaintext fields are
// copies the scripts need, and a read checks the version against the
// blob. Sealed blobs are AES-256-GCM with the record's key name as
// additional data, so a blob moved to another key does not open.

const (
	blobPlain  = 0
	blobSealed = 1
	blobFormat = 1
	nonceSize  = 12
)

// errRecord is what a record that does not decode or open wraps.
var errRecord = errors.New("redistier: session record in Redis does not open")

// sealer seals and opens blobs; nil means plaintext.
type sealer struct {
	first uint32
	aeads map[uint32]cipher.AEAD
}

func newSealer(keys []engine.EncryptionKey) (*sealer, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	s := &sealer{first: keys[0].ID, aeads: make(map[uint32]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if k.ID == 0 {
			return nil, fmt.Errorf("redistier: %w: encryption key ID 0", engine.ErrInvalid)
		}
		if _, dup := s.aeads[k.ID]; dup {
			return nil, fmt.Errorf("redistier: %w: encryption key ID %d twice", engine.ErrInvalid, k.ID)
		}
		if len(k.Key) != 32 {
			return nil, fmt.Errorf("redistier: %w: encryption key %d is not 32 bytes", engine.ErrInvalid, k.ID)
		}
		b, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, fmt.Errorf("redistier: %w", err)
		}
		a, err := cipher.NewGCM(b)
		if err != nil {
			return nil, fmt.Errorf("redistier: %w", err)
		}
		s.aeads[k.ID] = a
	}
	return s, nil
}

// stateSize is the length of st's encoding.
func stateSize(st *engine.SessionState) int {
	return 1 + 8*7 + 2 + len(st.UserID) + 2 + len(st.Label) + 4 + len(st.Data)
}

// encodeState is the blob's plaintext.
func encodeState(st *engine.SessionState) []byte {
	return appendState(make([]byte, 0, stateSize(st)), st)
}

// appendState appends the blob's plaintext to b.
func appendState(b []byte, st *engine.SessionState) []byte {
	b = append(b, blobFormat)
	b = binary.LittleEndian.AppendUint64(b, st.Version)
	b = binary.LittleEndian.AppendUint64(b, uint64(st.CreatedAt.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(st.AbsoluteExpiry.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(st.IdleTimeout))
	var auth int64
	if !st.AuthenticatedAt.IsZero() {
		auth = st.AuthenticatedAt.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(auth))
	b = binary.LittleEndian.AppendUint64(b, st.Fingerprint)
	b = binary.LittleEndian.AppendUint64(b, 0) // reserved
	b = binary.LittleEndian.AppendUint16(b, uint16(len(st.UserID)))
	b = append(b, st.UserID...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(st.Label)))
	b = append(b, st.Label...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(st.Data)))
	b = append(b, st.Data...)
	return b
}

// decodeState parses a blob's plaintext. LastAccess is left zero: it lives
// in the access key.
func decodeState(b []byte) (engine.SessionState, error) {
	var st engine.SessionState
	if len(b) < 1+8*7+2 || b[0] != blobFormat {
		return st, errRecord
	}
	u64 := func(i int) uint64 { return binary.LittleEndian.Uint64(b[1+8*i:]) }
	st.Version = u64(0)
	st.CreatedAt = time.Unix(0, int64(u64(1)))
	st.AbsoluteExpiry = time.Unix(0, int64(u64(2)))
	st.IdleTimeout = time.Duration(u64(3))
	if a := int64(u64(4)); a != 0 {
		st.AuthenticatedAt = time.Unix(0, a)
	}
	st.Fingerprint = u64(5)
	rest := b[1+8*7:]
	str := func(lenBytes int) (string, bool) {
		if len(rest) < lenBytes {
			return "", false
		}
		var n int
		if lenBytes == 2 {
			n = int(binary.LittleEndian.Uint16(rest))
		} else {
			n = int(binary.LittleEndian.Uint32(rest))
		}
		rest = rest[lenBytes:]
		if len(rest) < n {
			return "", false
		}
		v := string(rest[:n])
		rest = rest[n:]
		return v, true
	}
	var ok1, ok2, ok3 bool
	var data string
	st.UserID, ok1 = str(2)
	st.Label, ok2 = str(2)
	data, ok3 = str(4)
	if !ok1 || !ok2 || !ok3 || len(rest) != 0 {
		return st, errRecord
	}
	st.Data = []byte(data)
	return st, nil
}

// blobSize bounds the length of the blob sealTo appends for st.
func (s *sealer) blobSize(st *engine.SessionState) int {
	n := 1 + stateSize(st)
	if s != nil {
		n += 4 + nonceSize + 16
	}
	return n
}

// seal returns the blob for st, bound to aad: the record's key name (and,
// in LayoutString, its header).
func (s *sealer) seal(aad []byte, st *engine.SessionState) []byte {
	return s.sealTo(make([]byte, 0, s.blobSize(st)), aad, st)
}

// sealTo appends the blob for st, bound to aad, to dst. aad may be a
// prefix of dst: the blob is appended past it.
func (s *sealer) sealTo(dst, aad []byte, st *engine.SessionState) []byte {
	if s == nil {
		return appendState(append(dst, blobPlain), st)
	}
	plain := encodeState(st)
	start := len(dst)
	dst = append(dst, blobSealed, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(dst[start+1:], s.first)
	dst = append(dst, make([]byte, nonceSize)...)
	nonce := dst[start+5 : start+5+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		panic("redistier: no randomness: " + err.Error())
	}
	return s.aeads[s.first].Seal(dst, nonce, plain, aad)
}

// open returns the state in blob, sealed with aad. A sealer refuses
// plaintext blobs, so that turning encryption on cannot be undone by
// writing plaintext into Redis.
func (s *sealer) open(aad, blob []byte) (engine.SessionState, error) {
	if len(blob) == 0 {
		return engine.SessionState{}, errRecord
	}
	switch blob[0] {
	case blobPlain:
		if s != nil {
			return engine.SessionState{}, fmt.Errorf("%w: plaintext record where encryption is on", errRecord)
		}
		return decodeState(blob[1:])
	case blobSealed:
		if s == nil || len(blob) < 1+4+nonceSize {
			return engine.SessionState{}, fmt.Errorf("%w: sealed record and no key", errRecord)
		}
		id := binary.LittleEndian.Uint32(blob[1:])
		a := s.aeads[id]
		if a == nil {
			return engine.SessionState{}, fmt.Errorf("%w: sealed with key %d, which is not configured", errRecord, id)
		}
		plain, err := a.Open(nil, blob[5:5+nonceSize], blob[5+nonceSize:], aad)
		if err != nil {
			return engine.SessionState{}, fmt.Errorf("%w: it does not authenticate", errRecord)
		}
		return decodeState(plain)
	}
	return engine.SessionState{}, errRecord
}

// ms converts a time to unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }
