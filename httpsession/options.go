package httpsession

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Options configures a Manager. The zero value is the secure default (ASVS
// level 2): a session cookie (no Max-Age or Expires) named "__Host-id",
// HttpOnly, Secure, SameSite=Lax, host-only and Path=/; no fingerprint
// binding; no limit on new sessions; anonymous values kept at login; errors
// logged and answered with 500 (429 for ErrRateLimited).
//
// Idle and absolute timeouts, token signing, the rotation grace period and
// the session caps are the store's (engine.Options); the cookie follows
// whatever the store decides.
type Options struct {
	// CookieName is the session cookie's name. The default depends on the
	// cookie's scope, so that browsers enforce it: "__Host-id" for the
	// default host-only, Path=/ cookie (no sibling or parent domain can
	// set or overwrite it), "__Secure-id" when Domain or a Path other
	// than "/" is set, and plain "id" with InsecureCookie. A name given
	// here that starts with "__Host-" or "__Secure-" must meet that
	// prefix's rules, or New panics.
	CookieName string

	// Domain, when set, sends the cookie to that domain and all its
	// subdomains. Default: host-only, which is safer: set it only if
	// sibling hosts must share sessions, since any of them can then read
	// and plant the cookie.
	Domain string

	// Path is the cookie's Path. Default "/".
	Path string

	// SameSite is the cookie's SameSite attribute: http.SameSiteLaxMode
	// (the default, for zero), http.SameSiteStrictMode, or
	// http.SameSiteNoneMode, which New refuses together with
	// InsecureCookie because browsers drop such cookies.
	SameSite http.SameSite

	// Partitioned adds the Partitioned attribute (CHIPS), for a site that
	// runs embedded in other sites' pages: the browser then keeps a
	// separate cookie per top-level site. Requires a Secure cookie.
	Partitioned bool

	// InsecureCookie drops the Secure attribute, so that the cookie also
	// travels over plain HTTP, where anyone on the path can read it. It
	// exists for plain-http hosts other than localhost (browsers already
	// accept Secure cookies from http://localhost); New logs a warning
	// when it is set. The cookie is then named "id" by default.
	InsecureCookie bool

	// Persistent makes the cookie outlive the browser: it gets Max-Age and
	// Expires set to the session's absolute expiry. By default the cookie
	// is a session cookie, forgotten when the browser closes, so that a
	// shared computer does not keep the next person logged in. Either way
	// the server ends the session on its own idle and absolute timeouts.
	// Manager.RememberMe overrides this per session.
	Persistent bool

	// FingerprintFunc, when set, binds each new session to what it returns
	// for the request that created it (for instance the User-Agent), and a
	// request whose fingerprint differs does not find the session: it is
	// treated like one with no cookie. Empty output means unbound. Default
	// nil: no binding. Only the store's hash of the fingerprint is kept.
	FingerprintFunc func(r *http.Request) []byte

	// LabelFunc names the device of a session at login, for the user's
	// list of sessions (Manager.Sessions). Its result is cut to 256 bytes.
	// Default DeviceLabel, a short description such as "Firefox on Linux"
	// taken from the User-Agent.
	LabelFunc func(r *http.Request) string

	// CreateLimit, when set, is asked before a request creates an
	// anonymous session; a non-nil error refuses the creation, and the
	// commit fails with an error matching ErrRateLimited (and the error
	// returned), which ErrorFunc answers (the default: 429 Too Many
	// Requests, replacing the handler's response). Logins and requests
	// that already have a session are not limited. PerClientLimit makes
	// one that limits each client address. Default nil: no limit beyond
	// the store's caps (engine.Options.MaxSessions evicts anonymous
	// sessions first, so a flood of them cannot keep users from logging
	// in).
	CreateLimit func(r *http.Request) error

	// ClearValuesAtLogin drops every value of the session at Login, so
	// that the logged-in session starts empty. By default the values of an
	// anonymous session (a shopping cart, say) are kept, as scs does; the
	// application must then treat them as chosen by whoever held the
	// anonymous session, which may have been an attacker who planted it:
	// never trust a pre-login value as a role, a redirect target or a
	// confirmed choice. RolesKey is dropped at login either way.
	ClearValuesAtLogin bool

	// ErrorFunc handles a failure to commit the session: a value too large
	// or impossible to encode, a stale or vanished session, a refused
	// creation (ErrRateLimited), a store error. It receives the request
	// and the error, which never contains a session ID.
	//
	// A commit runs when the handler first writes its response, so the
	// handler has no way to see the error (Manager.Commit lets it ask
	// earlier). If nothing has been written yet, ErrorFunc's w is the real
	// response: what it writes replaces the handler's, whose later writes
	// are dropped and return an error. If ErrorFunc writes nothing, the
	// handler's response goes out as written. If the response had already
	// begun, w discards everything, and ErrorFunc can only log.
	//
	// Default: log the error, the method and the path (never the cookie)
	// with Logger, and respond 429 Too Many Requests for ErrRateLimited,
	// 500 Internal Server Error for anything else.
	ErrorFunc func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives the default ErrorFunc's reports and New's warnings.
	// Nil means slog.Default().
	Logger *slog.Logger

	// Now is the clock RequireRecentAuth measures the age of a login
	// with. It must agree with the store's clock. Default time.Now.
	Now func() time.Time
}

// Cookie names chosen by default; see Options.CookieName.
const (
	hostCookieName     = "__Host-id"
	secureCookieName   = "__Secure-id"
	insecureCookieName = "id"
)

// maxLabel is the engine's default cap on a session's label, in bytes.
const maxLabel = 256

// withDefaults fills in the defaults and checks the cookie settings; an
// error is a programming mistake, which New turns into a panic.
func (o Options) withDefaults() (Options, error) {
	if o.Path == "" {
		o.Path = "/"
	}
	if !strings.HasPrefix(o.Path, "/") {
		return o, errors.New("the cookie Path must start with /")
	}
	if o.CookieName == "" {
		switch {
		case o.InsecureCookie:
			o.CookieName = insecureCookieName
		case o.Domain != "" || o.Path != "/":
			o.CookieName = secureCookieName
		default:
			o.CookieName = hostCookieName
		}
	}
	// Browsers compare the prefixes without regard to case.
	lower := strings.ToLower(o.CookieName)
	switch {
	case strings.HasPrefix(lower, "__host-") && (o.InsecureCookie || o.Domain != "" || o.Path != "/"):
		return o, errors.New("a __Host- cookie must be Secure, host-only (no Domain) and Path=/")
	case strings.HasPrefix(lower, "__secure-") && o.InsecureCookie:
		return o, errors.New("a __Secure- cookie must be Secure")
	}
	switch o.SameSite {
	case 0:
		o.SameSite = http.SameSiteLaxMode
	case http.SameSiteLaxMode, http.SameSiteStrictMode:
	case http.SameSiteNoneMode:
		if o.InsecureCookie {
			return o, errors.New("SameSite=None needs a Secure cookie; browsers drop it with InsecureCookie")
		}
	default:
		return o, fmt.Errorf("SameSite must be Lax, Strict or None, not %d", o.SameSite)
	}
	if o.Partitioned && o.InsecureCookie {
		return o, errors.New("a Partitioned cookie must be Secure")
	}
	probe := http.Cookie{Name: o.CookieName, Value: "x", Domain: o.Domain, Path: o.Path,
		Secure: !o.InsecureCookie, Partitioned: o.Partitioned}
	if err := probe.Valid(); err != nil {
		return o, err
	}
	if o.LabelFunc == nil {
		o.LabelFunc = DeviceLabel
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ErrorFunc == nil {
		logger := o.Logger
		o.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
			status, level := http.StatusInternalServerError, slog.LevelError
			if errors.Is(err, ErrRateLimited) {
				status, level = http.StatusTooManyRequests, slog.LevelWarn
			}
			logger.Log(r.Context(), level, "httpsession: session commit failed",
				"method", r.Method, "path", r.URL.Path, "err", err)
			http.Error(w, http.StatusText(status), status)
		}
	}
	return o, nil
}
