package wal

import "fmt"

// Op is a record's operation. The values are part of the on-disk format.
type Op uint8

// Record operations.
const (
	// OpPut stores a whole session under Key, replacing any previous one.
	OpPut Op = 1
	// OpDelete removes the session under Key.
	OpDelete Op = 2
	// OpTouch moves the session's LastAccess forward.
	OpTouch Op = 3
	// OpBatch groups Put, Delete and Touch records that must apply together
	// (a rotation, or revoking every session of a user).
	OpBatch Op = 4
)

// String returns the op's name as used in error messages.
func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpTouch:
		return "touch"
	case OpBatch:
		return "batch"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Key names a session without revealing its token.
type Key struct {
	// Digest is a 16-byte SHA-256 prefix of the session token, computed by
	// the engine. The token itself never reaches the log.
	Digest [16]byte
	// Hint carries the bits the engine uses to place the session in a shard,
	// so replay can route a record without rehashing.
	Hint uint16
}

// Record is one logged operation. Fields an op does not carry are ignored by
// the encoder and zero after decoding.
//
// A Record filled by DecodeRecord or passed to an Open callback may alias the
// buffer it was decoded from (UserID, Data, and Ops' backing array): copy
// whatever must outlive the call.
type Record struct {
	Op  Op
	LSN uint64 // assigned by Log.Append; zero in a Batch's sub-records
	Key Key

	// Put only, except that Touch carries LastAccess too. A Put whose
	// SealKeyID is not zero carries its other fields inside Data, sealed,
	// and zero here; the engine seals and opens them.
	Version    uint64
	Created    int64 // unix nanoseconds
	LastAccess int64 // unix nanoseconds
	Idle       int64 // idle timeout in nanoseconds
	Absolute   int64 // absolute deadline, unix nanoseconds
	UserID     []byte
	SealKeyID  uint32 // 0: Data is plaintext; otherwise sealed under this key id
	Data       []byte
	// Fingerprint is the hash of the client fingerprint the session is
	// bound to; 0 means unbound. Logged so that a restart keeps the binding
	// instead of silently lifting it.
	Fingerprint uint64
	// AuthAt is when the session last authenticated, unix nanoseconds; 0
	// if it never did.
	AuthAt int64
	// Label is the application's name for the session, such as a device.
	Label []byte

	// Batch only: the Put, Delete and Touch records applied together under
	// the Batch's LSN.
	Ops []Record
}

// Validate reports whether r can be encoded: a known op, and for a Batch at
// least one sub-record, each a Put, Delete or Touch. Size limits are checked
// by Pending.Encode.
func (r *Record) Validate() error {
	switch r.Op {
	case OpPut, OpDelete, OpTouch:
		return nil
	case OpBatch:
		if len(r.Ops) == 0 {
			return fmt.Errorf("%w: batch without ops", ErrInvalidRecord)
		}
		for i := range r.Ops {
			switch r.Ops[i].Op {
			case OpPut, OpDelete, OpTouch:
			default:
				return fmt.Errorf("%w: batch op %d is %v", ErrInvalidRecord, i, r.Ops[i].Op)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: unknown %v", ErrInvalidRecord, r.Op)
}
