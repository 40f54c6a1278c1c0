package httpsession_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoginRotatesCookie(t *testing.T) {
	f := newFixture(t, engine.Options{RotateGrace: time.Minute}, httpsession.Options{}, nil)
	c := f.client(t)
	f.do(t, c, "POST /put?k=cart&v=3")
	anon := f.jarCookie(c)
	require.NotNil(t, anon)

	resp, body := f.do(t, c, "POST /login?user=alice")
	require.Equal(t, "ok", body)
	ck := sessionCookie(t, resp)
	require.NotNil(t, ck)
	assert.NotEqual(t, anon.Value, ck.Value)
	_, body = f.do(t, c, "GET /whoami")
	assert.Equal(t, "alice", body)
	_, body = f.do(t, c, "GET /get?k=cart")
	assert.Equal(t, "3", body, "the anonymous session's values came along")

	// Login moved the anonymous session to the new ID and owner in one
	// step: during the grace period the old ID still reads it, and no
	// second session exists.
	other := f.client(t)
	_, body = f.do(t, other, "GET /get?k=cart", anon)
	assert.Equal(t, "3", body)
	_, body = f.do(t, other, "GET /whoami", anon)
	assert.Equal(t, "alice", body)
	assert.Equal(t, 1, f.store.Len())
}

func TestLoginAsAnotherUserCarriesNothing(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	c := f.client(t)
	f.do(t, c, "POST /login?user=alice")
	f.do(t, c, "POST /put?k=secret&v=alice's")
	f.do(t, c, "POST /login?user=bob")
	_, body := f.do(t, c, "GET /whoami")
	assert.Equal(t, "bob", body)
	_, body = f.do(t, c, "GET /keys")
	assert.Empty(t, body)
	assert.Equal(t, 1, f.store.Len(), "alice's session on this client is gone")
}

// After a renewal the old ID keeps working, read-only, for the engine's
// grace period, and every response to it carries the new cookie.
func TestOldCookieDuringAndAfterGrace(t *testing.T) {
	const grace = 30 * time.Second
	tests := []struct {
		name, renew string
		anonymous   bool // the session is not logged in before the renewal
	}{
		{"RenewToken", "POST /renew", false},
		{"Login as the same user", "POST /login?user=alice", false},
		{"Login of an anonymous session", "POST /login?user=alice", true},
		{"SetRoles", "POST /roles?role=admin", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, engine.Options{RotateGrace: grace}, httpsession.Options{}, nil)
			c := f.client(t)
			if !tt.anonymous {
				f.do(t, c, "POST /login?user=alice")
			}
			f.do(t, c, "POST /put?k=a&v=1")
			old := f.jarCookie(c)

			resp, body := f.do(t, c, tt.renew)
			require.Equal(t, "ok", body)
			renewed := sessionCookie(t, resp)
			require.NotNil(t, renewed)
			require.NotEqual(t, old.Value, renewed.Value)

			// A request that was in flight with the old cookie.
			late := f.client(t)
			resp, body = f.do(t, late, "GET /get?k=a", old)
			assert.Equal(t, "1", body, "reads work during the grace period")
			if ck := sessionCookie(t, resp); assert.NotNil(t, ck, "the client is told the new ID") {
				assert.Equal(t, renewed.Value, ck.Value)
			}
			resp, _ = f.do(t, f.client(t), "POST /put?k=a&v=2", old)
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "writes fail")
			if ck := sessionCookie(t, resp); assert.NotNil(t, ck) {
				assert.Equal(t, renewed.Value, ck.Value)
			}
			require.Len(t, f.errors(), 1)
			assert.ErrorIs(t, f.errors()[0], httpsession.ErrRotated)
			_, body = f.do(t, c, "GET /get?k=a")
			assert.Equal(t, "1", body, "the refused write left no trace")

			f.clock.Advance(grace + time.Second)
			resp, body = f.do(t, f.client(t), "GET /whoami", old)
			assert.Empty(t, body, "after the grace period the old ID is nobody")
			assert.Nil(t, sessionCookie(t, resp))
			_, body = f.do(t, c, "GET /whoami")
			assert.Equal(t, "alice", body, "the new ID lives on")
		})
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	c := f.client(t)
	f.do(t, c, "POST /login?user=alice")
	old := f.jarCookie(c)
	resp, _ := f.do(t, c, "POST /logout")
	ck := sessionCookie(t, resp)
	require.NotNil(t, ck)
	assert.Less(t, ck.MaxAge, 0, "the client drops the cookie")
	assert.Nil(t, f.jarCookie(c))
	assert.Equal(t, 0, f.store.Len())
	_, body := f.do(t, f.client(t), "GET /whoami", old)
	assert.Empty(t, body)
}

func TestLogoutEverywhere(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	laptop, phone, bob := f.client(t), f.client(t), f.client(t)
	f.do(t, laptop, "POST /login?user=alice")
	f.do(t, phone, "POST /login?user=alice")
	f.do(t, bob, "POST /login?user=bob")
	resp, _ := f.do(t, phone, "GET /private")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, body := f.do(t, laptop, "POST /logout-everywhere")
	assert.Equal(t, "2", body)
	if ck := sessionCookie(t, resp); assert.NotNil(t, ck) {
		assert.Less(t, ck.MaxAge, 0)
	}
	resp, _ = f.do(t, phone, "GET /private")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the other device is logged out")
	resp, _ = f.do(t, laptop, "GET /private")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = f.do(t, bob, "GET /private")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "other users are untouched")
}

func TestRequireAuthAndRole(t *testing.T) {
	tests := []struct {
		name           string
		setup          []string // requests made before the checks
		private, admin int      // status of GET /private and GET /admin
	}{
		{"no session", nil, 401, 401},
		{"anonymous session", []string{"POST /put?k=a&v=1"}, 401, 401},
		{"anonymous session claiming a role", []string{"POST /roles?role=admin"}, 401, 401},
		{"logged in", []string{"POST /login?user=alice"}, 200, 403},
		{"logged in, other role", []string{"POST /login?user=alice", "POST /roles?role=editor"}, 200, 403},
		{"logged in as admin", []string{"POST /login?user=alice", "POST /roles?role=editor&role=admin"}, 200, 200},
		{"logged out", []string{"POST /login?user=alice", "POST /roles?role=admin", "POST /logout"}, 401, 401},
	}
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(t)
			for _, req := range tt.setup {
				resp, body := f.do(t, c, req)
				require.Equal(t, http.StatusOK, resp.StatusCode, body)
			}
			resp, _ := f.do(t, c, "GET /private")
			assert.Equal(t, tt.private, resp.StatusCode, "/private")
			resp, _ = f.do(t, c, "GET /admin")
			assert.Equal(t, tt.admin, resp.StatusCode, "/admin")
		})
	}
}

func TestLoginRejectsEmptyUser(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	resp, body := f.do(t, f.client(t), "POST /login?user=")
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Contains(t, body, "empty user ID")
	assert.Nil(t, sessionCookie(t, resp))
}
