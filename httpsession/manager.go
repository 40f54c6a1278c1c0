package httpsession

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/sesscache/sesscache/engine"
)

// Manager connects HTTP requests to sessions in an engine. Make one with
// New and wrap handlers with its Handler. It is safe for concurrent use.
type Manager struct {
	store *engine.Engine
	opts  Options
}

// New returns a Manager storing sessions in store, configured by opts (see
// Options for the defaults). The Manager does not own the store: close it
// yourself after the server has stopped. New panics if store is nil or
// opts.CookieName is not a valid cookie name, both programming errors.
func New(store *engine.Engine, opts Options) *Manager {
	if store == nil {
		panic("httpsession: New with a nil engine")
	}
	opts = opts.withDefaults()
	if err := (&http.Cookie{Name: opts.CookieName, Value: "x"}).Valid(); err != nil {
		panic("httpsession: invalid cookie name: " + err.Error())
	}
	return &Manager{store: store, opts: opts}
}

// ctxKey finds a request's session state in its context.
type ctxKey struct{}

// state is one request's view of its session and what the request has
// changed. Handlers may use the session from several goroutines, so every
// field after mu is guarded by it.
type state struct {
	m  *Manager
	fp []byte // this request's fingerprint; nil when binding is off
	w  responseWriter

	mu sync.Mutex
	// sess is the session this request uses: the one its cookie named, or
	// the one it created, renewed or logged into, as of its last write.
	// Zero when there is none (no valid cookie, or destroyed). Reads look
	// values up in its data, with delta laid over it.
	sess engine.Session
	// delta holds this request's edits, per key, not yet committed.
	delta map[string]change
	// putErr is the first value Put could not encode; the next commit
	// reports it.
	putErr error
	// presented: the client sent a cookie of our name, valid or not.
	presented bool
	cookie    cookieAction
	// started: the response's headers are out; the cookie can no longer
	// change.
	started bool
}

// cookieAction is what the response must do with the client's cookie.
type cookieAction uint8

const (
	cookieKeep   cookieAction = iota // leave it as it is
	cookieSet                        // send sess's ID
	cookieExpire                     // tell the client to drop it
)

// Handler returns middleware that loads the session named by the request's
// cookie into the request's context and commits changes when the response
// is first written (WriteHeader, Write, Flush, ReadFrom or Hijack, whichever
// comes first), or when next returns if it wrote nothing.
//
// A cookie naming no live session this store issued (unknown, expired,
// malformed, forged, bound to another fingerprint) is never adopted: the
// request runs with no session, and the first value it writes creates a
// fresh one under a new ID. A request that writes nothing creates nothing
// and gets no Set-Cookie, Vary or Cache-Control header. A response that
// sets the cookie also gets "Vary: Cookie" and
// `Cache-Control: no-cache="Set-Cookie"`, so shared caches neither store
// nor replay it.
//
// The ResponseWriter next sees implements http.Flusher, http.Hijacker and
// io.ReaderFrom, each committing first, and Unwrap, so an
// http.ResponseController reaches the server's writer for deadlines and
// full duplex. Flush and Hijack report http.ErrNotSupported (through
// ResponseController) when the underlying writer cannot do them. A
// handler that hijacks must write the cookie itself: it is in w.Header()
// once Hijack returns.
//
// If next panics, nothing more is committed.
func (m *Manager) Handler(next http.Handler) http.Handler {
	if next == nil {
		panic("httpsession: Handler with a nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := m.load(r)
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, st))
		st.w = responseWriter{rw: w, st: st, r: r}
		next.ServeHTTP(&st.w, r)
		st.w.finish()
	})
}

// load finds the session the request's cookie names. Every cookie of our
// name is tried, first valid one wins, so a stray duplicate (an old path,
// or one planted for a parent domain) cannot mask the real one.
func (m *Manager) load(r *http.Request) *state {
	st := &state{m: m}
	if m.opts.FingerprintFunc != nil {
		st.fp = m.opts.FingerprintFunc(r)
	}
	for _, c := range r.CookiesNamed(m.opts.CookieName) {
		st.presented = true
		s, err := m.lookup(c.Value, st.fp)
		if err != nil {
			continue
		}
		st.sess = s
		if s.Rotated() {
			// The ID was rotated by another request; send the new one
			// even if this request changes nothing.
			st.cookie = cookieSet
		}
		break
	}
	return st
}

// lookup is Get, or GetBound when binding is on.
func (m *Manager) lookup(id string, fp []byte) (engine.Session, error) {
	if m.opts.FingerprintFunc != nil {
		return m.store.GetBound(id, fp)
	}
	return m.store.Get(id)
}

// from returns the request's session state, panicking if the context did
// not come through Handler: every function of this package needs it, and
// quietly acting as if there were no session would hide the mistake.
func from(ctx context.Context) *state {
	st, ok := ctx.Value(ctxKey{}).(*state)
	if !ok {
		panic("httpsession: no session in context; wrap the handler with Manager.Handler")
	}
	return st
}

// resetLocked forgets the session: the request goes on with none.
func (st *state) resetLocked() {
	st.sess = engine.Session{}
	st.delta, st.putErr = nil, nil
}

// isNotFound reports an engine error meaning the session is gone.
func isNotFound(err error) bool { return errors.Is(err, engine.ErrNotFound) }
