package httpsession

import (
	"context"
	"fmt"

	"github.com/sesscache/sesscache/engine"
)

// Sessions lists the sessions of the request's user, oldest first, for a
// "your devices" page (ASVS 3.3.3): each with its Handle, CreatedAt,
// LastAccess, AuthenticatedAt and Label (see Options.LabelFunc), and never
// its token (ID is empty). Mark the current one by comparing with
// m.Handle(ctx). An anonymous or stale request gets ErrUnauthenticated.
func (m *Manager) Sessions(ctx context.Context) ([]engine.Session, error) {
	user := m.UserID(ctx)
	if user == "" {
		return nil, ErrUnauthenticated
	}
	list, err := m.store.UserSessions(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("httpsession: listing sessions: %w", err)
	}
	return list, nil
}

// EndSession ends the session of the request's user that h names (as
// Sessions lists it): "log out this device". It never ends another user's
// session: a handle that is not one of the user's gets an error matching
// engine.ErrNotFound, and an anonymous or stale request ErrUnauthenticated.
// Ending the current session is a logout, as Destroy.
func (m *Manager) EndSession(ctx context.Context, h engine.Handle) error {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	user := st.sess.UserID()
	if user == "" {
		return ErrUnauthenticated
	}
	if err := m.store.RevokeSession(ctx, user, h); err != nil {
		return fmt.Errorf("httpsession: ending session: %w", err)
	}
	if h == st.sess.Handle() {
		st.endedLocked(true)
	}
	return nil
}

// EndOtherSessions ends every session of the request's user except the
// current one: "log out other devices" (ASVS 3.3.4). It returns how many it
// ended, and ErrUnauthenticated for an anonymous or stale request.
func (m *Manager) EndOtherSessions(ctx context.Context) (int, error) {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	user := st.sess.UserID()
	if user == "" {
		return 0, ErrUnauthenticated
	}
	n, err := m.store.RevokeOthers(ctx, user, st.sess.Handle())
	if err != nil {
		return n, fmt.Errorf("httpsession: ending the other sessions: %w", err)
	}
	return n, nil
}

// Iterate calls fn for every live session of the store, until fn returns
// an error, which Iterate returns, or ctx is done. It needs a store with an
// All method, as *engine.Engine has, and returns ErrCannotIterate for
// another.
//
// Unlike scs's Iterate, which hands fn a context to read and change each
// session through, this one is read-only: fn gets each session's owner,
// label, times and data but never its token (ID is empty), because code
// holding every token could act as every user. To end a session found so,
// use the store's RevokeSession with its UserID and Handle, which needs no
// token.
func (m *Manager) Iterate(ctx context.Context, fn func(engine.Session) error) error {
	it, ok := m.store.(iterable)
	if !ok {
		return ErrCannotIterate
	}
	for _, s := range it.All() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("httpsession: iterating: %w", err)
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// MergeSession moves the values of the session that token names into the
// request's session and ends that session, as scs's MergeSession does: a
// client that started out in one session (a second browser, an app's web
// view) brings its values along. A value under a key both sessions have is
// the other session's afterwards; RolesKey is not carried from an
// anonymous session. A token that names no live session, or the request's
// own, merges nothing.
//
// Only a session of the same user, or an anonymous one, may be merged,
// since merging reads the other session's values: another user's session
// gets ErrOtherUser. What an anonymous session holds was chosen by
// whoever held it; see Options.ClearValuesAtLogin. A stale session, on
// either side, gets ErrStaleCookie. The values reach the store with this
// request's other changes (a request without a session gets a new one);
// the other session ends at once.
func (m *Manager) MergeSession(ctx context.Context, token string) error {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.sess.Rotated():
		return ErrStaleCookie
	case token == "" || (!st.sess.IsZero() && token == st.sess.ID()):
		return nil
	}
	other, err := m.store.Find(ctx, token, st.fp)
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("httpsession: finding the session to merge: %w", err)
	case other.Rotated():
		return ErrStaleCookie
	}
	owner := other.UserID()
	if owner != "" && owner != st.sess.UserID() {
		return ErrOtherUser
	}
	var entries []entry
	err = walk(other.Data(), func(k, raw []byte) bool {
		if key := string(k); !reserved(key) && (owner != "" || key != RolesKey) {
			entries = append(entries, entry{k, raw})
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("httpsession: reading the session to merge: %w", err)
	}
	for _, e := range entries {
		// The other session's data is immutable: its values can be kept
		// as they are.
		st.putLocked(string(e.key), e.raw)
	}
	if err := m.store.Delete(ctx, token); err != nil {
		return fmt.Errorf("httpsession: ending the merged session: %w", err)
	}
	return nil
}
