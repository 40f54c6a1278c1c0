package httpsession_test

import (
	"context"
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

// Two Managers wrapping the same handler, each with its own cookie and
// store, see only their own sessions.
func TestNestedManagers(t *testing.T) {
	inner := httpsession.New(openStore(t, engine.Options{}), httpsession.Options{CookieName: "__Host-cart"})
	var outer *httpsession.Manager
	f := newFixture(t, engine.Options{}, httpsession.Options{CookieName: "__Host-auth"}, func(f *fixture) http.Handler {
		outer = f.m
		mux := http.NewServeMux()
		mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
			assert.NoError(t, outer.Login(r.Context(), "alice"))
		})
		mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
			inner.Put(r.Context(), "item", "tea")
		})
		mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			fmt.Fprintf(w, "outer user=%q item=%q; inner user=%q item=%q",
				outer.UserID(ctx), outer.GetString(ctx, "item"), inner.UserID(ctx), inner.GetString(ctx, "item"))
		})
		return inner.Handler(mux)
	})
	c := f.client(t)
	resp, _ := f.do(t, c, "POST /login")
	assert.NotNil(t, namedCookie(t, resp, "__Host-auth"))
	assert.Nil(t, namedCookie(t, resp, "__Host-cart"))
	resp, _ = f.do(t, c, "POST /cart")
	assert.Nil(t, namedCookie(t, resp, "__Host-auth"))
	assert.NotNil(t, namedCookie(t, resp, "__Host-cart"))
	_, body := f.do(t, c, "GET /")
	assert.Equal(t, `outer user="alice" item=""; inner user="" item="tea"`, body)
}

func TestLoadAndCommit(t *testing.T) {
	store := openStore(t, engine.Options{RotateGrace: time.Minute})
	m := httpsession.New(store, httpsession.Options{})
	bg := context.Background()

	for _, token := range []string{"", "not-a-token"} {
		ctx, err := m.Load(bg, token)
		require.NoError(t, err, "an unknown token is no session, not an error")
		assert.Empty(t, m.UserID(ctx))
		token, expiry, err := m.Commit(ctx)
		assert.NoError(t, err)
		assert.Empty(t, token, "nothing put, nothing created")
		assert.True(t, expiry.IsZero())
	}

	ctx, err := m.Load(bg, "")
	require.NoError(t, err)
	m.Put(ctx, "n", 1)
	token, expiry, err := m.Commit(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, token)
	s, err := store.Get(token)
	require.NoError(t, err)
	assert.Equal(t, s.AbsoluteExpiry(), expiry)

	ctx, err = m.Load(bg, token)
	require.NoError(t, err)
	assert.Equal(t, 1, m.GetInt(ctx, "n"))
	again, _, err := m.Commit(ctx)
	require.NoError(t, err)
	assert.Equal(t, token, again, "unchanged: the same token")

	// A plain rotation elsewhere leaves the old token read-only.
	rotated, err := store.Rotate(bg, token)
	require.NoError(t, err)
	ctx, err = m.Load(bg, token)
	require.NoError(t, err)
	assert.Equal(t, 1, m.GetInt(ctx, "n"), "the old token still reads")
	m.Put(ctx, "n", 2)
	stale, _, err := m.Commit(ctx)
	assert.ErrorIs(t, err, httpsession.ErrStaleCookie)
	assert.Equal(t, token, stale, "the old token, never the new one")
	assert.NotEqual(t, rotated.ID(), stale)

	ctx, err = m.Load(bg, rotated.ID())
	require.NoError(t, err)
	require.NoError(t, m.Destroy(ctx))
	gone, _, err := m.Commit(ctx)
	assert.NoError(t, err)
	assert.Empty(t, gone)

	require.NoError(t, store.Close())
	_, err = m.Load(bg, token)
	assert.ErrorIs(t, err, engine.ErrClosed, "a store failure is an error")
}

