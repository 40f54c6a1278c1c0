package httpsession

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// RolesKey is the session key RequireRole, HasRole and SetRoles use: its
// value is a list of role names ([]string). Login drops it, so that no role
// put before the login survives it.
const RolesKey = "roles"

// UserID returns the owner of the request's session, the userID given to
// Login, or "" if the request is anonymous. A stale session (see
// ErrStaleCookie) is anonymous, whoever owns the session it was rotated to.
func (m *Manager) UserID(ctx context.Context) string {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sess.UserID()
}

// AuthenticatedAt returns when the request's session last logged in (Login),
// or the zero time if it is anonymous or stale.
func (m *Manager) AuthenticatedAt(ctx context.Context) time.Time {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sess.AuthenticatedAt()
}

// Handle returns the handle of the request's session, the non-secret name
// Sessions lists it under, to mark "this device" in such a list; the zero
// Handle if the request has no session or a stale one.
func (m *Manager) Handle(ctx context.Context) engine.Handle {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sess.Handle()
}

// RenewToken moves the session to a new ID, keeping its owner and values,
// and ends the old ID at once (a privileged rotation: no grace period); the
// new cookie goes out with the response. Call it whenever the session's
// privileges change, so that an ID an attacker planted or saw before is
// worthless after (Login and SetRoles do it for you).
//
// A request without a session has nothing to renew and RenewToken does
// nothing: the session it may create later gets a fresh ID anyway. It
// returns ErrHeadersWritten once the response has begun, ErrStaleCookie
// for a stale session, and store errors wrapped.
func (m *Manager) RenewToken(ctx context.Context) error {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.renewLocked(ctx)
}

func (st *state) renewLocked(ctx context.Context) error {
	switch {
	case st.sess.IsZero():
		return nil
	case st.started:
		return ErrHeadersWritten
	case st.sess.Rotated():
		return ErrStaleCookie
	}
	s, err := st.m.store.RotateWith(ctx, st.sess.ID(), engine.RotateOptions{Privileged: true})
	if err != nil {
		return fmt.Errorf("httpsession: renewing session: %w", err)
	}
	st.sess = s
	st.cookie = cookieSet
	st.status = Modified
	return nil
}

// Login makes the request's session an authenticated one owned by userID,
// under a new ID, after you have checked the user's credentials. The old ID
// ends at once, whatever the store's rotation grace period, so an ID
// planted before the login (session fixation) or seen before it is
// worthless after. The session's label becomes Options.LabelFunc's for the
// request, and its authentication time now, which RequireRecentAuth reads:
// logging in again as the same user is how a step-up refreshes it.
//
// An anonymous session (a shopping cart, say) keeps its values and this
// request's uncommitted changes, as in scs, except RolesKey; with
// Options.ClearValuesAtLogin it keeps none. Values put before the login
// were chosen by whoever held the anonymous session, who may have been an
// attacker: never trust one as a role, a redirect target or a confirmed
// choice. A session owned by another user is ended, and the new one starts
// with this request's changes only, under the same rules.
//
// Login returns ErrHeadersWritten once the response has begun,
// ErrStaleCookie for a stale session, and store errors wrapped
// (engine.ErrTooLarge, engine.ErrInvalid for an empty or too long userID);
// it then changes nothing.
func (m *Manager) Login(ctx context.Context, userID string) error {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	if userID == "" {
		return fmt.Errorf("httpsession: Login: %w: empty user ID", engine.ErrInvalid)
	}
	old := st.sess
	switch {
	case st.started:
		return ErrHeadersWritten
	case old.Rotated():
		return ErrStaleCookie
	}
	label := st.labelLocked()
	if !old.IsZero() && (old.UserID() == "" || old.UserID() == userID) {
		s, err := m.store.RotateWith(ctx, old.ID(), engine.RotateOptions{UserID: userID, Label: label})
		switch {
		case err == nil:
			st.sess = s
			st.cookie = cookieSet
			st.status = Modified
			if old.UserID() == "" {
				return st.dropPreLoginLocked(ctx)
			}
			return nil
		case !isNotFound(err):
			return fmt.Errorf("httpsession: logging in: %w", err)
		}
		// The session ended meanwhile: start afresh below.
		old = engine.Session{}
	}
	st.dropPendingLocked()
	data, err := merge(nil, st.delta)
	if err != nil {
		return fmt.Errorf("httpsession: encoding session: %w", err)
	}
	s, err := m.store.Create(ctx, engine.CreateOptions{UserID: userID, Label: label, Data: data, Fingerprint: st.fp})
	if err != nil {
		return fmt.Errorf("httpsession: creating session: %w", err)
	}
	if !old.IsZero() {
		// Another user's session: end it rather than leave two live sessions.
		if err := m.store.Delete(ctx, old.ID()); err != nil {
			_ = m.store.Delete(ctx, s.ID())
			return fmt.Errorf("httpsession: ending the previous user's session: %w", err)
		}
	}
	st.sess = s
	st.delta = nil
	st.cookie = cookieSet
	st.status = Modified
	return nil
}

// dropsAtLogin reports whether Login drops key's value.
func (st *state) dropsAtLogin(key string) bool {
	return key == RolesKey || (st.m.opts.ClearValuesAtLogin && !reserved(key))
}

// dropPendingLocked removes from the request's changes what Login drops.
func (st *state) dropPendingLocked() {
	for k := range st.delta {
		if st.dropsAtLogin(k) {
			delete(st.delta, k)
		}
	}
}

