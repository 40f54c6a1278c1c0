package httpsession_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/sesscache/sesscache/internal/leakcheck"
	"github.com/stretchr/testify/require"
)

// TestMain fails the run if an engine, server or client connection
// goroutine outlives the tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m, func(g string) bool {
		return strings.Contains(g, "sesscache/sesscache/engine") || strings.Contains(g, "net/http.(*conn).serve") ||
			strings.Contains(g, "net/http.(*persistConn)") || strings.Contains(g, "httptest")
	})
}

// openStore opens an engine that the test's cleanup closes, unless the
// test did.
func openStore(t *testing.T, opts engine.Options) *engine.Engine {
	t.Helper()
	store, err := engine.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := store.Close(); !errors.Is(err, engine.ErrClosed) {
			require.NoError(t, err)
		}
	})
	return store
}

// fixture is an engine on a manual clock, a Manager over it and a test
// server running a handler behind the Manager; Cleanup closes all three.
type fixture struct {
	store *engine.Engine
	clock *engine.Clock
	m     *httpsession.Manager
	srv   *httptest.Server
	name  string // the session cookie's name

	mu   sync.Mutex
	errs []error // what ErrorFunc received
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// newFixture serves h, or the routes of testMux if h is nil. A nil
// ErrorFunc in hopts is replaced by one that records the error and answers
// 500 as the default does, and a nil Now by the engine's clock. h may use
// f.m: it is built when the handler is first called.
func newFixture(t *testing.T, eopts engine.Options, hopts httpsession.Options, h func(f *fixture) http.Handler) *fixture {
	t.Helper()
	f := &fixture{clock: engine.NewManualClock(epoch)}
	if eopts.Clock == nil {
		eopts.Clock = f.clock
	} else {
		f.clock = eopts.Clock
	}
	f.store = openStore(t, eopts)
	if hopts.ErrorFunc == nil {
		hopts.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
			f.mu.Lock()
			f.errs = append(f.errs, err)
			f.mu.Unlock()
			http.Error(w, "commit failed", http.StatusInternalServerError)
		}
	}
	if hopts.Now == nil {
		hopts.Now = f.clock.Now
	}
	f.m = httpsession.New(f.store, hopts)
	f.name = f.m.CookieName()
	if h == nil {
		h = testMux
	}
	f.srv = httptest.NewServer(f.m.Handler(h(f)))
	t.Cleanup(f.srv.Close) // runs before the store closes: cleanups are LIFO
	return f
}

// errors returns what ErrorFunc has received so far.
func (f *fixture) errors() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.errs...)
}

// client returns a client with its own cookie jar, like a separate browser.
func (f *fixture) client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Transport: f.srv.Client().Transport, Jar: jar}
}

// do sends a request to path (with method, e.g. "GET /x") and returns the
// response, its body already read and closed.
func (f *fixture) do(t *testing.T, c *http.Client, methodPath string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	method, path, ok := strings.Cut(methodPath, " ")
	require.True(t, ok, "want \"METHOD /path\"")
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	require.NoError(t, err)
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, string(body)
}

// sessionCookie returns the session cookie the response sets, or nil.
func (f *fixture) sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	return namedCookie(t, resp, f.name)
}

// namedCookie returns the cookie called name that the response sets, or
// nil.
func namedCookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, line := range resp.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		require.NoError(t, err)
		if c.Name == name {
			require.Nil(t, found, "two session cookies in one response")
			found = c
		}
	}
	return found
}

// jarCookie returns the session cookie the client's jar holds, or nil.
func (f *fixture) jarCookie(c *http.Client) *http.Cookie {
	req, _ := http.NewRequest("GET", f.srv.URL, nil)
	for _, ck := range c.Jar.Cookies(req.URL) {
		if ck.Name == f.name {
			return ck
		}
	}
	return nil
}

// cookie returns a cookie of the session's name with the given value.
func (f *fixture) cookie(value string) *http.Cookie {
	return &http.Cookie{Name: f.name, Value: value}
}

