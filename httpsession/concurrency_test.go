package httpsession_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Requests that load the same version of a session and then commit at once
// must all keep their writes: each commit's merge is re-run on the data the
// others left.
func TestConcurrentWritesKeepEveryWrite(t *testing.T) {
	const n = 8
	var loaded sync.WaitGroup
	loaded.Add(n)
	f := newFixture(t, engine.Options{}, httpsession.Options{}, func(f *fixture) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if r.URL.Path == "/keys" {
				fmt.Fprint(w, strings.Join(f.m.Keys(r.Context()), ","))
				return
			}
			f.m.Put(r.Context(), q.Get("k"), q.Get("v"))
			if q.Has("together") {
				// Every request has loaded the session before any commits.
				loaded.Done()
				loaded.Wait()
			}
			fmt.Fprint(w, "ok")
		})
	})
	c := f.client(t)
	f.do(t, c, "POST /?k=seed&v=0")
	id := f.jarCookie(c).Value

	var wg sync.WaitGroup
	results := make([]error, 2*n)
	for i := range n {
		wg.Go(func() { results[i] = post(c, f.srv.URL+fmt.Sprintf("/?together&k=k%d&v=%d", i, i)) })
	}
	wg.Wait()
	for i := range n {
		wg.Go(func() { results[n+i] = post(c, f.srv.URL+fmt.Sprintf("/?k=same&v=%d", i)) })
	}
	wg.Wait()
	for _, err := range results {
		require.NoError(t, err)
	}

	_, body := f.do(t, c, "GET /keys")
	want := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "same", "seed"}
	assert.Equal(t, strings.Join(want, ","), body)
	s, err := f.store.Get(id)
	require.NoError(t, err)
	assert.Equal(t, uint64(1+2*n), s.Version(), "one write per request")
	assert.Empty(t, f.errors())
}

// post sends a POST with no body and fails unless it gets 200; safe to call
// from any goroutine.
func post(c *http.Client, url string) error {
	resp, err := c.Post(url, "", nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// A handler may use the session from goroutines of its own.
func TestSessionUsedFromGoroutines(t *testing.T) {
	f := newFixture(t, engine.Options{}, httpsession.Options{}, func(f *fixture) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Go(func() {
					f.m.Put(r.Context(), fmt.Sprint(i), i)
					_ = f.m.Keys(r.Context())
				})
			}
			wg.Wait()
			fmt.Fprint(w, len(f.m.Keys(r.Context())))
		})
	})
	_, body := f.do(t, f.client(t), "GET /")
	assert.Equal(t, "10", body)
}

// A request that loaded the session before another request changed its ID
// must neither write through the old ID nor clear the client's cookie,
// which by then may be the new one, nor learn the new ID.
func TestWriteRacingRenewal(t *testing.T) {
	tests := []struct {
		name    string
		grace   time.Duration
		renew   string // a request of testMux, or "rotate": the engine's plain Rotate
		wantErr error
	}{
		{"plain rotation with grace", time.Minute, "rotate", httpsession.ErrStaleCookie},
		{"renewal with grace", time.Minute, "POST /renew", engine.ErrNotFound},
		{"renewal without grace", 0, "POST /renew", engine.ErrNotFound},
		{"login as another user", time.Minute, "POST /login?user=bob", engine.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loaded, proceed := make(chan struct{}), make(chan struct{})
			f := newFixture(t, engine.Options{RotateGrace: tt.grace}, httpsession.Options{}, func(f *fixture) http.Handler {
				mux := http.NewServeMux()
				mux.Handle("/", testMux(f))
				mux.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
					close(loaded)
					<-proceed
					f.m.Put(r.Context(), "slow", "write")
					fmt.Fprint(w, "ok")
				})
				return mux
			})
			c := f.client(t)
			f.do(t, c, "POST /login?user=alice")
			old := f.jarCookie(c)

			slow := make(chan *http.Response, 1)
			go func() {
				resp, err := c.Post(f.srv.URL+"/slow", "", nil)
				if assert.NoError(t, err) {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				slow <- resp
			}()
			<-loaded
			var renewed string
			if tt.renew == "rotate" {
				s, err := f.store.Rotate(t.Context(), old.Value)
				require.NoError(t, err)
				renewed = s.ID()
			} else {
				resp, body := f.do(t, c, tt.renew)
				require.Equal(t, "ok", body)
				ck := f.sessionCookie(t, resp)
				require.NotNil(t, ck)
				renewed = ck.Value
			}
			close(proceed)
			resp := <-slow
			require.NotNil(t, resp)

			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			require.Len(t, f.errors(), 1)
			assert.ErrorIs(t, f.errors()[0], tt.wantErr)
			assert.NotContains(t, f.errors()[0].Error(), old.Value)
			assert.NotContains(t, f.errors()[0].Error(), renewed)
			assert.Nil(t, f.sessionCookie(t, resp), "the cookie is neither cleared nor replaced")
			_, body := f.do(t, f.client(t), "GET /get?k=slow", f.cookie(renewed))
			assert.Empty(t, body, "the write did not reach the new session")
		})
	}
}
