package engine

import (
	"time"
)

// EventKind says what happened to a session; see Event.
type EventKind uint8

// Event kinds.
const (
	// EventCreated: Create made the session.
	EventCreated EventKind = iota + 1
	// EventRotated: the session moved to a new ID (Rotate, RotateWith);
	// Event.Previous is its handle before. A RotateWith that set a UserID
	// is a login: Event.UserID is the new owner.
	EventRotated
	// EventDeleted: Delete ended the session (a logout).
	EventDeleted
	// EventRevoked: RevokeUser, RevokeOthers or RevokeSession ended it.
	EventRevoked
	// EventEvicted: a cap ended it to make room (MaxSessionsPerUser,
	// MaxSessions, MaxAnonymousSessions).
	EventEvicted
	// EventExpired: it passed its deadline and was removed.
	EventExpired
)

// String returns the kind's name: created, rotated, deleted, revoked,
// evicted or expired.
func (k EventKind) String() string {
	switch k {
	case EventCreated:
		return "created"
	case EventRotated:
		return "rotated"
	case EventDeleted:
		return "deleted"
	case EventRevoked:
		return "revoked"
	case EventEvicted:
		return "evicted"
	case EventExpired:
		return "expired"
	}
	return "unknown"
}

// Event is one change to a session, for Options.OnEvent: an audit trail
// that never holds a token.
type Event struct {
	Kind EventKind
	// Handle names the session (after a rotation: its new handle).
	Handle Handle
	// Previous is the handle before a rotation; zero for other kinds.
	Previous Handle
	// UserID is the session's owner, "" for an anonymous one.
	UserID string
	// Time is the engine's clock when the change was made.
	Time time.Time
}

// Recorder receives the engine's latencies and sizes for metrics, as
// otter's and pebble's do; package expvarstats and the adapter modules
// (Prometheus, OpenTelemetry) implement it. Counters (hits, misses,
// sessions created...) are not reported through it: read them from Stats,
// which costs nothing on the Get path. Methods are called from the
// goroutine that did the work, concurrently; they must be quick and must
// not call the engine. Embed NopRecorder to implement only some.
type Recorder interface {
	// ObserveGet reports one Get, GetBound or Find in every GetSampleEvery:
	// its duration and whether it found a session.
	ObserveGet(d time.Duration, found bool)
	// ObserveWrite reports one write call: Create, Update, Delete, Rotate
	// or RotateWith, or a revocation, with its duration (the wait for the
	// log included) and its error.
	ObserveWrite(op WriteOp, d time.Duration, err error)
	// ObserveLogWrite reports one write of the log: the records and bytes
	// of one batch, the group commit's size.
	ObserveLogWrite(records uint64, bytes int)
	// ObserveFsync reports one fsync of the log's data.
	ObserveFsync(d time.Duration)
	// ObserveSnapshot reports one snapshot: its duration, its size, and
	// its error if it failed.
	ObserveSnapshot(d time.Duration, bytes int64, err error)
	// ObserveRecovery reports Open's recovery: its duration and the
	// sessions it recovered.
	ObserveRecovery(d time.Duration, sessions int)
	// ObserveEviction reports a session a cap evicted.
	ObserveEviction()
}

// GetSampleEvery is how many lookups share one Recorder.ObserveGet call, so
// that timing them costs little.
const GetSampleEvery = 64

// WriteOp names a write for Recorder.ObserveWrite.
type WriteOp uint8

// Write operations.
const (
	OpCreate WriteOp = iota + 1
	OpUpdate
	OpDelete
	OpRotate
	OpRevoke
)

// String returns the operation's name: create, update, delete, rotate or
// revoke.
func (o WriteOp) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpRotate:
		return "rotate"
	case OpRevoke:
		return "revoke"
	}
	return "unknown"
}

// NopRecorder implements Recorder by doing nothing; embed it to implement
// part of the interface.
type NopRecorder struct{}

// ObserveGet implements Recorder.
func (NopRecorder) ObserveGet(time.Duration, bool) {}

// ObserveWrite implements Recorder.
func (NopRecorder) ObserveWrite(WriteOp, time.Duration, error) {}

// ObserveLogWrite implements Recorder.
func (NopRecorder) ObserveLogWrite(uint64, int) {}

// ObserveFsync implements Recorder.
func (NopRecorder) ObserveFsync(time.Duration) {}

// ObserveSnapshot implements Recorder.
func (NopRecorder) ObserveSnapshot(time.Duration, int64, error) {}

// ObserveRecovery implements Recorder.
func (NopRecorder) ObserveRecovery(time.Duration, int) {}

// ObserveEviction implements Recorder.
func (NopRecorder) ObserveEviction() {}

// observe reports a write to the Recorder, deferred with the write's
// result; start is zero when there is no Recorder.
func (e *Engine) observe(op WriteOp, start time.Time, err *error) {
	if !start.IsZero() {
		e.opts.Recorder.ObserveWrite(op, time.Since(start), *err)
	}
}

// startTimer returns the time now if a Recorder wants write latencies.
func (e *Engine) startTimer() time.Time {
	if e.opts.Recorder == nil {
		return time.Time{}
	}
	return time.Now()
}
