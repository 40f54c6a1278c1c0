package httpsession_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixationMux is testMux plus a page that shows everything a handler can
// learn about its session.
func fixationMux(f *fixture) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", testMux(f))
	mux.HandleFunc("GET /reveal", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		token, _, err := f.m.Commit(ctx)
		fmt.Fprintf(w, "user=%q handle=%v auth=%v token=%s err=%v",
			f.m.UserID(ctx), f.m.Handle(ctx).IsZero(), f.m.AuthenticatedAt(ctx).IsZero(), token, err)
	})
	return mux
}

// Session fixation, end to end with real cookie jars: an attacker plants
// an anonymous session's cookie in the victim's browser; once the victim
// logs in, that cookie is worth nothing, even though the engine keeps
// plainly rotated IDs readable for 10 seconds.
func TestFixationAfterLogin(t *testing.T) {
	f := newFixture(t, engine.Options{RotateGrace: 10 * time.Second}, httpsession.Options{}, fixationMux)
	attacker, victim := f.client(t), f.client(t)

	f.do(t, attacker, "POST /put?k=next&v=/evil")
	x := f.jarCookie(attacker)
	require.NotNil(t, x)
	u, err := url.Parse(f.srv.URL)
	require.NoError(t, err)
	victim.Jar.SetCookies(u, []*http.Cookie{{Name: x.Name, Value: x.Value, Path: "/", Secure: true, HttpOnly: true}})
	_, body := f.do(t, victim, "GET /get?k=next")
	require.Equal(t, "/evil", body, "the victim now uses the attacker's session")

	resp, body := f.do(t, victim, "POST /login?user=victim")
	require.Equal(t, "ok", body)
	fresh := f.sessionCookie(t, resp)
	require.NotNil(t, fresh)
	require.NotEqual(t, x.Value, fresh.Value)
	resp, _ = f.do(t, victim, "GET /private")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	for _, req := range []string{"GET /private", "GET /admin", "GET /recent", "GET /whoami", "GET /get?k=next", "GET /sessions", "GET /reveal"} {
		resp, body := f.do(t, attacker, req)
		assert.NotContains(t, body, fresh.Value, req)
		assert.NotContains(t, body, "victim", req)
		assert.Nil(t, f.sessionCookie(t, resp), req)
	}
	for _, req := range []string{"GET /private", "GET /admin", "GET /recent"} {
		resp, _ = f.do(t, attacker, req)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, req)
	}
	_, body = f.do(t, attacker, "GET /reveal")
	assert.Equal(t, `user="" handle=true auth=true token= err=<nil>`, body, "the planted ID names nothing now")

	resp, body = f.do(t, attacker, "POST /logout-everywhere")
	assert.Equal(t, "0", body)
	if ck := f.sessionCookie(t, resp); assert.NotNil(t, ck) {
		assert.Less(t, ck.MaxAge, 0, "the attacker's dead cookie is cleared, nothing more")
	}
	resp, _ = f.do(t, victim, "GET /private")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the victim is still logged in")
	_, body = f.do(t, victim, "GET /whoami")
	assert.Equal(t, "victim", body)
}

// A plain rotation (the engine's Rotate, which httpsession never makes
// itself) leaves the old ID readable for the grace period: a request
// bearing it reads the session as anonymous, cannot write, learns nothing
// of the new ID and cannot end the real session.
func TestStaleCookieFromPlainRotation(t *testing.T) {
	f := newFixture(t, engine.Options{RotateGrace: 10 * time.Second}, httpsession.Options{}, fixationMux)
	owner := f.client(t)
	f.do(t, owner, "POST /login?user=alice")
	f.do(t, owner, "POST /roles?role=admin")
	f.do(t, owner, "POST /put?k=a&v=1")
	old := f.jarCookie(owner)
	s, err := f.store.Rotate(t.Context(), old.Value)
	require.NoError(t, err)
	current := f.cookie(s.ID())
	holder := f.client(t)

	_, body := f.do(t, holder, "GET /get?k=a", old)
	assert.Equal(t, "1", body, "reads work during the grace period")
	for _, tc := range []struct {
		req  string
		code int
		body string
	}{
		{"GET /whoami", 200, ""},
		{"GET /private", 401, ""},
		{"GET /admin", 401, ""},
		{"GET /recent", 401, ""},
		{"GET /sessions", 409, httpsession.ErrUnauthenticated.Error()},
		{"POST /end-others", 409, httpsession.ErrUnauthenticated.Error()},
		{"POST /renew", 409, httpsession.ErrStaleCookie.Error()},
		{"POST /login?user=mallory", 409, httpsession.ErrStaleCookie.Error()},
		{"POST /put?k=a&v=2", 500, "commit failed"},
		{"GET /reveal", 200, fmt.Sprintf(`user="" handle=true auth=true token=%s err=<nil>`, old.Value)},
	} {
		resp, body := f.do(t, holder, tc.req, old)
		assert.Equal(t, tc.code, resp.StatusCode, tc.req)
		assert.Contains(t, body, tc.body, tc.req)
		assert.NotContains(t, body, current.Value, tc.req)
		assert.Nil(t, f.sessionCookie(t, resp), "%s: no cookie, neither the new ID nor a cleared one", tc.req)
	}
	require.Len(t, f.errors(), 1)
	assert.ErrorIs(t, f.errors()[0], httpsession.ErrStaleCookie)

	resp, body := f.do(t, holder, "POST /logout-everywhere", old)
	assert.Equal(t, "0", body, "no session ended")
	assert.NotNil(t, f.sessionCookie(t, resp))
	resp, _ = f.do(t, holder, "POST /logout", old)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	_, body = f.do(t, holder, "GET /whoami", current)
	assert.Equal(t, "alice", body, "the session under its new ID lives on")
	_, body = f.do(t, holder, "GET /get?k=a", current)
	assert.Equal(t, "1", body, "unchanged by the stale write")
	resp, _ = f.do(t, holder, "GET /admin", current)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	_, body = f.do(t, holder, "GET /get?k=a", old)
	assert.Empty(t, body, "the logout through the old ID ended its read access")
}
