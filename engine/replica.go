package engine

import (
	"fmt"
	"time"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/token"
)

// An in-memory engine can serve as the near cache of a store shared by
// several processes (package redistier does this with Redis): the shared
// store holds the truth and mints the IDs, and each process keeps copies of
// the sessions it has seen, so that a lookup that hits costs what any Get
// costs. The methods below let such a store place and drop those copies. A
// copy is not a session of this engine's making: placing or dropping one
// reports no Event and counts as no creation or deletion, and a persistent
// engine refuses them.

// SessionState is a session's state apart from its ID, as a shared store
// holds it: what PutReplica takes and Session.State returns.
type SessionState struct {
	Version         uint64
	UserID, Label   string
	Data            []byte
	CreatedAt       time.Time
	LastAccess      time.Time
	AuthenticatedAt time.Time // zero: never
	IdleTimeout     time.Duration
	AbsoluteExpiry  time.Time
	// Fingerprint is the hash of the client fingerprint the session is
	// bound to (see FingerprintHash), 0 if unbound.
	Fingerprint uint64
}

// State returns s's state, for a shared store to keep. The Data slice is
// shared with s and must not be modified.
func (s Session) State() SessionState {
	if s.rec.IsZero() {
		return SessionState{}
	}
	r := s.rec
	st := SessionState{
		Version:        r.Version(),
		UserID:         r.UserID(),
		Label:          r.Label(),
		Data:           r.Data(),
		CreatedAt:      time.Unix(0, r.Created()),
		LastAccess:     time.Unix(0, s.la),
		IdleTimeout:    time.Duration(r.Idle()),
		AbsoluteExpiry: time.Unix(0, r.Absolute()),
	}
	if r.AuthAt() != 0 {
		st.AuthenticatedAt = time.Unix(0, r.AuthAt())
	}
	if r.Flags()&shard.FlagBound != 0 {
		st.Fingerprint = r.Fingerprint()
	}
	return st
}

// FingerprintHash returns the hash a session bound to fingerprint keeps
// (SessionState.Fingerprint).
func FingerprintHash(fingerprint []byte) uint64 { return fingerprintHash(fingerprint) }

// HandleOf returns the handle of the session whose token is id, without
// looking it up: the name a shared store files it under. It returns
// ErrMalformedToken for anything this engine could not have issued.
func (e *Engine) HandleOf(id string) (Handle, error) {
	k, _, err := e.parse(id)
	if err != nil {
		return Handle{}, err
	}
	return Handle(digestOf(&k)), nil
}

// NewID returns a fresh token as this engine issues them (signed with its
// first signing key, if it has any), for a shared store that creates a
// session itself and then places its copy with PutReplica.
func (e *Engine) NewID() string { return e.tokenOf(shard.Key(token.New())) }

// PutReplica places a copy of the session with token id and state st, as
// the shared store holds it, unless the engine holds that session at st's
// version or a newer one already (an older copy never replaces a newer
// one; the same version only moves the last access on). It returns the session as stored, or ErrMalformedToken, ErrInvalid
// (a persistent engine; or a state past its deadline), ErrTooLarge or
// ErrClosed. Only the shared store's own writes may call it; an ID that
// came from a client must never reach it.
func (e *Engine) PutReplica(id string, st SessionState) (Session, error) {
	if e.closed.Load() {
		return Session{}, ErrClosed
	}
	if e.jr != nil {
		return Session{}, fmt.Errorf("%w: replicas are for in-memory engines", ErrInvalid)
	}
	if err := e.checkSizes(st.UserID, st.Label, st.Data); err != nil {
		return Session{}, err
	}
	k, h, err := e.parse(id)
	if err != nil {
		return Session{}, err
	}
	m := shard.Meta{Version: st.Version, Created: st.CreatedAt.UnixNano(), Idle: int64(st.IdleTimeout),
		Absolute: st.AbsoluteExpiry.UnixNano(), Hint: uint16(h)}
	if !st.AuthenticatedAt.IsZero() {
		m.AuthAt = st.AuthenticatedAt.UnixNano()
	}
	if st.Fingerprint != 0 {
		m.Flags |= shard.FlagBound
		m.Fingerprint = st.Fingerprint
	}
	la := st.LastAccess.UnixNano()
	r := shard.NewRec(&k, m, la, st.UserID, st.Label, st.Data)
	if r.Deadline(la) <= e.now() {
		return Session{}, fmt.Errorf("%w: the session is past its deadline", ErrInvalid)
	}
	s, si := e.shardOf(h)
	s.Lock()
	defer s.Unlock()
	old := s.Lookup(&k, h)
	switch {
	case old.IsZero():
		s.Insert(h, r)
		e.remember(si, r, false)
	case old.Flags()&shard.FlagAlias != 0:
		return Session{}, fmt.Errorf("%w: the ID is an old one", ErrInvalid)
	case old.Version() > st.Version:
		return makeSession(id, old, old.LastAccess()), nil
	case old.Version() == st.Version:
		// The same write, seen again: only a later last access is news.
		if la > old.LastAccess() {
			old.Touch(la)
		}
		return makeSession(id, old, old.LastAccess()), nil
	case old.UserID() != r.UserID():
		e.forget(si, old)
		s.Remove(old, h)
		s.Insert(h, r)
		e.remember(si, r, false)
	default:
		s.Replace(old, h, r)
	}
	return makeSession(id, r, la), nil
}

