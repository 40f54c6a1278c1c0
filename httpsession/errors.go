package httpsession

import "errors"

// Errors reported by this package, compared with errors.Is. Errors from the
// engine (engine.ErrTooLarge, engine.ErrNotFound, engine.ErrClosed, ...)
// come wrapped, so errors.Is finds them too. No error carries a session ID.
var (
	// ErrRotated: the request presented an ID that another request has
	// just rotated away. During the engine's RotateGrace the old ID still
	// reads the session, but this request's changes are refused rather than
	// applied to a session the client no longer names; the response carries
	// the new cookie so the client converges.
	ErrRotated = errors.New("httpsession: session ID was rotated by another request; changes not saved")

	// ErrHeadersWritten: the change needs a new cookie, but the response's
	// headers have already gone out, so the client could never learn it.
	// Login and RenewToken return it without changing anything; a value
	// written after the response began into a request that had no session
	// yet is reported with it.
	ErrHeadersWritten = errors.New("httpsession: response headers already written; cannot set the session cookie")

	// errBadData: the stored bytes are not this package's format, for
	// instance because another user of the engine wrote raw bytes.
	errBadData = errors.New("httpsession: session data is not a msgpack map of values")
)
