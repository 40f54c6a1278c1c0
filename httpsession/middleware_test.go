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

func TestCookieKeepsHandlerHeaders(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, func(f *fixture) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Vary", "Accept-Encoding, Cookie")
			http.SetCookie(w, &http.Cookie{Name: "theme", Value: "dark"})
			f.m.Put(r.Context(), "a", 1)
			_, _, err := f.m.Commit(r.Context())
			require.NoError(t, err)
			f.m.Put(r.Context(), "b", 2) // a second commit replaces the cookie, not adds one
			fmt.Fprint(w, "ok")
		})
	})
	resp, _ := f.do(t, f.client(t), "POST /")
	assert.Len(t, resp.Header.Values("Set-Cookie"), 2, "theme and one session cookie")
	assert.NotNil(t, f.sessionCookie(t, resp))
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
			s, err := other.Create(t.Context(), engine.CreateOptions{})
			require.NoError(t, err)
			return s.ID()
		}},
		{"tampered", func(t *testing.T, f *fixture) string {
			s, err := f.store.Create(t.Context(), engine.CreateOptions{UserID: "victim"})
			require.NoError(t, err)
			id := []byte(s.ID())
			id[3] ^= 1 // still base64url, signature no longer matches
			if id[3] == '-' || id[3] == '_' {
				id[3] = 'A'
			}
			return string(id)
		}},
		{"expired", func(t *testing.T, f *fixture) string {
			s, err := f.store.Create(t.Context(), engine.CreateOptions{UserID: "victim"})
			require.NoError(t, err)
			f.clock.Advance(31 * time.Minute) // past the default idle timeout
			return s.ID()
		}},
		{"destroyed", func(t *testing.T, f *fixture) string {
			s, err := f.store.Create(t.Context(), engine.CreateOptions{UserID: "victim"})
			require.NoError(t, err)
			require.NoError(t, f.store.Delete(t.Context(), s.ID()))
			return s.ID()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, engine.Options{SigningKeys: [][]byte{key}}, httpsession.Options{}, nil)
			planted := f.cookie(tt.cookie(t, f))
			c := f.client(t)

			resp, body := f.do(t, c, "GET /whoami", planted)
			assert.Empty(t, body, "no user")
			assert.Nil(t, f.sessionCookie(t, resp), "a read sets no cookie")

			resp, _ = f.do(t, c, "POST /put?k=a&v=1", planted)
			ck := f.sessionCookie(t, resp)
			require.NotNil(t, ck, "a write gets a fresh session")
			assert.NotEqual(t, planted.Value, ck.Value)
			_, body = f.do(t, c, "GET /get?k=a")
			assert.Equal(t, "1", body, "the fresh session works")
		})
	}
}

// Lookups always go through Store.Find: with the request's fingerprint when
// binding is on, with none when it is off.
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
	assert.Nil(t, f.sessionCookie(t, resp))
	assert.Equal(t, uint64(1), f.store.Stats().BindingMismatches)

	_, err = f.store.Get(stolen.Value)
	assert.ErrorIs(t, err, engine.ErrNotFound, "a bound session is found only with its fingerprint")
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
			commitErr := make(chan error, 1)
			f := newFixture(t, engine.Options{}, httpsession.Options{}, func(f *fixture) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					f.m.Put(r.Context(), "big", big)
					if tt.commit {
						token, expiry, err := f.m.Commit(r.Context())
						assert.Empty(t, token)
						assert.True(t, expiry.IsZero())
						commitErr <- err
						if err != nil {
							http.Error(w, "too much", http.StatusRequestEntityTooLarge)
							return
						}
					}
					fmt.Fprint(w, "handler body")
				})
			})
			resp, body := f.do(t, f.client(t), "POST /")
			assert.Equal(t, tt.wantCode, resp.StatusCode)
			assert.NotContains(t, body, "handler body", "the failed commit's response replaced the handler's")
			assert.Nil(t, f.sessionCookie(t, resp))
			assert.Equal(t, 0, f.store.Len())
			var err error
			if tt.commit {
				err = <-commitErr
			} else {
				require.Len(t, f.errors(), 1)
				err = f.errors()[0]
			}
			require.ErrorIs(t, err, engine.ErrTooLarge)
			assert.Contains(t, err.Error(), "limit 65536")
			assert.True(t, strings.HasPrefix(err.Error(), "httpsession:"), err.Error())
		})
	}
}

