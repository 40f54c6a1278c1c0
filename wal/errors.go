package wal

import (
	"errors"
	"fmt"
)

// Sentinel errors; compare with errors.Is.
var (
	// ErrCorrupt is wrapped by every *CorruptError: log data that cannot be
	// read back as written.
	ErrCorrupt = errors.New("wal: corrupt log")

	// ErrFailed is wrapped, together with the cause, by every error returned
	// after a write, short write or fsync failure. The failure is permanent
	// for the open Log: after a failed fsync the kernel may have dropped the
	// dirty pages, so nothing written since the last good fsync can be
	// trusted. Reopening the directory recovers the durable prefix.
	ErrFailed = errors.New("wal: log failed")

	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("wal: log closed")

	// ErrTooLarge is returned by Pending.Encode for a record whose payload
	// would exceed MaxFrameSize.
	ErrTooLarge = errors.New("wal: record too large")

	// ErrInvalidRecord is returned for a record that cannot be encoded: an
	// unknown op, a Batch without ops or with a nested Batch, or a Pending
	// that holds no record.
	ErrInvalidRecord = errors.New("wal: invalid record")

	// ErrMalformed is wrapped by DecodeRecord's errors: the payload is not a
	// canonical record.
	ErrMalformed = errors.New("wal: malformed record")

	// ErrMissingSegment is wrapped by the *CorruptError of an Open that does
	// not find the newest segment it was told of (Options.ExpectSegment).
	ErrMissingSegment = errors.New("wal: segment files are missing")
)

// Frame errors returned by ReadFrame. Only ErrEndMarker can be part of a
// healthy log; the replayer turns the others into a *CorruptError or, at the
// tail of the last segment, into a torn write.
var (
	// ErrShortFrame means the buffer ends before the frame does.
	ErrShortFrame = errors.New("wal: short frame")
	// ErrEndMarker means the frame length is zero: the end of written data.
	ErrEndMarker = errors.New("wal: end of frames")
	// ErrFrameTooLarge means the frame length exceeds MaxFrameSize.
	ErrFrameTooLarge = errors.New("wal: frame length exceeds MaxFrameSize")
	// ErrChecksum means the payload does not match the frame's CRC.
	ErrChecksum = errors.New("wal: frame checksum mismatch")
)

// CorruptError reports damaged log data. It wraps ErrCorrupt and, when there
// is one, the specific cause (such as ErrChecksum or ErrMalformed), so both
// can be tested with errors.Is.
type CorruptError struct {
	File   string // base name of the segment file
	Offset int64  // byte offset of the damaged frame or header in File
	Reason string // what is wrong, without any record content
	Err    error  // the underlying cause; may be nil
}

// Error names the file and offset, never record contents.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt log: %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Unwrap lets errors.Is match both ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrCorrupt}
	}
	return []error{ErrCorrupt, e.Err}
}
