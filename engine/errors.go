package engine

import (
	"errors"
)

// Sentinel errors, compared with errors.Is. Every error the engine returns
// starts with "sesscache:", and none of them, nor anything the engine wraps
// around them, contains a session ID.
var (
	// ErrNotFound: no session has that ID. Also matched by ErrExpired and
	// ErrRotated.
	ErrNotFound = errors.New("sesscache: session not found")
	// ErrExpired: the session's deadline has passed; errors.Is(err, ErrNotFound)
	// is true as well, so callers that do not care about the difference need
	// check one error.
	ErrExpired error = expiredError{}
	// ErrRotated: a write (Update, Rotate) named the old ID of a session
	// rotated within Options.RotateGrace; the old ID is read-only.
	// errors.Is(err, ErrNotFound) is true as well.
	ErrRotated error = rotatedError{}
	// ErrClosed: the engine was closed.
	ErrClosed = errors.New("sesscache: engine closed")
	// ErrFull: creating the session would exceed Options.MaxSessions and
	// there is no anonymous session to evict.
	ErrFull = errors.New("sesscache: session limit reached")
	// ErrTooLarge: the data, user ID or label exceeds its limit.
	ErrTooLarge = errors.New("sesscache: value too large")
	// ErrVersionConflict: Update was given a version that is no longer
	// current, or gave up after too many concurrent writers won.
	ErrVersionConflict = errors.New("sesscache: version conflict")
	// ErrMalformedToken: the ID is not a token this store could have issued
	// (wrong form, or a signature that does not verify).
	ErrMalformedToken = errors.New("sesscache: malformed session token")
	// ErrInvalid: an argument is out of range, such as a negative timeout.
	ErrInvalid = errors.New("sesscache: invalid argument")
	// ErrReadOnly: an earlier write to the log failed (disk full, I/O error,
	// failed fsync), so the engine refuses every write; reads go on. The
	// error also wraps the cause. Reopening the directory recovers every
	// write that was acknowledged.
	ErrReadOnly = errors.New("sesscache: engine is read-only after a log write failed")
	// ErrLocked: another engine holds the data directory.
	ErrLocked = errors.New("sesscache: data directory locked")
	// ErrCorrupt: the data directory holds damage that recovery will not
	// repair by itself; the error names the file and offset. See
	// Options.SkipDamaged.
	ErrCorrupt = errors.New("sesscache: data directory damaged")
	// ErrUnsupported: the data directory was written in a format this
	// build does not read; the error names the file and the version.
	ErrUnsupported = errors.New("sesscache: unsupported data format")
)

// errStale is what commit returns when a record it was to change has been
// changed or removed since the caller read it: the caller reads again.
var errStale = errors.New("sesscache: stale write")

type rotatedError struct{}

func (rotatedError) Error() string        { return "sesscache: session ID was rotated; it is read-only" }
func (rotatedError) Is(target error) bool { return target == ErrNotFound }

type expiredError struct{}

func (expiredError) Error() string        { return "sesscache: session expired" }
func (expiredError) Is(target error) bool { return target == ErrNotFound }
