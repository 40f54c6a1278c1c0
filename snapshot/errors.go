package snapshot

import (
	"errors"
	"fmt"
)

// Sentinel errors; compare with errors.Is.
var (
	// ErrCorrupt is wrapped by every *CorruptError: a snapshot file that is
	// truncated, damaged or not a snapshot. Recovery may fall back to an
	// older snapshot only if the log still covers it.
	ErrCorrupt = errors.New("snapshot: corrupt snapshot")

	// ErrUnsupportedVersion is returned by Load for a well-formed header
	// with a format version other than the one this package writes. It does not
	// wrap ErrCorrupt: the file is probably fine, and falling back to an
	// older snapshot would silently lose what the log no longer holds.
	ErrUnsupportedVersion = errors.New("snapshot: unsupported format version")
)

// CorruptError reports a damaged snapshot file. It wraps ErrCorrupt and, when
// there is one, the specific cause (such as wal.ErrChecksum or
// wal.ErrMalformed), so both can be tested with errors.Is.
type CorruptError struct {
	File   string // base name of the snapshot file
	Offset int64  // byte offset of the damaged header, chunk, frame or footer
	Reason string // what is wrong, without any record content
	Err    error  // the underlying cause; may be nil
}

// Error names the file, the offset and the cause, never record contents.
func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("snapshot: corrupt snapshot: %s at offset %d: %s", e.File, e.Offset, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is match both ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrCorrupt}
	}
	return []error{ErrCorrupt, e.Err}
}
