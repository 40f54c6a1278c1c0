package httpsession_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// login logs c in as user with the given User-Agent.
func (f *fixture) loginAs(t *testing.T, c *http.Client, user, ua string) {
	t.Helper()
	req, err := http.NewRequest("POST", f.srv.URL+"/login?user="+user, nil)
	require.NoError(t, err)
	req.Header.Set("User-Agent", ua)
	resp, err := c.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// sessions returns the lines of c's GET /sessions: "handle label[ current]".
func (f *fixture) sessions(t *testing.T, c *http.Client) []string {
	t.Helper()
	resp, body := f.do(t, c, "GET /sessions")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	return strings.Split(strings.TrimSpace(body), "\n")
}

const (
	firefoxLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
	chromeMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36"
)

func TestDevices(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	laptop, desk, bob := f.client(t), f.client(t), f.client(t)
	f.loginAs(t, laptop, "alice", firefoxLinux)
	f.clock.Advance(time.Minute)
	f.loginAs(t, desk, "alice", chromeMac)
	f.loginAs(t, bob, "bob", chromeMac)

	list := f.sessions(t, desk)
	require.Len(t, list, 2)
	laptopHandle, label, _ := strings.Cut(list[0], " ")
	assert.Equal(t, "Firefox on Linux", label, "oldest first, labelled from the User-Agent")
	deskHandle, label, _ := strings.Cut(list[1], " ")
	assert.Equal(t, "Chrome on macOS current", label)
	bobHandle, _, _ := strings.Cut(f.sessions(t, bob)[0], " ")

	resp, body := f.do(t, desk, "POST /end?h="+bobHandle)
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "another user's session cannot be ended")
	assert.Contains(t, body, engine.ErrNotFound.Error())
	resp, _ = f.do(t, bob, "GET /private")
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	resp, body = f.do(t, desk, "POST /end?h="+laptopHandle)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Nil(t, f.sessionCookie(t, resp), "ending another device keeps this one")
	resp, _ = f.do(t, laptop, "GET /private")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the laptop is logged out")
	assert.Equal(t, []string{deskHandle + " Chrome on macOS current"}, f.sessions(t, desk))

	resp, _ = f.do(t, desk, "POST /end?h="+deskHandle)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	if ck := f.sessionCookie(t, resp); assert.NotNil(t, ck) {
		assert.Less(t, ck.MaxAge, 0, "ending this device is a logout")
	}
	resp, _ = f.do(t, desk, "GET /private")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	anon := f.client(t)
	f.do(t, anon, "POST /put?k=a&v=1")
	for _, req := range []string{"GET /sessions", "POST /end-others", "POST /end?h=" + bobHandle} {
		resp, body := f.do(t, anon, req)
		assert.Equal(t, http.StatusConflict, resp.StatusCode, req)
		assert.Contains(t, body, httpsession.ErrUnauthenticated.Error(), req)
	}
	resp, _ = f.do(t, bob, "GET /private")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestEndOtherSessions(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	a, b, c, bob := f.client(t), f.client(t), f.client(t), f.client(t)
	for _, cl := range []*http.Client{a, b, c} {
		f.loginAs(t, cl, "alice", firefoxLinux)
	}
	f.loginAs(t, bob, "bob", firefoxLinux)
	resp, body := f.do(t, b, "POST /end-others")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "2", body)
	assert.Nil(t, f.sessionCookie(t, resp), "this device stays logged in, under the same ID")
	for cl, want := range map[*http.Client]int{a: 401, b: 200, c: 401, bob: 200} {
		resp, _ := f.do(t, cl, "GET /private")
		assert.Equal(t, want, resp.StatusCode)
	}
}

func TestLabels(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	f := newFixture(t, engine.Options{}, httpsession.Options{
		LabelFunc: func(r *http.Request) string { return r.Header.Get("X-Label") + long },
	}, nil)
	c := f.client(t)
	req, err := http.NewRequest("POST", f.srv.URL+"/login?user=alice", nil)
	require.NoError(t, err)
	req.Header.Set("X-Label", "x")
	resp, err := c.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "a label past the engine's limit is cut, not refused")
	list, err := f.store.UserSessions(t.Context(), "alice")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "x"+strings.Repeat("é", 127), list[0].Label(), "cut to 256 bytes, between characters")
}

