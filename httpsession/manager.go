package httpsession

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// Manager connects HTTP requests to sessions in a Store. Make one with New
// and wrap handlers with its Handler; its methods then read and change the
// session of a request through the request's context. Each Manager has its
// own context key, as scs's SessionManager does, so two Managers (two
// cookies, two stores) can wrap the same handler without hiding each other.
// It is safe for concurrent use.
type Manager struct {
	store Store
	opts  Options
}

// maxCookieTries bounds how many cookies of the session's name one request
// may have looked up: each costs a lookup and, with signed tokens, an HMAC
// per signing key. Browsers send at most a few legitimate ones (an old
// path's, a parent domain's); more are a cookie-tossing attempt.
const maxCookieTries = 3

// New returns a Manager storing sessions in store, configured by opts (see
// Options for the defaults). The Manager does not own the store: close it
// yourself after the server has stopped. New panics if store is nil or the
// cookie settings contradict each other (see Options), both programming
// errors, and logs a warning with Options.Logger if InsecureCookie is set.
func New(store Store, opts Options) *Manager {
	if store == nil {
		panic("httpsession: New with a nil store")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		panic("httpsession: invalid Options: " + err.Error())
	}
	if opts.InsecureCookie {
		opts.Logger.Warn("httpsession: InsecureCookie is set: the session cookie also travels over plain HTTP, readable on the network; use it only for plain-http hosts other than localhost",
			"cookie", opts.CookieName)
	}
	return &Manager{store: store, opts: opts}
}

// CookieName returns the name of the session cookie, the default chosen
// from the options (see Options.CookieName) or the one given.
func (m *Manager) CookieName() string { return m.opts.CookieName }

// ctxKey finds a request's session state in its context. It holds the
// Manager, so each Manager's key differs; a struct of one pointer goes into
// an interface without allocating.
type ctxKey struct{ m *Manager }

// state is one request's view of its session and what the request has
// changed. Handlers may use the session from several goroutines, so every
// field after mu is guarded by it.
//
// A state is also the context it is found through: it carries the
// parent's deadline, cancellation and values, and answers ctxKey{m} with
// itself. One allocation does the work of a state and a context.WithValue.
type state struct {
	m      *Manager
	parent context.Context
	fp     []byte        // this request's fingerprint; nil when binding is off
	r      *http.Request // nil outside HTTP (Manager.Load)
	w      responseWriter

	mu sync.Mutex
	// sess is the session this request uses: the one its cookie named, or
	// the one it created, renewed or logged into, as of its last write.
	// Zero when there is none (no valid cookie, or destroyed). Reads look
	// values up in its data, with delta laid over it. A Rotated view is
	// read-only: see ErrStaleCookie.
	sess engine.Session
	// delta holds this request's edits, per key, not yet committed.
	delta map[string]change
	// putErr is the first value Put could not encode; the next commit
	// reports it.
	putErr error
	// deadline is an absolute expiry set before the session existed, for
	// the commit that creates it; zero if none.
	deadline time.Time
	// presented: the client sent a cookie of our name, valid or not.
	presented bool
	cookie    cookieAction
	status    Status
	// started: the response's headers are out; the cookie can no longer
	// change.
	started bool
}

// Deadline, Done, Err and Value make a state the context.Context that
// holds it (see state).
func (st *state) Deadline() (time.Time, bool) { return st.parent.Deadline() }

// Done is the parent's.
func (st *state) Done() <-chan struct{} { return st.parent.Done() }

// Err is the parent's.
func (st *state) Err() error { return st.parent.Err() }

// Value answers st's Manager's key with st, and any other from the parent.
func (st *state) Value(key any) any {
	if key == (ctxKey{st.m}) {
		return st
	}
	return st.parent.Value(key)
}

// String names the context the way the context package names its own, and
// leaves the session out: printing or logging a request's context must
// never print its session's token.
func (st *state) String() string {
	parent := ""
	if s, ok := st.parent.(fmt.Stringer); ok {
		parent = s.String()
	} else {
		parent = reflect.TypeOf(st.parent).String()
	}
	return parent + ".WithValue(httpsession session)"
}

// Format prints String for every verb, %#v and %+v included, which would
// otherwise print the state's fields.
func (st *state) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, st.String()) }

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
// A cookie naming no live session the store issued (unknown, expired,
// malformed, forged, bound to another fingerprint) is never adopted: the
// request runs with no session, and the first value it writes creates a
// fresh one under a new ID. Of several cookies of the session's name, the
// first three are tried, in the order the client sent them, and the first
// live one wins. A request that writes nothing creates nothing and gets
// no Set-Cookie, Vary or Cache-Control header. A response that sets the
// cookie also gets "Vary: Cookie" and `Cache-Control: no-cache="Set-Cookie"`,
// so shared caches neither store nor replay it.
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
		st.parent = r.Context()
		r = r.WithContext(st)
		st.r = r
		st.w = responseWriter{rw: w, st: st}
		next.ServeHTTP(&st.w, r)
		st.w.finish()
	})
}

// load finds the session the request's cookie names.
func (m *Manager) load(r *http.Request) *state {
	st := &state{m: m}
	if m.opts.FingerprintFunc != nil {
		st.fp = m.opts.FingerprintFunc(r)
	}
	tries := 0
	for _, line := range r.Header["Cookie"] {
		for tries < maxCookieTries && line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			value, ok := cookieValue(part, m.opts.CookieName)
			if !ok {
				continue
			}
			st.presented = true
			tries++
			if s, err := m.store.Find(r.Context(), value, st.fp); err == nil {
				st.sess = s
				return st
			}
		}
	}
	return st
}

// cookieValue returns the value of part, one "name=value" pair of a Cookie
// header, if its name is name. Parsing by hand, instead of with
// Request.CookiesNamed, allocates nothing; a value the store did not issue
// fails its lookup whatever it holds, so it need not be validated here.
func cookieValue(part, name string) (string, bool) {
	part = strings.TrimSpace(part)
	if len(part) <= len(name) || part[len(name)] != '=' || part[:len(name)] != name {
		return "", false
	}
	v := part[len(name)+1:]
	if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v, true
}

// from returns the request's session state for m, panicking if the context
// did not come through m.Handler or m.Load: every method needs it, and
// quietly acting as if there were no session would hide the mistake.
func (m *Manager) from(ctx context.Context) *state {
	st, ok := ctx.Value(ctxKey{m}).(*state)
	if !ok {
		panic("httpsession: no session of this Manager in the context; wrap the handler with its Handler or use its Load")
	}
	return st
}

// resetLocked forgets the session: the request goes on with none.
func (st *state) resetLocked() {
	st.sess = engine.Session{}
	st.delta, st.putErr = nil, nil
	st.deadline = time.Time{}
}

// isNotFound reports a store error meaning the session is gone, or that the
// token names nothing this store could have issued.
func isNotFound(err error) bool {
	return errors.Is(err, engine.ErrNotFound) || errors.Is(err, engine.ErrMalformedToken)
}
