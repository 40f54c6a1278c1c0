package httpsession_test

import (
	"bytes"
	"fmt"
	"log/slog"
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

// cacheHeaders are the headers a response gets only when it sets a cookie.
var cacheHeaders = []string{"Set-Cookie", "Vary", "Cache-Control"}

func TestNoHeadersWhenNothingChanged(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, nil)
	c := f.client(t)
	f.do(t, c, "POST /put?k=a&v=1") // the client now has a session
	tests := []struct {
		name, req string
		cookie    bool
	}{
		{"anonymous read", "GET /get?k=a", false},
		{"anonymous remove of a missing key", "POST /remove?k=a", false},
		{"anonymous keys", "GET /keys", false},
		{"session read", "GET /get?k=a", true},
		{"session remove of a missing key", "POST /remove?k=zz", true},
		{"session 401", "GET /private", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := f.client(t)
			if tt.cookie {
				client = c
			}
			resp, _ := f.do(t, client, tt.req)
			for _, h := range cacheHeaders {
				assert.Empty(t, resp.Header.Values(h), h)
			}
		})
	}
	assert.Equal(t, 1, f.store.Len(), "reads created no session")
}

func TestCookieAttributes(t *testing.T) {
	tests := []struct {
		name          string
		nonPersistent bool
		wantMaxAge    int
	}{
		{"persistent: Max-Age is the absolute timeout", false, int((2 * time.Hour).Seconds())},
		{"non-persistent: no Max-Age", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, engine.Options{AbsoluteTimeout: 2 * time.Hour},
				httpsession.Options{NonPersistent: tt.nonPersistent}, nil)
			resp, _ := f.do(t, f.client(t), "POST /put?k=a&v=1")
			ck := sessionCookie(t, resp)
			require.NotNil(t, ck)
			assert.NotEmpty(t, ck.Value)
			assert.True(t, ck.HttpOnly, "HttpOnly")
			assert.True(t, ck.Secure, "Secure")
			assert.Equal(t, http.SameSiteLaxMode, ck.SameSite)
			assert.Equal(t, "/", ck.Path)
			assert.Empty(t, ck.Domain, "host-only")
			assert.Equal(t, tt.wantMaxAge, ck.MaxAge)
			assert.Equal(t, tt.nonPersistent, ck.Expires.IsZero())
			assert.Equal(t, []string{"Cookie"}, resp.Header.Values("Vary"))
			assert.Equal(t, []string{`no-cache="Set-Cookie"`}, resp.Header.Values("Cache-Control"))
		})
	}
}

func TestCookieKeepsHandlerHeaders(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept-Encoding, Cookie")
		http.SetCookie(w, &http.Cookie{Name: "theme", Value: "dark"})
		httpsession.Put(r.Context(), "a", 1)
		require.NoError(t, httpsession.Commit(r.Context()))
		httpsession.Put(r.Context(), "b", 2) // a second commit replaces the cookie, not adds one
		fmt.Fprint(w, "ok")
	})
	f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
	resp, _ := f.do(t, f.client(t), "GET /")
	assert.Len(t, resp.Header.Values("Set-Cookie"), 2, "theme and one session cookie")
	assert.NotNil(t, sessionCookie(t, resp))
	assert.Equal(t, []string{"Accept-Encoding, Cookie"}, resp.Header.Values("Vary"))
}

// An ID the server did not issue, or no longer honours, is never adopted.
func TestStrictMode(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	tests := []struct {
		name   string
		cookie func(t *testing.T, f *fixture) string // what the client presents
	}{
		{"client-chosen ID", func(*testing.T, *fixture) string { return "attacker-chosen-id" }},
		{"well-formed but never issued", func(t *testing.T, f *fixture) string {
			other, err := engine.Open(engine.Options{SigningKeys: [][]byte{key}})
			require.NoError(t, err)
			defer other.Close()
			s, err := other.Create(engine.CreateOptions{})
			require.NoError(t, err)
			return s.ID()
		}},
		{"tampered", func(t *testing.T, f *fixture) string {
			s, err := f.store.Create(engine.CreateOptions{UserID: "victim"})
			require.NoError(t, err)
			id := []byte(s.ID())
			id[3] ^= 1 // still base64url, signature no longer matches
			if id[3] == '-' || id[3] == '_' {
				id[3] = 'A'
			}
			return string(id)
		}},
		{"expired", func(t *testing.T, f *fixture) string {
			s, err := f.store.Create(engine.CreateOptions{UserID: "victim"})
			require.NoError(t, err)
			f.clock.Advance(31 * time.Minute) // past the default idle timeout
			return s.ID()
		}},
		{"destroyed", func(t *testing.T, f *fixture) string {
			s, err := f.store.Create(engine.CreateOptions{UserID: "victim"})
			require.NoError(t, err)
			require.NoError(t, f.store.Delete(s.ID()))
			return s.ID()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, engine.Options{SigningKeys: [][]byte{key}}, httpsession.Options{}, nil)
			planted := &http.Cookie{Name: httpsession.DefaultCookieName, Value: tt.cookie(t, f)}
			c := f.client(t)

			resp, body := f.do(t, c, "GET /whoami", planted)
			assert.Empty(t, body, "no user")
			assert.Nil(t, sessionCookie(t, resp), "a read sets no cookie")

			resp, _ = f.do(t, c, "POST /put?k=a&v=1", planted)
			ck := sessionCookie(t, resp)
			require.NotNil(t, ck, "a write gets a fresh session")
			assert.NotEqual(t, planted.Value, ck.Value)
			_, body = f.do(t, c, "GET /get?k=a")
			assert.Equal(t, "1", body, "the fresh session works")
		})
	}
}