// Load has no request: CreateLimit does not apply, and sessions are
// created and logged in all the same.
func TestLoadIgnoresRequestOptions(t *testing.T) {
	store := openStore(t, engine.Options{})
	m := httpsession.New(store, httpsession.Options{
		CreateLimit: func(*http.Request) error { return httpsession.ErrRateLimited },
		LabelFunc:   func(*http.Request) string { panic("no request to label") },
	})
	ctx, err := m.Load(context.Background(), "")
	require.NoError(t, err)
	m.Put(ctx, "a", 1)
	require.NoError(t, m.Login(ctx, "alice"))
	token, _, err := m.Commit(ctx)
	require.NoError(t, err)
	s, err := store.Get(token)
	require.NoError(t, err)
	assert.Equal(t, "alice", s.UserID())
	assert.Empty(t, s.Label())
}

type parentKey struct{}

// The context a Manager hands the handler (and Load returns) is the
// parent's, plus the session: the parent's values, deadline and
// cancellation all come through, contexts derived from it are cancelled
// with the parent, and two Managers' sessions stay apart.
func TestSessionContextKeepsParent(t *testing.T) {
	m := httpsession.New(openStore(t, engine.Options{}), httpsession.Options{CookieName: "__Host-a"})
	other := httpsession.New(openStore(t, engine.Options{}), httpsession.Options{CookieName: "__Host-b"})
	check := func(t *testing.T, ctx context.Context, parent context.Context, cancel context.CancelFunc) {
		t.Helper()
		assert.Equal(t, "v", ctx.Value(parentKey{}), "the parent's values")
		pd, _ := parent.Deadline()
		d, ok := ctx.Deadline()
		assert.True(t, ok)
		assert.Equal(t, pd, d, "the parent's deadline")
		m.Put(ctx, "k", "x")
		assert.Equal(t, "x", m.GetString(ctx, "k"))
		child, stop := context.WithCancel(ctx)
		defer stop()
		assert.NoError(t, ctx.Err())
		cancel()
		<-ctx.Done()
		<-child.Done()
		assert.ErrorIs(t, ctx.Err(), context.Canceled)
		assert.ErrorIs(t, child.Err(), context.Canceled)
	}
	newParent := func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), parentKey{}, "v"), time.Hour)
		return ctx, cancel
	}

	t.Run("Load", func(t *testing.T) {
		parent, cancel := newParent()
		defer cancel()
		ctx, err := m.Load(parent, "")
		require.NoError(t, err)
		check(t, ctx, parent, cancel)
	})
	t.Run("Handler", func(t *testing.T) {
		parent, cancel := newParent()
		defer cancel()
		ran := false
		h := m.Handler(other.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ran = true
			other.Put(r.Context(), "k", "inner")
			check(t, r.Context(), parent, cancel)
			assert.Equal(t, "inner", other.GetString(r.Context(), "k"), "each Manager its own session")
		})))
		req := httptest.NewRequest("GET", "/", nil).WithContext(parent)
		h.ServeHTTP(httptest.NewRecorder(), req)
		assert.True(t, ran)
	})
}

// Printing or logging the context that holds a session, in any form,
// never prints the session's token.
func TestSessionContextPrintsNoToken(t *testing.T) {
	store := openStore(t, engine.Options{})
	m := httpsession.New(store, httpsession.Options{})
	s, err := store.Create(context.Background(), engine.CreateOptions{Data: nil})
	require.NoError(t, err)
	ctx, err := m.Load(context.WithValue(context.Background(), parentKey{}, "v"), s.ID())
	require.NoError(t, err)
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("request", "ctx", ctx)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("request", "ctx", ctx)
	for _, out := range []string{
		fmt.Sprint(ctx), fmt.Sprintf("%v %+v %#v %s %q %x", ctx, ctx, ctx, ctx, ctx, ctx), logged.String(),
	} {
		assert.NotContains(t, out, s.ID())
		assert.NotContains(t, out, fmt.Sprintf("%x", s.ID()))
	}
	assert.Contains(t, fmt.Sprint(ctx), "WithValue(httpsession session)")
}