func TestDeviceLabel(t *testing.T) {
	tests := []struct{ ua, want string }{
		{firefoxLinux, "Firefox on Linux"},
		{chromeMac, "Chrome on macOS"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 Edg/138.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1", "Safari on iOS"},
		{"Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
		{"curl/8.14.1", "curl"},
		{"Mozilla/5.0 (X11; Linux x86_64)", "a browser on Linux"},
		{"my-bot\x00/1.0 \u00e9" + strings.Repeat("x", 100), "my-bot/1.0 " + strings.Repeat("x", 53)},
		{"", "unknown device"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("User-Agent", tt.ua)
		assert.Equal(t, tt.want, httpsession.DeviceLabel(req), tt.ua)
	}
}

func TestMergeSession(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, func(f *fixture) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/", testMux(f))
		mux.HandleFunc("POST /merge", func(w http.ResponseWriter, r *http.Request) {
			if err := f.m.MergeSession(r.Context(), r.FormValue("token")); err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			w.Write([]byte(strings.Join(f.m.Keys(r.Context()), ",")))
		})
		return mux
	})
	create := func(user string, values map[string]any) string {
		ctx, err := f.m.Load(t.Context(), "")
		require.NoError(t, err)
		for k, v := range values {
			f.m.Put(ctx, k, v)
		}
		if user != "" {
			require.NoError(t, f.m.Login(ctx, user))
		}
		token, _, err := f.m.Commit(ctx)
		require.NoError(t, err)
		return token
	}

	c := f.client(t)
	f.loginAs(t, c, "alice", firefoxLinux)
	f.do(t, c, "POST /put?k=theme&v=dark")

	anon := create("", map[string]any{"cart": "tea", "theme": "light", httpsession.RolesKey: []string{"admin"}})
	resp, body := f.do(t, c, "POST /merge?token="+anon)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "cart,theme", body, "no roles from an anonymous session")
	_, body = f.do(t, c, "GET /get?k=theme")
	assert.Equal(t, "light", body, "the other session's value wins")
	_, err := f.store.Get(anon)
	assert.ErrorIs(t, err, engine.ErrNotFound, "the merged session is ended")

	mine := create("alice", map[string]any{"draft": "x"})
	resp, body = f.do(t, c, "POST /merge?token="+mine)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "cart,draft,theme", body, "the same user's session merges")

	bobs := create("bob", map[string]any{"secret": "bob's"})
	resp, body = f.do(t, c, "POST /merge?token="+bobs)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Contains(t, body, httpsession.ErrOtherUser.Error())
	_, err = f.store.Get(bobs)
	assert.NoError(t, err, "bob's session is untouched")
	resp, body = f.do(t, f.client(t), "POST /merge?token="+bobs)
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "an anonymous request cannot take a user's session either")
	assert.Contains(t, body, httpsession.ErrOtherUser.Error())

	for _, token := range []string{"", "nonsense", mine, f.jarCookie(c).Value} {
		resp, body := f.do(t, c, "POST /merge?token="+token)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "nothing to merge: %q", body)
	}

	other := create("", map[string]any{"x": 1})
	_, err = f.store.Rotate(t.Context(), other)
	require.NoError(t, err)
	resp, _ = f.do(t, c, "POST /merge?token="+other)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "without grace, a rotated token names nothing")
}

func TestMergeSessionStale(t *testing.T) {
	f := newFixture(t, engine.Options{RotateGrace: time.Minute}, httpsession.Options{}, nil)
	ctx, err := f.m.Load(t.Context(), "")
	require.NoError(t, err)
	f.m.Put(ctx, "x", 1)
	token, _, err := f.m.Commit(ctx)
	require.NoError(t, err)
	_, err = f.store.Rotate(t.Context(), token)
	require.NoError(t, err)

	mine, err := f.m.Load(t.Context(), "")
	require.NoError(t, err)
	assert.ErrorIs(t, f.m.MergeSession(mine, token), httpsession.ErrStaleCookie, "a stale token is not merged")
	stale, err := f.m.Load(t.Context(), token)
	require.NoError(t, err)
	assert.ErrorIs(t, f.m.MergeSession(stale, "whatever"), httpsession.ErrStaleCookie, "nor merged into")
}

// An error from CreateLimit other than ErrRateLimited is reported as
// both.
func TestCreateLimitError(t *testing.T) {
	busy := errors.New("busy")
	f := newFixture(t, engine.Options{}, httpsession.Options{CreateLimit: func(*http.Request) error { return busy }}, nil)
	resp, _ := f.do(t, f.client(t), "POST /put?k=a&v=1")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Len(t, f.errors(), 1)
	assert.ErrorIs(t, f.errors()[0], httpsession.ErrRateLimited)
	assert.ErrorIs(t, f.errors()[0], busy)
}
