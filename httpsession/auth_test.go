package httpsession_test

import (
	"fmt"
	"net/http"
	"strings"
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
	ck := f.sessionCookie(t, resp)
	require.NotNil(t, ck)
	assert.NotEqual(t, anon.Value, ck.Value)
	_, body = f.do(t, c, "GET /whoami")
	assert.Equal(t, "alice", body)
	_, body = f.do(t, c, "GET /get?k=cart")
	assert.Equal(t, "3", body, "the anonymous session's values came along")

	// A login ends the old ID at once, grace period or not.
	other := f.client(t)
	resp, body = f.do(t, other, "GET /get?k=cart", anon)
	assert.Empty(t, body)
	assert.Nil(t, f.sessionCookie(t, resp))
	_, body = f.do(t, other, "GET /whoami", anon)
	assert.Empty(t, body)
	assert.Equal(t, 1, f.store.Len(), "the anonymous session became the logged-in one")
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

// Every rotation httpsession makes follows a change of privilege, so the
// old ID ends at once even when the engine keeps rotated IDs readable.
func TestPrivilegedRotationsEndOldIDAtOnce(t *testing.T) {
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
			f := newFixture(t, engine.Options{RotateGrace: 30 * time.Second}, httpsession.Options{}, nil)
			c := f.client(t)
			if !tt.anonymous {
				f.do(t, c, "POST /login?user=alice")
			}
			f.do(t, c, "POST /put?k=a&v=1")
			old := f.jarCookie(c)

			resp, body := f.do(t, c, tt.renew)
			require.Equal(t, "ok", body)
			renewed := f.sessionCookie(t, resp)
			require.NotNil(t, renewed)
			require.NotEqual(t, old.Value, renewed.Value)

			late := f.client(t)
			resp, body = f.do(t, late, "GET /get?k=a", old)
			assert.Empty(t, body, "the old ID reads nothing")
			assert.Nil(t, f.sessionCookie(t, resp), "and learns nothing")
			resp, _ = f.do(t, late, "POST /put?k=a&v=2", old)
			if ck := f.sessionCookie(t, resp); assert.NotNil(t, ck, "a write through it starts a fresh session") {
				assert.NotEqual(t, renewed.Value, ck.Value)
				assert.NotEqual(t, old.Value, ck.Value)
			}
			_, body = f.do(t, c, "GET /get?k=a")
			assert.Equal(t, "1", body, "the renewed session is untouched")
			_, body = f.do(t, c, "GET /whoami")
			assert.Equal(t, "alice", body)
			assert.Empty(t, f.errors())
		})
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	c := f.client(t)
	f.do(t, c, "POST /login?user=alice")
	old := f.jarCookie(c)
	resp, _ := f.do(t, c, "POST /logout")
	ck := f.sessionCookie(t, resp)
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
	if ck := f.sessionCookie(t, resp); assert.NotNil(t, ck) {
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
		setup          []string // requests made before the checks, each answering 200
		private, admin int      // status of GET /private and GET /admin
	}{
		{"no session", nil, 401, 401},
		{"anonymous session", []string{"POST /put?k=a&v=1"}, 401, 401},
		{"anonymous session holding a roles value", []string{"POST /put?k=roles&v=admin"}, 401, 401},
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

func TestSetRolesNeedsLogin(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	c := f.client(t)
	f.do(t, c, "POST /put?k=a&v=1")
	resp, body := f.do(t, c, "POST /roles?role=admin")
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Contains(t, body, httpsession.ErrUnauthenticated.Error())
	assert.Nil(t, f.sessionCookie(t, resp), "nothing renewed")
	_, body = f.do(t, c, "GET /keys")
	assert.Equal(t, "a", body, "no roles stored")
}

// Values put before a login are the anonymous holder's choice: roles never
// survive the login, and with ClearValuesAtLogin nothing does.
func TestLoginDropsPreLoginValues(t *testing.T) {
	tests := []struct {
		name     string
		clear    bool
		sameReq  bool // the values are put in the login request itself
		wantKeys string
	}{
		{"kept by default, roles dropped", false, false, "cart"},
		{"cleared with ClearValuesAtLogin", true, false, ""},
		{"same request, kept by default", false, true, "cart"},
		{"same request, cleared", true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := func(f *fixture) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctx := r.Context()
					if r.URL.Path == "/seed" || (tt.sameReq && r.URL.Path == "/login") {
						f.m.Put(ctx, "cart", "tea")
						f.m.Put(ctx, httpsession.RolesKey, []string{"admin"})
					}
					if r.URL.Path == "/login" {
						assert.NoError(t, f.m.Login(ctx, "alice"))
					}
					fmt.Fprintf(w, "%s admin=%t", strings.Join(f.m.Keys(ctx), ","), f.m.HasRole(ctx, "admin"))
				})
			}
			f := newFixture(t, engine.Options{}, httpsession.Options{ClearValuesAtLogin: tt.clear}, h)
			c := f.client(t)
			if !tt.sameReq {
				f.do(t, c, "POST /seed")
			}
			_, body := f.do(t, c, "POST /login")
			assert.Equal(t, tt.wantKeys+" admin=false", body, "in the login request")
			_, body = f.do(t, c, "GET /")
			assert.Equal(t, tt.wantKeys+" admin=false", body, "in later requests")
		})
	}
}

func TestLoginRejectsEmptyUser(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	resp, body := f.do(t, f.client(t), "POST /login?user=")
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Contains(t, body, "empty user ID")
	assert.Nil(t, f.sessionCookie(t, resp))
}

func TestRequireRecentAuth(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	c := f.client(t)
	resp, _ := f.do(t, c, "GET /recent")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no session")
	f.do(t, c, "POST /put?k=a&v=1")
	resp, _ = f.do(t, c, "GET /recent")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "anonymous")

	f.do(t, c, "POST /login?user=alice")
	resp, _ = f.do(t, c, "GET /recent")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "just logged in")
	f.clock.Advance(61 * time.Second)
	resp, _ = f.do(t, c, "GET /recent")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "login older than a minute")
	resp, _ = f.do(t, c, "GET /private")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "still logged in")

	f.do(t, c, "POST /login?user=alice") // the step-up: a fresh authentication
	resp, _ = f.do(t, c, "GET /recent")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "re-login refreshed the authentication time")
}

func TestRequireRecentAuthStaleHandler(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, func(f *fixture) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
			assert.NoError(t, f.m.Login(r.Context(), "alice"))
		})
		mux.Handle("GET /", f.m.RequireRecentAuth(time.Minute,
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "go ahead") }),
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "password again, please") }),
		))
		return mux
	})
	c := f.client(t)
	_, body := f.do(t, c, "GET /")
	assert.Equal(t, "password again, please", body)
	f.do(t, c, "POST /login")
	_, body = f.do(t, c, "GET /")
	assert.Equal(t, "go ahead", body)
}
