package httpsession

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// rememberKey holds RememberMe's choice: msgpack true or false.
const rememberKey = reservedPrefix + "remember"

var (
	msgpackTrue  = []byte{0xc3}
	msgpackFalse = []byte{0xc2}
)

// RememberMe chooses the kind of cookie this session gets from now on: a
// persistent one (Max-Age and Expires at the session's absolute expiry),
// for a "keep me signed in" box at login, or, with false, a session cookie
// the browser forgets when it closes. The choice is stored with the
// session, so every later response that sets the cookie sends the same
// kind, and it overrides Options.Persistent for this session. Clear keeps
// it. Call it, like Login, before the response begins: the cookie goes out
// with this response's headers if they are still open, and otherwise with
// the next response that sets one. In a request without a session it
// creates none by itself: the choice is kept for the session a Put or a
// Login of the same request creates.
func (m *Manager) RememberMe(ctx context.Context, remember bool) {
	raw := msgpackFalse
	if remember {
		raw = msgpackTrue
	}
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	if cur, ok := st.rawLocked(rememberKey); ok && bytes.Equal(cur, raw) {
		return
	}
	st.putLocked(rememberKey, raw)
	if !st.sess.IsZero() {
		st.cookie = cookieSet
	}
}

// persistentLocked reports whether the session's cookie is persistent.
func (st *state) persistentLocked() bool {
	if raw, ok := st.rawLocked(rememberKey); ok {
		return bytes.Equal(raw, msgpackTrue)
	}
	return st.m.opts.Persistent
}

// Deadline returns when the request's session ends however active it is:
// its absolute expiry, as scs's Deadline does (the store may end it earlier
// when it is idle). It is the zero time for a request without a session,
// unless SetDeadline gave one for the session it will create.
func (m *Manager) Deadline(ctx context.Context) time.Time {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.sess.IsZero() {
		return st.deadline
	}
	return st.sess.AbsoluteExpiry()
}

// SetDeadline moves the session's absolute expiry to t, earlier or later
// than the store's timeout gave it, as scs's SetDeadline does; a persistent
// cookie's expiry follows. It writes to the store at once. A request
// without a session keeps t for the session its first Put creates. It
// returns ErrStaleCookie for a stale session, and store errors wrapped
// (engine.ErrInvalid for a t not in the future).
func (m *Manager) SetDeadline(ctx context.Context, t time.Time) error {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.sess.IsZero():
		st.deadline = t
		return nil
	case st.sess.Rotated():
		return ErrStaleCookie
	}
	s, err := st.m.store.SetDeadline(ctx, st.sess.ID(), t)
	if err != nil {
		return fmt.Errorf("httpsession: setting the session's deadline: %w", err)
	}
	st.sess = s
	st.status = Modified
	if st.persistentLocked() {
		st.cookie = cookieSet
	}
	return nil
}