// testMux is the handler most tests share. Queries carry the data:
// k (key), v (value), user, role.
func testMux(f *fixture) http.Handler {
	m := f.m
	mux := http.NewServeMux()
	text := func(w http.ResponseWriter, format string, args ...any) {
		fmt.Fprintf(w, format, args...)
	}
	fail := func(w http.ResponseWriter, err error) {
		http.Error(w, err.Error(), http.StatusConflict)
	}
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		text(w, "%s", m.GetString(r.Context(), r.FormValue("k")))
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		text(w, "%s", strings.Join(m.Keys(r.Context()), ","))
	})
	mux.HandleFunc("POST /put", func(w http.ResponseWriter, r *http.Request) {
		m.Put(r.Context(), r.FormValue("k"), r.FormValue("v"))
		text(w, "ok")
	})
	mux.HandleFunc("POST /remove", func(w http.ResponseWriter, r *http.Request) {
		m.Remove(r.Context(), r.FormValue("k"))
		text(w, "ok")
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Login(r.Context(), r.FormValue("user")); err != nil {
			fail(w, err)
			return
		}
		text(w, "ok")
	})
	mux.HandleFunc("POST /renew", func(w http.ResponseWriter, r *http.Request) {
		if err := m.RenewToken(r.Context()); err != nil {
			fail(w, err)
			return
		}
		text(w, "ok")
	})
	mux.HandleFunc("POST /roles", func(w http.ResponseWriter, r *http.Request) {
		if err := m.SetRoles(r.Context(), r.URL.Query()["role"]...); err != nil {
			fail(w, err)
			return
		}
		text(w, "ok")
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Destroy(r.Context()); err != nil {
			fail(w, err)
			return
		}
		text(w, "ok")
	})
	mux.HandleFunc("POST /logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		n, err := m.LogoutEverywhere(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		text(w, "%d", n)
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		text(w, "%s", m.UserID(r.Context()))
	})
	mux.Handle("GET /private", m.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		text(w, "private")
	})))
	mux.Handle("GET /admin", m.RequireRole("admin", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		text(w, "admin")
	})))
	mux.Handle("GET /recent", m.RequireRecentAuth(time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		text(w, "recent")
	}), nil))
	mux.HandleFunc("GET /sessions", func(w http.ResponseWriter, r *http.Request) {
		list, err := m.Sessions(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		for _, s := range list {
			current := ""
			if s.Handle() == m.Handle(r.Context()) {
				current = " current"
			}
			text(w, "%s %s%s\n", s.Handle(), s.Label(), current)
		}
	})
	mux.HandleFunc("POST /end", func(w http.ResponseWriter, r *http.Request) {
		h, err := engine.ParseHandle(r.FormValue("h"))
		if err == nil {
			err = m.EndSession(r.Context(), h)
		}
		if err != nil {
			fail(w, err)
			return
		}
		text(w, "ok")
	})
	mux.HandleFunc("POST /end-others", func(w http.ResponseWriter, r *http.Request) {
		n, err := m.EndOtherSessions(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		text(w, "%d", n)
	})
	mux.HandleFunc("POST /remember", func(w http.ResponseWriter, r *http.Request) {
		m.RememberMe(r.Context(), r.FormValue("on") == "1")
		text(w, "ok")
	})
	mux.HandleFunc("POST /remember-login", func(w http.ResponseWriter, r *http.Request) {
		m.RememberMe(r.Context(), true)
		if err := m.Login(r.Context(), r.FormValue("user")); err != nil {
			fail(w, err)
			return
		}
		text(w, "ok")
	})
	return mux
}

// countingStore is a Store that counts the lookups it passes on.
type countingStore struct {
	httpsession.Store
	finds atomic.Int64
}

func (c *countingStore) Find(ctx context.Context, id string, fp []byte) (engine.Session, error) {
	c.finds.Add(1)
	return c.Store.Find(ctx, id, fp)
}