func TestUnencodableValueAndReservedKey(t *testing.T) {
	tests := []struct{ name, key, inErr string }{
		{"func value", "fn", `"fn"`},
		{"reserved key", "\x00remember", "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, engine.Options{}, httpsession.Options{}, func(f *fixture) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					var v any = true
					if tt.key == "fn" {
						v = func() {}
					}
					f.m.Put(r.Context(), tt.key, v)
					f.m.Put(r.Context(), "ok", 1)
				})
			})
			resp, _ := f.do(t, f.client(t), "POST /")
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			require.Len(t, f.errors(), 1)
			assert.Contains(t, f.errors()[0].Error(), tt.inErr)
			assert.Equal(t, 0, f.store.Len(), "nothing of the request is saved")
		})
	}
}

// Changes made after the response began are saved if they need no new
// cookie, and reported if they do.
func TestChangesAfterResponseBegan(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, func(f *fixture) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "body first")
			f.m.Put(r.Context(), "late", "yes")
			assert.ErrorIs(t, f.m.Login(r.Context(), "alice"), httpsession.ErrHeadersWritten)
			if err := f.m.RenewToken(r.Context()); r.URL.Query().Has("existing") {
				assert.ErrorIs(t, err, httpsession.ErrHeadersWritten)
			} else {
				assert.NoError(t, err, "no session: nothing to renew")
			}
		})
	})
	resp, _ := f.do(t, f.client(t), "POST /")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, f.errors(), 1)
	assert.ErrorIs(t, f.errors()[0], httpsession.ErrHeadersWritten, "a new session could not reach the client")
	assert.Equal(t, 0, f.store.Len())

	s, err := f.store.Create(t.Context(), engine.CreateOptions{})
	require.NoError(t, err)
	resp, _ = f.do(t, f.client(t), "POST /?existing", f.cookie(s.ID()))
	assert.Nil(t, f.sessionCookie(t, resp))
	got, err := f.store.Get(s.ID())
	require.NoError(t, err)
	assert.Contains(t, string(got.Data()), "late", "an existing session takes late changes")
	assert.Len(t, f.errors(), 1, "no new error")
}

func TestDefaultErrorFunc(t *testing.T) {
	store := openStore(t, engine.Options{})
	var log bytes.Buffer
	m := httpsession.New(store, httpsession.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	s, err := store.Create(t.Context(), engine.CreateOptions{})
	require.NoError(t, err)
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Put(r.Context(), "big", strings.Repeat("x", 1<<17))
		_, err := fmt.Fprint(w, "handler body")
		assert.ErrorIs(t, err, engine.ErrTooLarge, "the handler's write reports why it was dropped")
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/", nil)
	req.AddCookie(&http.Cookie{Name: m.CookieName(), Value: s.ID()})
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.NotContains(t, rec.Body.String(), "handler body")
	assert.Contains(t, log.String(), "value too large")
	assert.Contains(t, log.String(), "level=ERROR")
	assert.NotContains(t, log.String(), s.ID())
}

// A Manager without its Handler or Load in the context is a programming
// mistake, reported at once.
func TestNoSessionInContextPanics(t *testing.T) {
	m := httpsession.New(openStore(t, engine.Options{}), httpsession.Options{})
	assert.PanicsWithValue(t,
		"httpsession: no session of this Manager in the context; wrap the handler with its Handler or use its Load",
		func() { m.UserID(t.Context()) })
}
