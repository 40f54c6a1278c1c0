package httpsession_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setCookie runs one request that puts a value through a Manager made with
// opts and returns the session cookie it sets, parsed.
func setCookie(t *testing.T, opts httpsession.Options) (*httpsession.Manager, *http.Cookie) {
	t.Helper()
	m := httpsession.New(openStore(t, engine.Options{AbsoluteTimeout: 2 * time.Hour}), opts)
	rec := httptest.NewRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Put(r.Context(), "a", 1)
	})).ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	lines := rec.Result().Header.Values("Set-Cookie")
	require.Len(t, lines, 1)
	c, err := http.ParseSetCookie(lines[0])
	require.NoError(t, err)
	assert.Contains(t, lines[0], "HttpOnly", "always HttpOnly")
	return m, c
}

func TestCookieNameAndAttributes(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	tests := []struct {
		name        string
		opts        httpsession.Options
		cookie      string
		secure      bool
		domain      string
		path        string
		sameSite    http.SameSite
		partitioned bool
	}{
		{"default: host-only, so __Host-", httpsession.Options{}, "__Host-id", true, "", "/", http.SameSiteLaxMode, false},
		{"Domain: __Secure-", httpsession.Options{Domain: "example.com"}, "__Secure-id", true, "example.com", "/", http.SameSiteLaxMode, false},
		{"Path: __Secure-", httpsession.Options{Path: "/app"}, "__Secure-id", true, "", "/app", http.SameSiteLaxMode, false},
		{"insecure: plain name", httpsession.Options{InsecureCookie: true, Logger: discard}, "id", false, "", "/", http.SameSiteLaxMode, false},
		{"explicit name", httpsession.Options{CookieName: "sid"}, "sid", true, "", "/", http.SameSiteLaxMode, false},
		{"Strict", httpsession.Options{SameSite: http.SameSiteStrictMode}, "__Host-id", true, "", "/", http.SameSiteStrictMode, false},
		{"None", httpsession.Options{SameSite: http.SameSiteNoneMode}, "__Host-id", true, "", "/", http.SameSiteNoneMode, false},
		{"Partitioned", httpsession.Options{Partitioned: true, SameSite: http.SameSiteNoneMode}, "__Host-id", true, "", "/", http.SameSiteNoneMode, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, c := setCookie(t, tt.opts)
			assert.Equal(t, tt.cookie, c.Name)
			assert.Equal(t, tt.cookie, m.CookieName())
			assert.NotEmpty(t, c.Value)
			assert.True(t, c.HttpOnly)
			assert.Equal(t, tt.secure, c.Secure, "Secure")
			assert.Equal(t, tt.domain, c.Domain)
			assert.Equal(t, tt.path, c.Path)
			assert.Equal(t, tt.sameSite, c.SameSite)
			assert.Equal(t, tt.partitioned, c.Partitioned)
			assert.Zero(t, c.MaxAge, "a session cookie by default")
			assert.True(t, c.Expires.IsZero(), "a session cookie by default")
		})
	}
}

func TestInsecureCookieWarns(t *testing.T) {
	var log bytes.Buffer
	httpsession.New(openStore(t, engine.Options{}), httpsession.Options{
		InsecureCookie: true,
		Logger:         slog.New(slog.NewTextHandler(&log, nil)),
	})
	assert.Contains(t, log.String(), "level=WARN")
	assert.Contains(t, log.String(), "InsecureCookie")

	log.Reset()
	httpsession.New(openStore(t, engine.Options{}), httpsession.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	assert.Empty(t, log.String(), "no warning by default")
}

func TestNewRejectsContradictions(t *testing.T) {
	store := openStore(t, engine.Options{})
	discard := slog.New(slog.DiscardHandler)
	tests := []struct {
		name string
		opts httpsession.Options
		msg  string
	}{
		{"SameSite=None without Secure", httpsession.Options{SameSite: http.SameSiteNoneMode, InsecureCookie: true, Logger: discard}, "SameSite=None"},
		{"SameSite default mode", httpsession.Options{SameSite: http.SameSiteDefaultMode}, "SameSite must be"},
		{"__Host- with Domain", httpsession.Options{CookieName: "__Host-x", Domain: "example.com"}, "__Host-"},
		{"__Host- with Path", httpsession.Options{CookieName: "__Host-x", Path: "/app"}, "__Host-"},
		{"__host- without Secure", httpsession.Options{CookieName: "__host-x", InsecureCookie: true, Logger: discard}, "__Host-"},
		{"__Secure- without Secure", httpsession.Options{CookieName: "__Secure-x", InsecureCookie: true, Logger: discard}, "__Secure-"},
		{"Partitioned without Secure", httpsession.Options{Partitioned: true, InsecureCookie: true, Logger: discard}, "Partitioned"},
		{"bad name", httpsession.Options{CookieName: "a b"}, "invalid Options"},
		{"relative path", httpsession.Options{Path: "app"}, "Path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "New must panic")
				assert.Contains(t, r, "httpsession: invalid Options")
				assert.Contains(t, r, tt.msg)
			}()
			httpsession.New(store, tt.opts)
		})
	}
	assert.Panics(t, func() { httpsession.New(nil, httpsession.Options{}) })
}

