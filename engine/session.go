package engine

import (
	"time"

	"github.com/sesscache/sesscache/shard"
)

// Session is a read-only view of one session as of the call that returned
// it. It is small and cheap to copy; its accessors read the session's
// immutable record, so a Session stays valid and unchanged after later
// writes, which store new records. The zero Session has no ID.
type Session struct {
	id      string
	rec     shard.Rec
	la      int64
	rotated bool
}

// ID returns the session's token. It is empty in a session that Range
// returns for a session recovered from disk whose token no request has
// presented since: the store keeps only a digest of such IDs.
func (s Session) ID() string { return s.id }

// Rotated reports that the ID presented was an old one, honoured read-only
// during Options.RotateGrace after a rotation; ID returns the new token,
// which the caller should hand to the client in place of the old one.
func (s Session) Rotated() bool { return s.rotated }

// IsZero reports whether s is the zero Session.
func (s Session) IsZero() bool { return s.rec.IsZero() }

// UserID returns the owner given at creation, or "".
func (s Session) UserID() string {
	if s.rec.IsZero() {
		return ""
	}
	return s.rec.UserID()
}

// Data returns the session's data. The slice is shared and never modified
// by the engine; callers must not modify it either (see DataCopy).
func (s Session) Data() []byte {
	if s.rec.IsZero() {
		return nil
	}
	return s.rec.Data()
}

// DataCopy returns a copy of the session's data that the caller owns.
func (s Session) DataCopy() []byte { return append([]byte(nil), s.Data()...) }

// Version starts at 1 and grows by one with every write; pass it to Update
// for compare-and-swap.
func (s Session) Version() uint64 {
	if s.rec.IsZero() {
		return 0
	}
	return s.rec.Version()
}

// CreatedAt returns when the session was created. Rotation keeps it.
func (s Session) CreatedAt() time.Time { return s.unix(shard.Rec.Created) }

// LastAccess returns the coarse time of the latest Get or write, as seen by
// the call that returned s.
func (s Session) LastAccess() time.Time {
	if s.rec.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, s.la)
}

// IdleTimeout returns how long the session may go unused.
func (s Session) IdleTimeout() time.Duration {
	if s.rec.IsZero() {
		return 0
	}
	return time.Duration(s.rec.Idle())
}

// AbsoluteExpiry returns when the session ends regardless of activity.
func (s Session) AbsoluteExpiry() time.Time { return s.unix(shard.Rec.Absolute) }

// Deadline returns when the session ends unless it is used again: the
// earlier of LastAccess+IdleTimeout and AbsoluteExpiry.
func (s Session) Deadline() time.Time {
	if s.rec.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, s.rec.Deadline(s.la))
}

func (s Session) unix(field func(shard.Rec) int64) time.Time {
	if s.rec.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, field(s.rec))
}

func makeSession(id string, r shard.Rec, lastAccess int64) Session {
	return Session{id: id, rec: r, la: lastAccess}
}

// CreateOptions describes a new session.
type CreateOptions struct {
	// UserID names the owner, for RevokeUser. Optional.
	UserID string
	// Data is the initial data; the engine copies it.
	Data []byte
	// IdleTimeout overrides Options.IdleTimeout when positive.
	IdleTimeout time.Duration
	// AbsoluteTimeout overrides Options.AbsoluteTimeout when positive.
	AbsoluteTimeout time.Duration
	// Fingerprint binds the session to a client trait, such as its
	// User-Agent: GetBound then finds the session only when given the same
	// fingerprint. The engine keeps a 64-bit hash of it, not the bytes.
	// Empty means unbound.
	Fingerprint []byte
}
