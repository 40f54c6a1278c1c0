package httpsession

import "errors"

// Errors reported by this package, compared with errors.Is. Errors from the
// store (engine.ErrTooLarge, engine.ErrNotFound, engine.ErrClosed, ...)
// come wrapped, so errors.Is finds them too. Every error this package
// makes starts with "httpsession:", and none carries a session ID.
var (
	// ErrStaleCookie: the request presented an ID that a rotation replaced
	// and that the store still honours read-only for its grace period
	// (engine.Options.RotateGrace). Such a request reads the session as an
	// anonymous one; its writes, logins and renewals are refused with this
	// error, and it is never told the new ID.
	ErrStaleCookie = errors.New("httpsession: the request's session ID was rotated away; it is read-only")

	// ErrHeadersWritten: the change needs a new cookie, but the response's
	// headers have already gone out, so the client could never learn it.
	// Login and RenewToken return it without changing anything; a value
	// written after the response began into a request that had no session
	// yet is reported with it.
	ErrHeadersWritten = errors.New("httpsession: response headers already written; cannot set the session cookie")

	// ErrUnauthenticated: the operation needs a logged-in session (see
	// Manager.Login) and the request's is anonymous, or it has none.
	ErrUnauthenticated = errors.New("httpsession: the session is not authenticated")

	// ErrRateLimited: Options.CreateLimit refused to create a session for
	// this client. The default ErrorFunc answers it with 429 Too Many
	// Requests.
	ErrRateLimited = errors.New("httpsession: too many new sessions from this client")

	// ErrNoValue: GetAs found no value under the key.
	ErrNoValue = errors.New("httpsession: no value under that key")

	// ErrValueType: GetAs found a value that does not fit the type asked
	// for without loss (300 into an int8, a string into a []byte, 1.5 into
	// an int).
	ErrValueType = errors.New("httpsession: the value does not fit the type asked for")

	// ErrOtherUser: MergeSession was given a session that belongs to a
	// user other than the request's.
	ErrOtherUser = errors.New("httpsession: the session belongs to another user")

	// ErrCannotIterate: Manager.Iterate was called with a store that has no
	// All method.
	ErrCannotIterate = errors.New("httpsession: the store cannot iterate over sessions")

	// errBadData: the stored bytes are not this package's format, for
	// instance because another user of the engine wrote raw bytes.
	errBadData = errors.New("httpsession: session data is not a msgpack map of values")
)
