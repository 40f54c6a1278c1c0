package httpsession

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/sesscache/sesscache/engine"
)

// RolesKey is the session key RequireRole, HasRole and SetRoles use: its
// value is a list of role names ([]string).
const RolesKey = "roles"

// UserID returns the owner of the request's session, the userID given to
// Login, or "" if the request is anonymous.
func UserID(ctx context.Context) string {
	st := from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sess.UserID()
}

// RenewToken moves the session to a new ID, keeping its owner and values;
// the new cookie goes out with the response. Call it whenever the session's
// privileges change, so that an ID an attacker planted or saw before is
// worthless after (Login does it for you). With the engine's RotateGrace,
// requests already in flight with the old ID can still read the session
// for that long, but not change it (see ErrRotated).
//
// A request without a session has nothing to renew and RenewToken does
// nothing: the session it may create later gets a fresh ID anyway. It
// returns ErrHeadersWritten once the response has begun, ErrRotated if this
// request's own ID was rotated away already, and engine errors wrapped.
func RenewToken(ctx context.Context) error {
	st := from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.renewLocked()
}

func (st *state) renewLocked() error {
	switch {
	case st.sess.IsZero():
		return nil
	case st.started:
		return ErrHeadersWritten
	case st.sess.Rotated():
		return ErrRotated
	}
	s, err := st.m.store.Rotate(st.sess.ID())
	if err != nil {
		return fmt.Errorf("httpsession: renewing session: %w", err)
	}
	st.sess = s
	st.cookie = cookieSet
	return nil
}

// Login makes the request's session an authenticated one owned by userID,
// under a new ID, after you have checked the user's credentials. An
// anonymous session (a shopping cart, say) keeps its values and this
// request's uncommitted changes: the engine moves it to a new ID and sets
// its owner in one step (engine.RotateWith), so, as with RenewToken, the old
// ID keeps working read-only for the engine's RotateGrace. Values of a
// session owned by another user are not carried over: the new session
// starts with this request's changes only, and the other user's session is
// deleted. Logging in again as the current owner just renews the token.
//
// Login returns ErrHeadersWritten once the response has begun, ErrRotated
// if this request's ID was rotated away already, and engine errors
// wrapped (engine.ErrTooLarge, engine.ErrInvalid for an empty or too long
// userID); it then changes nothing.
func Login(ctx context.Context, userID string) error {
	st := from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	if userID == "" {
		return fmt.Errorf("httpsession: Login: %w: empty user ID", engine.ErrInvalid)
	}
	old := st.sess
	switch {
	case st.started:
		return ErrHeadersWritten
	case !old.IsZero() && old.Rotated():
		return ErrRotated
	case !old.IsZero() && old.UserID() == userID:
		return st.renewLocked()
	case !old.IsZero() && old.UserID() == "":
		s, err := st.m.store.RotateWith(old.ID(), engine.RotateOptions{UserID: userID})
		switch {
		case err == nil:
			// The delta is applied to the new ID at commit.
			st.sess = s
			st.cookie = cookieSet
			return nil
		case !isNotFound(err):
			return fmt.Errorf("httpsession: logging in: %w", err)
		}
		// The anonymous session ended meanwhile: start afresh below.
		old = engine.Session{}
	}
	data, err := merge(nil, st.delta)
	if err != nil {
		return fmt.Errorf("httpsession: encoding session: %w", err)
	}
	s, err := st.m.store.Create(engine.CreateOptions{UserID: userID, Data: data, Fingerprint: st.fp})
	if err != nil {
		return fmt.Errorf("httpsession: creating session: %w", err)
	}
	if !old.IsZero() {
		// Another user's session: end it rather than leave two live sessions.
		if err := st.m.store.Delete(old.ID()); err != nil && !isNotFound(err) {
			_ = st.m.store.Delete(s.ID())
			return fmt.Errorf("httpsession: ending the previous user's session: %w", err)
		}
	}
	st.sess = s
	st.delta = nil
	st.cookie = cookieSet
	return nil
}

// Destroy deletes the request's session and tells the client to drop its
// cookie (logout). Values put afterwards in the same request go into a new
// session. Ending a session is allowed even to a request whose ID was
// rotated away (see ErrRotated), and after the response has begun, though
// the cookie can then no longer be cleared: the session is gone all the
// same.
func Destroy(ctx context.Context) error {
	st := from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	_, err := st.destroyLocked()
	return err
}

// destroyLocked deletes the session, reporting whether there was one.
func (st *state) destroyLocked() (bool, error) {
	had := !st.sess.IsZero()
	if had {
		if err := st.m.store.Delete(st.sess.ID()); err != nil && !isNotFound(err) {
			return false, fmt.Errorf("httpsession: deleting session: %w", err)
		}
	}
	if had || st.presented {
		st.cookie = cookieExpire
	}
	st.resetLocked()
	return had, nil
}

// LogoutEverywhere ends every session of the request's user, this one
// included, on every device, and clears this client's cookie; it returns
// how many sessions it ended. Use it for "log out everywhere" and after a
// password change. For an anonymous request it ends just the current
// session, as Destroy does.
func LogoutEverywhere(ctx context.Context) (int, error) {
	st := from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	user := st.sess.UserID()
	if user == "" {
		had, err := st.destroyLocked()
		if had {
			return 1, err
		}
		return 0, err
	}
	n, err := st.m.store.RevokeUser(user)
	if err != nil {
		return n, fmt.Errorf("httpsession: revoking the user's sessions: %w", err)
	}
	st.cookie = cookieExpire
	st.resetLocked()
	return n, nil
}

// SetRoles replaces the session's roles and renews its token, since a
// change of privilege must come with a new ID. It returns RenewToken's
// errors.
func SetRoles(ctx context.Context, roles ...string) error {
	Put(ctx, RolesKey, roles)
	return RenewToken(ctx)
}

// HasRole reports whether the session's roles (RolesKey) include role. It
// does not check that the session is authenticated; RequireRole does.
func HasRole(ctx context.Context, role string) bool {
	raw, ok := from(ctx).raw(RolesKey)
	if !ok {
		return false
	}
	var roles []string
	if err := decodeValue(raw, &roles); err != nil {
		return false
	}
	return slices.Contains(roles, role)
}

// RequireAuth returns a handler that answers 401 Unauthorized to a request
// whose session has no owner (see Login), and passes the others to next.
// It must run inside Manager.Handler.
func RequireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if UserID(r.Context()) == "" {
			http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireRole returns a handler that answers 401 Unauthorized to an
// anonymous request, 403 Forbidden to an authenticated one whose session
// does not hold role among its roles (RolesKey), and passes the others to
// next. Roles count only in an authenticated session: a value an
// anonymous session holds under RolesKey grants nothing. It must run
// inside Manager.Handler.
func RequireRole(role string, next http.Handler) http.Handler {
	return RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !HasRole(r.Context(), role) {
			http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}))
}
