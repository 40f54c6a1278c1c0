package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sesscache/sesscache/shard"
)

// Session is a read-only view of one session as of the call that returned
// it. It is small and cheap to copy; its accessors read the session's
// immutable record, so a Session stays valid and unchanged after later
// writes, which store new records. The zero Session has no ID.
type Session struct {
	id   string
	rec  shard.Rec
	la   int64
	view view
}

// view says how a Session was obtained, which decides what it shows.
type view uint8

const (
	viewFull   view = iota // through its own token: everything
	viewGrace              // through an old token during RotateGrace: read-only, anonymous
	viewListed             // from All or UserSessions: no token
)

// ID returns the session's token, as the client presents it. It is the ID
// the call was given (Get) or made (Create, Rotate), and empty in sessions
// that All and UserSessions return: the engine hands a token only to the
// call that created or presented it.
func (s Session) ID() string { return s.id }

// Rotated reports that the ID presented is an old one that a rotation
// replaced within Options.RotateGrace. Such a view is read-only and
// anonymous: ID is the old ID, UserID is empty, AuthenticatedAt is zero and
// Handle is the zero Handle (Data and Label are the session's), and writes
// through the old ID fail with ErrRotated. It serves requests that were already in flight when the ID
// changed; it never tells them the new ID.
func (s Session) Rotated() bool { return s.view == viewGrace }

// IsZero reports whether s is the zero Session.
func (s Session) IsZero() bool { return s.rec.IsZero() }

// UserID returns the owner (CreateOptions.UserID, RotateOptions.UserID), or
// "" for an anonymous session and for a Rotated view.
func (s Session) UserID() string {
	if s.rec.IsZero() || s.view == viewGrace {
		return ""
	}
	return s.rec.UserID()
}

// AuthenticatedAt returns when the session last authenticated: its creation
// with a UserID, or its last RotateWith that set one. It is the zero Time
// for an anonymous session and for a Rotated view.
func (s Session) AuthenticatedAt() time.Time {
	if s.rec.IsZero() || s.view == viewGrace || s.rec.AuthAt() == 0 {
		return time.Time{}
	}
	return time.Unix(0, s.rec.AuthAt())
}

// Label returns the application's name for the session (CreateOptions.Label),
// such as a device, or "".
func (s Session) Label() string {
	if s.rec.IsZero() {
		return ""
	}
	return s.rec.Label()
}

// Handle returns the session's handle: a name for it that is not its token
// and cannot be turned into one, to list and end sessions with
// (UserSessions, RevokeSession). It is the zero Handle for the zero Session
// and for a Rotated view.
func (s Session) Handle() Handle {
	if s.rec.IsZero() || s.view == viewGrace {
		return Handle{}
	}
	return handleOf(s.rec)
}

// Format prints the session by its handle, never its token, whatever the
// verb (%v, %+v and %#v would otherwise print the token among its fields):
// a session that reaches a log line or an error message gives its token
// away to no one.
func (s Session) Format(f fmt.State, _ rune) {
	if s.IsZero() {
		_, _ = io.WriteString(f, "engine.Session{}")
		return
	}
	_, _ = fmt.Fprintf(f, "engine.Session{Handle: %s}", s.Handle())
}

// LogValue logs the session as its handle (see Format).
func (s Session) LogValue() slog.Value {
	if s.IsZero() {
		return slog.GroupValue()
	}
	return slog.GroupValue(slog.String("handle", s.Handle().String()))
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

// Handle names a session without being its token: the first 16 bytes of
// the SHA-256 of the session's raw ID, which is also what the data
// directory names the session by. It is safe to show, log and send to the
// session's owner (a "your devices" page names each session by it); it
// cannot be turned back into the token, and no lookup by token accepts it.
// Its text form is 32 lower-case hexadecimal digits, so it never looks like
// a token.
type Handle [16]byte

// String returns h as 32 lower-case hexadecimal digits.
func (h Handle) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero Handle, which names no session.
func (h Handle) IsZero() bool { return h == Handle{} }

// errBadHandle is what ParseHandle wraps in ErrInvalid.
var errBadHandle = errors.New("not a session handle")

// ParseHandle parses the text form of a Handle. It returns an error
// wrapping ErrInvalid, which never contains s, for anything else.
func ParseHandle(s string) (Handle, error) {
	var h Handle
	if len(s) != 2*len(h) {
		return Handle{}, errors.Join(ErrInvalid, errBadHandle)
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return Handle{}, errors.Join(ErrInvalid, errBadHandle)
		}
	}
	_, _ = hex.Decode(h[:], []byte(s))
	return h, nil
}

// digestOf returns the digest of raw ID k: the session's Handle and its
// name on disk.
func digestOf(k *shard.Key) shard.Key {
	sum := sha256.Sum256(k[:])
	return shard.Key(sum[:16])
}

// handleOf returns the handle of the session in r, whose key is its raw ID
// or, recovered and not presented since, already its digest. A persistent
// engine keeps the digest in the record, computed once; an in-memory one
// computes it when asked.
func handleOf(r shard.Rec) Handle {
	k := r.Key()
	switch {
	case r.Flags()&shard.FlagCold != 0:
		return Handle(k)
	case r.Digest() != shard.Key{}:
		return Handle(r.Digest())
	}
	return Handle(digestOf(&k))
}

// CreateOptions describes a new session.
type CreateOptions struct {
	// UserID names the owner, which makes the session authenticated as of
	// now (Session.AuthenticatedAt) and subject to RevokeUser and
	// Options.MaxSessionsPerUser. Empty: an anonymous session.
	UserID string
	// Label is the application's name for the session, such as a device
	// ("Firefox on Linux"), shown in UserSessions. Optional; at most
	// Options.MaxLabelSize bytes.
	Label string
	// Data is the initial data; the engine copies it.
	Data []byte
	// IdleTimeout overrides Options.IdleTimeout when positive.
	IdleTimeout time.Duration
	// AbsoluteTimeout overrides Options.AbsoluteTimeout when positive.
	AbsoluteTimeout time.Duration
	// Fingerprint binds the session to a client trait, such as its
	// User-Agent: only GetBound (or Find) with the same fingerprint finds
	// it; Get never does. The engine keeps a 64-bit hash of it, not the
	// bytes. Empty means unbound.
	Fingerprint []byte
}

// RotateOptions changes a session as it moves to a fresh ID.
type RotateOptions struct {
	// UserID, if not empty, authenticates the session as UserID: it becomes
	// the owner and AuthenticatedAt becomes now, in the same atomic, logged
	// step as the move. Use it for a login (of an anonymous session, or a
	// fresh authentication of the same user). It implies Privileged.
	UserID string
	// Privileged marks a rotation that follows a change of privilege (a
	// login, new roles, a fresh authentication): the old ID ends at once,
	// whatever Options.RotateGrace, so that an ID planted or seen before
	// the change is worthless after it.
	Privileged bool
	// Label, if not empty, replaces the session's label.
	Label string
}
