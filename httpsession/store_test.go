package httpsession_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The engine is a Store.
var _ httpsession.Store = (*engine.Engine)(nil)

func TestIterate(t *testing.T) {
	store := openStore(t, engine.Options{})
	m := httpsession.New(store, httpsession.Options{})
	for _, user := range []string{"alice", "bob", ""} {
		_, err := store.Create(t.Context(), engine.CreateOptions{UserID: user})
		require.NoError(t, err)
	}
	var users []string
	require.NoError(t, m.Iterate(t.Context(), func(s engine.Session) error {
		assert.Empty(t, s.ID(), "no token is handed out")
		assert.False(t, s.Handle().IsZero())
		users = append(users, s.UserID())
		return nil
	}))
	assert.ElementsMatch(t, []string{"alice", "bob", ""}, users)

	stop := errors.New("enough")
	calls := 0
	err := m.Iterate(t.Context(), func(engine.Session) error { calls++; return stop })
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 1, calls)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = m.Iterate(ctx, func(engine.Session) error { calls++; return nil })
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, calls, "a done context stops the iteration")

	// A store without All cannot iterate.
	wrapped := httpsession.New(&countingStore{Store: store}, httpsession.Options{})
	err = wrapped.Iterate(t.Context(), func(engine.Session) error { return nil })
	assert.ErrorIs(t, err, httpsession.ErrCannotIterate)
}

// Cookie tossing: however many cookies of the session's name a request
// carries, only the first three are looked up.
func TestCookieTriesBounded(t *testing.T) {
	store := openStore(t, engine.Options{SigningKeys: [][]byte{[]byte(strings.Repeat("k", 32))}})
	counting := &countingStore{Store: store}
	m := httpsession.New(counting, httpsession.Options{})
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(m.UserID(r.Context())))
	}))
	s, err := store.Create(t.Context(), engine.CreateOptions{UserID: "alice"})
	require.NoError(t, err)
	forged := s.ID()[:len(s.ID())-4] + "AAAA" // well-formed, bad signature: costs an HMAC

	serve := func(valueAt int, n int) (string, int64) {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteString("; ")
			}
			v := forged
			if i == valueAt {
				v = s.ID()
			}
			b.WriteString(m.CookieName() + "=" + v)
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Cookie", b.String())
		before := counting.finds.Load()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Body.String(), counting.finds.Load() - before
	}

	body, finds := serve(-1, 3000)
	assert.Empty(t, body)
	assert.Equal(t, int64(3), finds, "3,000 cookies, three lookups")
	body, finds = serve(2, 3000)
	assert.Equal(t, "alice", body, "the third cookie is tried")
	assert.Equal(t, int64(3), finds)
	body, finds = serve(3, 3000)
	assert.Empty(t, body, "the fourth is not")
	assert.Equal(t, int64(3), finds)
	body, finds = serve(0, 3000)
	assert.Equal(t, "alice", body)
	assert.Equal(t, int64(1), finds, "the first live one wins")

	// Other cookies do not count, and quoted values are read.
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Add("Cookie", "a=1; b=2; c=3; d=4")
	req.Header.Add("Cookie", m.CookieName()+`="`+s.ID()+`"; theme=dark`)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, "alice", rec.Body.String())
}