// DropReplica removes the copy of the session with token id, if there is
// one: the shared store changed or ended it. It reports no Event.
func (e *Engine) DropReplica(id string) {
	if e.closed.Load() || e.jr != nil {
		return
	}
	k, h, err := e.parse(id)
	if err != nil {
		return
	}
	s, si := e.shardOf(h)
	s.Lock()
	if r := s.Lookup(&k, h); !r.IsZero() {
		e.forget(si, r)
		s.Remove(r, h)
	}
	s.Unlock()
}

// DropAllReplicas removes every copy: the shared store can no longer say
// which are current (its invalidations were lost). It reports no Event.
func (e *Engine) DropAllReplicas() {
	if e.jr != nil {
		return
	}
	for i := range e.shards {
		s := &e.shards[i]
		s.Lock()
		var all []shard.Rec
		s.Range(func(r shard.Rec) bool {
			all = append(all, r)
			return true
		})
		for _, r := range all {
			k := r.Key()
			e.forget(i, r)
			s.Remove(r, shard.Hash(&k))
		}
		s.Unlock()
	}
}

// A shared store also hands out sessions that no engine keeps: listings of
// a user's sessions read from the shared store, the view an old ID gets
// during a rotation's grace, a session it just wrote. These build them,
// with the same rules as the engine's own: a listed session has no ID, a
// grace view is anonymous and read-only.

// ViewOf returns the session with token id, handle h and state st, as Get
// would return it, kept by no engine.
func ViewOf(id string, h Handle, st SessionState) Session {
	r := viewRec(h, st)
	return Session{id: id, rec: r, la: r.LastAccess()}
}

// ListedView returns the session with handle h and state st as
// UserSessions and All return sessions: with no ID.
func ListedView(h Handle, st SessionState) Session {
	r := viewRec(h, st)
	return Session{rec: r, la: r.LastAccess(), view: viewListed}
}

// GraceView returns what an old ID, id, reads of the session it was rotated
// to, whose state is st, within the rotation's grace: the anonymous,
// read-only view of Session.Rotated.
func GraceView(id string, st SessionState) Session {
	r := viewRec(Handle{}, st)
	return Session{id: id, rec: r, la: r.LastAccess(), view: viewGrace}
}

// viewRec builds a record for a view: its handle kept as its digest, its
// key unused.
func viewRec(h Handle, st SessionState) shard.Rec {
	m := shard.Meta{Version: st.Version, Created: st.CreatedAt.UnixNano(), Idle: int64(st.IdleTimeout),
		Absolute: st.AbsoluteExpiry.UnixNano(), Digest: shard.Key(h)}
	if !st.AuthenticatedAt.IsZero() {
		m.AuthAt = st.AuthenticatedAt.UnixNano()
	}
	if st.Fingerprint != 0 {
		m.Flags |= shard.FlagBound
		m.Fingerprint = st.Fingerprint
	}
	var k shard.Key
	return shard.NewRec(&k, m, st.LastAccess.UnixNano(), st.UserID, st.Label, st.Data)
}