// The cookie is a session cookie unless Persistent or RememberMe says
// otherwise; RememberMe's choice sticks to the session.
func TestPersistence(t *testing.T) {
	const none = -1 // no session cookie in the response
	abs := int((2 * time.Hour).Seconds())
	tests := []struct {
		name       string
		persistent bool
		steps      []string
		wantMaxAge []int // of each step's cookie; 0: a session cookie
	}{
		{"default", false, []string{"POST /put?k=a&v=1", "POST /renew"}, []int{0, 0}},
		{"Persistent", true, []string{"POST /put?k=a&v=1", "POST /login?user=alice"}, []int{abs, abs}},
		{"RememberMe", false, []string{"POST /login?user=alice", "POST /remember?on=1", "GET /whoami", "POST /renew"},
			[]int{0, abs, none, abs}},
		{"RememberMe twice sets nothing more", false, []string{"POST /put?k=a&v=1", "POST /remember?on=1", "POST /remember?on=1"}, []int{0, abs, none}},
		{"RememberMe alone creates no session", false, []string{"POST /remember?on=1", "POST /put?k=a&v=1"}, []int{none, 0}},
		{"RememberMe before Login", false, []string{"POST /remember-login?user=alice"}, []int{abs}},
		{"RememberMe(false) over Persistent", true, []string{"POST /login?user=alice", "POST /remember?on=0", "POST /renew"},
			[]int{abs, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, engine.Options{AbsoluteTimeout: 2 * time.Hour}, httpsession.Options{Persistent: tt.persistent}, nil)
			c := f.client(t)
			for i, step := range tt.steps {
				resp, _ := f.do(t, c, step)
				ck := f.sessionCookie(t, resp)
				if tt.wantMaxAge[i] == none {
					assert.Nil(t, ck, step)
					continue
				}
				if assert.NotNil(t, ck, step) {
					assert.Equal(t, tt.wantMaxAge[i], ck.MaxAge, step)
					assert.Equal(t, tt.wantMaxAge[i] == 0, ck.Expires.IsZero(), step)
				}
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	f := newFixture(t, engine.Options{AbsoluteTimeout: 2 * time.Hour}, httpsession.Options{Persistent: true}, func(f *fixture) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			before := f.m.Deadline(ctx)
			if d, err := time.ParseDuration(r.FormValue("in")); err == nil {
				if err := f.m.SetDeadline(ctx, f.clock.Now().Add(d)); err != nil {
					http.Error(w, err.Error(), http.StatusConflict)
					return
				}
			}
			if r.FormValue("put") != "" {
				f.m.Put(ctx, "a", 1)
			}
			w.Write([]byte(before.Format(time.RFC3339) + " " + f.m.Deadline(ctx).Format(time.RFC3339)))
		})
	})
	c := f.client(t)
	t0 := f.clock.Now()
	resp, body := f.do(t, c, "POST /?in=10m&put=1") // no session yet: kept for the one created
	assert.Equal(t, "0001-01-01T00:00:00Z "+t0.Add(10*time.Minute).Format(time.RFC3339), body)
	if ck := f.sessionCookie(t, resp); assert.NotNil(t, ck) {
		assert.Equal(t, 600, ck.MaxAge, "the persistent cookie follows the deadline")
	}
	resp, body = f.do(t, c, "POST /?in=1h")
	assert.Equal(t, t0.Add(10*time.Minute).Format(time.RFC3339)+" "+t0.Add(time.Hour).Format(time.RFC3339), body)
	if ck := f.sessionCookie(t, resp); assert.NotNil(t, ck) {
		assert.Equal(t, 3600, ck.MaxAge)
	}
	resp, body = f.do(t, c, "POST /?in=-1m")
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Contains(t, body, engine.ErrInvalid.Error())

	f.clock.Advance(61 * time.Minute)
	resp, _ = f.do(t, c, "POST /?put=1")
	assert.NotNil(t, f.sessionCookie(t, resp), "past the deadline: a new session")
}
