package httpsession

import (
	"log/slog"
	"net/http"
)

// DefaultCookieName is the cookie's name unless Options.CookieName says
// otherwise. It is generic on purpose: a name like "sesscache" or
// "GOSESSID" tells an attacker which software, and so which weaknesses, to
// look for.
const DefaultCookieName = "id"

// Options configures a Manager. The zero value is secure: a persistent,
// host-only cookie named "id" with HttpOnly, Secure, SameSite=Lax and
// Path=/, no fingerprint binding, and errors logged and answered with 500.
//
// Idle and absolute timeouts, token signing, the rotation grace period and
// the per-user session cap are the engine's (engine.Options); the cookie
// follows whatever the engine decides.
type Options struct {
	// CookieName is the session cookie's name. Default "id". In production
	// over HTTPS, "__Host-id" is better still: browsers then refuse the
	// cookie unless it is Secure, host-only and Path=/, so a sibling
	// subdomain cannot plant one.
	CookieName string

	// NonPersistent sends the cookie without Max-Age or Expires, so the
	// browser forgets it when it closes. By default the cookie is
	// persistent and lives until the session's absolute expiry (the server
	// still ends an idle session earlier; see Manager).
	NonPersistent bool

	// FingerprintFunc, when set, binds each new session to what it returns
	// for the request that created it (for instance the User-Agent), and a
	// request whose fingerprint differs does not find the session: it is
	// treated like one with no cookie. Empty output means unbound. Default
	// nil: no binding. Only the engine's 64-bit hash of the fingerprint is
	// kept.
	FingerprintFunc func(r *http.Request) []byte

	// ErrorFunc handles a failure to commit the session: a value too large
	// or impossible to encode, a rotated or vanished session, an engine
	// error. It receives the request and the error, which never contains a
	// session ID.
	//
	// A commit runs when the handler first writes its response, so the
	// handler has no way to see the error (Commit lets it ask earlier). If
	// nothing has been written yet, ErrorFunc's w is the real response: what
	// it writes replaces the handler's, whose later writes are dropped and
	// return an error. If ErrorFunc writes nothing, the handler's response
	// goes out as written. If the response had already begun, w discards
	// everything, and ErrorFunc can only log.
	//
	// Default: log the error, the method and the path (never the cookie)
	// with Logger at error level, and respond 500 Internal Server Error.
	ErrorFunc func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives the default ErrorFunc's reports. Nil means
	// slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.CookieName == "" {
		o.CookieName = DefaultCookieName
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ErrorFunc == nil {
		logger := o.Logger
		o.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
			logger.ErrorContext(r.Context(), "httpsession: session commit failed",
				"method", r.Method, "path", r.URL.Path, "err", err)
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		}
	}
	return o
}
