package httpsession_test

import (
	"bytes"
	"fmt"
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

// A flood of anonymous sessions cannot keep users out: at MaxSessions the
// engine evicts anonymous sessions to make room for a login.
func TestFloodDoesNotBlockLogin(t *testing.T) {
	f := newFixture(t, engine.Options{MaxSessions: 50}, httpsession.Options{}, nil)
	for i := range 60 {
		resp, _ := f.do(t, f.client(t), "POST /put?k=a&v=1")
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d", i)
	}
	assert.LessOrEqual(t, f.store.Len(), 50)
	c := f.client(t)
	resp, body := f.do(t, c, "POST /login?user=alice")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	_, body = f.do(t, c, "GET /whoami")
	assert.Equal(t, "alice", body)
	assert.Empty(t, f.errors())
}

// limited returns a Manager whose CreateLimit lets each address create n
// sessions a minute on clock, with the default ErrorFunc logging to log,
// and a handler that puts a value (or, for /login, logs in).
func limited(t *testing.T, clock *engine.Clock, n, slots int, log *bytes.Buffer) (*httpsession.Manager, http.Handler) {
	store := openStore(t, engine.Options{Clock: clock})
	m := httpsession.New(store, httpsession.Options{
		CreateLimit: httpsession.PerClientLimitAt(nil, n, time.Minute, clock.Now, slots),
		Logger:      slog.New(slog.NewTextHandler(log, nil)),
		Now:         clock.Now,
	})
	return m, m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			assert.NoError(t, m.Login(r.Context(), "alice"))
		} else {
			m.Put(r.Context(), "a", 1)
		}
		fmt.Fprint(w, "handler body")
	}))
}

// post sends a POST from addr, with cookie if not nil, and returns the
// recorder.
func postFrom(h http.Handler, path, addr string, cookie *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, nil)
	req.RemoteAddr = addr
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPerClientLimit(t *testing.T) {
	clock := engine.NewManualClock(epoch)
	var log bytes.Buffer
	m, h := limited(t, clock, 5, 1<<10, &log)
	const mallory = "192.0.2.66:4000"

	var codes []int
	var first *http.Cookie
	for range 8 {
		rec := postFrom(h, "/", mallory, nil)
		codes = append(codes, rec.Code)
		if first == nil {
			first = rec.Result().Cookies()[0]
		}
		if rec.Code == http.StatusTooManyRequests {
			assert.NotContains(t, rec.Body.String(), "handler body", "the refusal replaces the handler's response")
			assert.Empty(t, rec.Result().Cookies())
		}
	}
	assert.Equal(t, []int{200, 200, 200, 200, 200, 429, 429, 429}, codes)
	assert.Contains(t, log.String(), "level=WARN")
	assert.Contains(t, log.String(), httpsession.ErrRateLimited.Error())

	assert.Equal(t, http.StatusOK, postFrom(h, "/", "192.0.2.7:1", nil).Code, "another client is not limited")
	assert.Equal(t, http.StatusOK, postFrom(h, "/", mallory, first).Code, "a request with a session creates nothing")
	assert.Equal(t, http.StatusOK, postFrom(h, "/login", mallory, nil).Code, "logins are not limited")

	clock.Advance(12 * time.Second) // one fifth of a minute: one session back
	assert.Equal(t, http.StatusOK, postFrom(h, "/", mallory, nil).Code)
	assert.Equal(t, http.StatusTooManyRequests, postFrom(h, "/", mallory, nil).Code)
	clock.Advance(time.Minute)
	for range 5 {
		assert.Equal(t, http.StatusOK, postFrom(h, "/", mallory, nil).Code, "a full bucket again, no more")
	}
	assert.Equal(t, http.StatusTooManyRequests, postFrom(h, "/", mallory, nil).Code)

	// Commit reports the refusal to a handler that asks.
	ctxErr := make(chan error, 1)
	hc := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Put(r.Context(), "a", 1)
		_, _, err := m.Commit(r.Context())
		ctxErr <- err
	}))
	postFrom(hc, "/", mallory, nil)
	assert.ErrorIs(t, <-ctxErr, httpsession.ErrRateLimited)
}

func TestPerClientLimitKeys(t *testing.T) {
	clock := engine.NewManualClock(epoch)
	var log bytes.Buffer

	// IPv6 clients are limited by /64.
	_, h := limited(t, clock, 1, 1<<10, &log)
	assert.Equal(t, http.StatusOK, postFrom(h, "/", "[2001:db8:1:2::1]:1", nil).Code)
	assert.Equal(t, http.StatusTooManyRequests, postFrom(h, "/", "[2001:db8:1:2::ffff]:1", nil).Code, "same /64")
	assert.Equal(t, http.StatusOK, postFrom(h, "/", "[2001:db8:1:3::1]:1", nil).Code, "another /64")

	// With a table of one bucket, every client shares it: a collision only
	// makes the limit stricter.
	_, h = limited(t, clock, 2, 1, &log)
	assert.Equal(t, http.StatusOK, postFrom(h, "/", "192.0.2.1:1", nil).Code)
	assert.Equal(t, http.StatusOK, postFrom(h, "/", "192.0.2.2:1", nil).Code)
	assert.Equal(t, http.StatusTooManyRequests, postFrom(h, "/", "192.0.2.3:1", nil).Code)

	// A key of the caller's choosing.
	store := openStore(t, engine.Options{Clock: clock})
	byHeader := httpsession.PerClientLimitAt(func(r *http.Request) string { return r.Header.Get("X-Client") }, 1, time.Minute, clock.Now, 1<<10)
	m := httpsession.New(store, httpsession.Options{CreateLimit: byHeader, Logger: slog.New(slog.DiscardHandler)})
	h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.Put(r.Context(), "a", 1) }))
	send := func(client string) int {
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set("X-Client", client)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	assert.Equal(t, []int{200, 429, 200}, []int{send("a"), send("a"), send("b")})

	assert.Panics(t, func() { httpsession.PerClientLimit(nil, 0, time.Minute) })
	assert.Panics(t, func() { httpsession.PerClientLimit(nil, 1, 0) })
}