func TestFingerprintBinding(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{
		FingerprintFunc: func(r *http.Request) []byte { return []byte(r.UserAgent()) },
	}, nil)
	c := f.client(t)
	f.do(t, c, "POST /put?k=a&v=1")
	_, body := f.do(t, c, "GET /get?k=a")
	assert.Equal(t, "1", body, "same client")

	stolen := f.jarCookie(c)
	req, err := http.NewRequest("GET", f.srv.URL+"/get?k=a", nil)
	require.NoError(t, err)
	req.AddCookie(stolen)
	req.Header.Set("User-Agent", "another browser")
	resp, err := f.client(t).Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Nil(t, sessionCookie(t, resp))
	assert.Equal(t, uint64(1), f.store.Stats().BindingMismatches)
}

func TestTooLarge(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	tests := []struct {
		name     string
		commit   bool // the handler calls Commit and answers the error itself
		wantCode int
	}{
		{"reported to ErrorFunc", false, http.StatusInternalServerError},
		{"returned by Commit", true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var commitErr error
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				httpsession.Put(r.Context(), "big", big)
				if tt.commit {
					if commitErr = httpsession.Commit(r.Context()); commitErr != nil {
						http.Error(w, "too much", http.StatusRequestEntityTooLarge)
						return
					}
				}
				fmt.Fprint(w, "handler body")
			})
			f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
			resp, body := f.do(t, f.client(t), "POST /")
			assert.Equal(t, tt.wantCode, resp.StatusCode)
			assert.NotContains(t, body, "handler body", "the failed commit's response replaced the handler's")
			assert.Nil(t, sessionCookie(t, resp))
			assert.Equal(t, 0, f.store.Len())
			err := commitErr
			if !tt.commit {
				require.Len(t, f.errors(), 1)
				err = f.errors()[0]
			}
			require.ErrorIs(t, err, engine.ErrTooLarge)
			assert.Contains(t, err.Error(), "limit 65536")
		})
	}
}

func TestUnencodableValue(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpsession.Put(r.Context(), "fn", func() {})
		httpsession.Put(r.Context(), "ok", 1)
	})
	f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
	resp, _ := f.do(t, f.client(t), "GET /")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Len(t, f.errors(), 1)
	assert.Contains(t, f.errors()[0].Error(), `"fn"`)
	assert.Equal(t, 0, f.store.Len(), "nothing of the request is saved")
}

// Changes made after the response began are saved if they need no new
// cookie, and reported if they do.
func TestChangesAfterResponseBegan(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "body first")
		httpsession.Put(r.Context(), "late", "yes")
		assert.ErrorIs(t, httpsession.Login(r.Context(), "alice"), httpsession.ErrHeadersWritten)
		if err := httpsession.RenewToken(r.Context()); r.URL.Query().Has("existing") {
			assert.ErrorIs(t, err, httpsession.ErrHeadersWritten)
		} else {
			assert.NoError(t, err, "no session: nothing to renew")
		}
	})
	f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
	resp, _ := f.do(t, f.client(t), "GET /")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, f.errors(), 1)
	assert.ErrorIs(t, f.errors()[0], httpsession.ErrHeadersWritten, "a new session could not reach the client")
	assert.Equal(t, 0, f.store.Len())

	s, err := f.store.Create(engine.CreateOptions{})
	require.NoError(t, err)
	resp, _ = f.do(t, f.client(t), "GET /?existing", &http.Cookie{Name: httpsession.DefaultCookieName, Value: s.ID()})
	assert.Nil(t, sessionCookie(t, resp))
	got, err := f.store.Get(s.ID())
	require.NoError(t, err)
	assert.Contains(t, string(got.Data()), "late", "an existing session takes late changes")
	assert.Len(t, f.errors(), 1, "no new error")
}

func TestDefaultErrorFunc(t *testing.T) {
	store := openStore(t, engine.Options{})
	var log bytes.Buffer
	m := httpsession.New(store, httpsession.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	s, err := store.Create(engine.CreateOptions{})
	require.NoError(t, err)
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpsession.Put(r.Context(), "big", strings.Repeat("x", 1<<17))
		_, err := fmt.Fprint(w, "handler body")
		assert.ErrorIs(t, err, engine.ErrTooLarge, "the handler's write reports why it was dropped")
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: httpsession.DefaultCookieName, Value: s.ID()})
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.NotContains(t, rec.Body.String(), "handler body")
	assert.Contains(t, log.String(), "value too large")
	assert.NotContains(t, log.String(), s.ID())
}