// dropPreLoginLocked removes what Login drops from a session just logged
// in, in the store at once: committing it with the response's other
// changes could fail after the new cookie went out, leaving pre-login
// roles in an authenticated session. If that write fails, the session is
// ended rather than left so.
func (st *state) dropPreLoginLocked(ctx context.Context) error {
	st.dropPendingLocked()
	var drop map[string]change
	err := walk(st.sess.Data(), func(k, _ []byte) bool {
		if st.dropsAtLogin(string(k)) {
			if drop == nil {
				drop = map[string]change{}
			}
			drop[string(k)] = change{removed: true}
		}
		return true
	})
	if err == nil && drop == nil {
		return nil
	}
	if err == nil {
		var s engine.Session
		s, err = st.m.store.Update(ctx, st.sess.ID(), 0, func(cur engine.Session) ([]byte, error) {
			return merge(cur.Data(), drop)
		})
		if err == nil {
			st.sess = s
			return nil
		}
	}
	_ = st.m.store.Delete(ctx, st.sess.ID())
	st.resetLocked()
	st.cookie = cookieExpire
	return fmt.Errorf("httpsession: logging in: clearing pre-login values: %w", err)
}

// labelLocked returns the label Login gives the session, cut to the
// engine's limit.
func (st *state) labelLocked() string {
	if st.r == nil {
		return ""
	}
	return truncateUTF8(st.m.opts.LabelFunc(st.r), maxLabel)
}

// Destroy ends the request's session in the store and tells the client to
// drop its cookie (logout). Values put afterwards in the same request go
// into a new session. Ending a session is allowed after the response has
// begun, though the cookie can then no longer be cleared: the session is
// gone all the same. Through a stale ID (see ErrStaleCookie) it ends only
// that ID's read-only access, never the session it was rotated to.
func (m *Manager) Destroy(ctx context.Context) error {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	_, err := st.destroyLocked(ctx)
	return err
}

// destroyLocked deletes the session, reporting whether there was one.
func (st *state) destroyLocked(ctx context.Context) (bool, error) {
	had := !st.sess.IsZero()
	if had {
		if err := st.m.store.Delete(ctx, st.sess.ID()); err != nil && !isNotFound(err) {
			return false, fmt.Errorf("httpsession: deleting session: %w", err)
		}
	}
	st.endedLocked(had)
	return had, nil
}

// endedLocked forgets the session after it ended, and has the client drop
// the cookie if it sent one or had one set.
func (st *state) endedLocked(had bool) {
	if had || st.presented {
		st.cookie = cookieExpire
	}
	st.resetLocked()
	st.status = Destroyed
}

// LogoutEverywhere ends every session of the request's user, this one
// included, on every device, and clears this client's cookie; it returns
// how many sessions it ended. Use it for "log out everywhere" and after a
// password change. For an anonymous or stale request it ends just the
// current session (or ID), as Destroy does: it never reaches a user's
// sessions without being logged in as that user.
func (m *Manager) LogoutEverywhere(ctx context.Context) (int, error) {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	user := st.sess.UserID()
	if user == "" {
		// A stale ID's session lives on under its new ID: nothing ended.
		stale := st.sess.Rotated()
		had, err := st.destroyLocked(ctx)
		if had && !stale && err == nil {
			return 1, nil
		}
		return 0, err
	}
	n, err := st.m.store.RevokeUser(ctx, user)
	if err != nil {
		return n, fmt.Errorf("httpsession: revoking the user's sessions: %w", err)
	}
	st.endedLocked(true)
	return n, nil
}

// SetRoles replaces the session's roles and renews its token, since a
// change of privilege must come with a new ID. Roles belong to a user, so
// an anonymous or stale session gets ErrUnauthenticated; call SetRoles
// after Login, which drops roles set before it. It returns RenewToken's
// errors, and then changes nothing.
func (m *Manager) SetRoles(ctx context.Context, roles ...string) error {
	raw, err := encodeValue(roles)
	if err != nil {
		return fmt.Errorf("httpsession: encoding roles: %w", err)
	}
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.sess.UserID() == "" {
		return ErrUnauthenticated
	}
	if err := st.renewLocked(ctx); err != nil {
		return err
	}
	st.putLocked(RolesKey, raw)
	return nil
}

// HasRole reports whether the session is authenticated and its roles
// (RolesKey) include role.
func (m *Manager) HasRole(ctx context.Context, role string) bool {
	if m.UserID(ctx) == "" {
		return false
	}
	roles, _, err := getAs[[]string](m.from(ctx), RolesKey)
	return err == nil && slices.Contains(roles, role)
}

// RequireAuth returns a handler that answers 401 Unauthorized to a request
// whose session has no owner (see Login), stale ones included, and passes
// the others to next. It must run inside m.Handler.
func (m *Manager) RequireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.UserID(r.Context()) == "" {
			http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireRole returns a handler that answers 401 Unauthorized to an
// anonymous or stale request, 403 Forbidden to an authenticated one whose
// session does not hold role among its roles (RolesKey), and passes the
// others to next. It must run inside m.Handler.
func (m *Manager) RequireRole(role string, next http.Handler) http.Handler {
	return m.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.HasRole(r.Context(), role) {
			http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// RequireRecentAuth returns a handler that passes to next a request whose
// session logged in at most maxAge ago (Options.Now against the session's
// authentication time), and to stale the others: anonymous and stale
// sessions, and logins older than that (ASVS 3.7.1: ask for the password
// again before a sensitive action). A nil stale answers 401 Unauthorized;
// a typical stale handler shows a password form whose handler calls Login
// again for the same user. It must run inside m.Handler.
func (m *Manager) RequireRecentAuth(maxAge time.Duration, next, stale http.Handler) http.Handler {
	if stale == nil {
		stale = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := m.AuthenticatedAt(r.Context())
		if at.IsZero() || m.opts.Now().Sub(at) > maxAge {
			stale.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
