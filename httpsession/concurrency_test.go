package httpsession_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

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
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path == "/keys" {
			fmt.Fprint(w, strings.Join(httpsession.Keys(r.Context()), ","))
			return
		}
		httpsession.Put(r.Context(), q.Get("k"), q.Get("v"))
		if q.Has("together") {
			// Every request has loaded the session before any commits.
			loaded.Done()
			loaded.Wait()
		}
		fmt.Fprint(w, "ok")
	})
	f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
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
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				httpsession.Put(r.Context(), fmt.Sprint(i), i)
				_ = httpsession.Keys(r.Context())
			})
		}
		wg.Wait()
		fmt.Fprint(w, len(httpsession.Keys(r.Context())))
	})
	f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
	_, body := f.do(t, f.client(t), "GET /")
	assert.Equal(t, "10", body)
}
