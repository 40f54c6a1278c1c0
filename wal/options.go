package wal

import (
	"fmt"
	"log/slog"
	"time"
)

// SyncPolicy says when Wait returns, in the terms of Redis's appendfsync.
type SyncPolicy uint8

const (
	// SyncEverySecond returns from Wait once the record was written to the
	// segment file (handed to the operating system) and fsyncs every
	// SyncInterval: a process crash loses nothing, a power cut at most about
	// one interval. The default.
	SyncEverySecond SyncPolicy = iota
	// SyncAlways returns from Wait after an fsync that covers the record.
	// Concurrent writers share fsyncs (group commit), and zeros are written
	// ahead of the data, which makes each fsync cheaper (see the package
	// comment).
	SyncAlways
	// SyncNo returns from Wait at once; the flusher still writes promptly and
	// the operating system decides when the data reaches the disk. Only if
	// appends run more than 8 MiB ahead of the writes does Wait wait for
	// its record to be written, so that a stalled disk slows writers down
	// instead of growing memory without bound.
	SyncNo
)

// String returns Redis's name for the policy: always, everysec or no.
func (p SyncPolicy) String() string {
	switch p {
	case SyncEverySecond:
		return "everysec"
	case SyncAlways:
		return "always"
	case SyncNo:
		return "no"
	}
	return fmt.Sprintf("SyncPolicy(%d)", uint8(p))
}

// Defaults for zero Options fields.
const (
	DefaultSegmentSize  = 64 << 20
	DefaultSyncInterval = time.Second
)

// MapMode says when the log maps its segments instead of writing them.
type MapMode uint8

const (
	// MapAuto maps the segments under SyncEverySecond and SyncNo, where a
	// mapped record is acknowledged without a system call, and writes them
	// under SyncAlways, where every acknowledgment waits for an fsync
	// anyway. Written, the flusher writes zeros ahead of the data
	// (zeroAhead), so an fsync only flushes data; a mapping's stores land
	// in preallocated, unwritten extents, whose conversion every fsync then
	// commits to the journal. Measured (BENCHMARKS.md), mapped segments
	// made SyncAlways about 30% slower at 64 writers.
	MapAuto MapMode = iota
	// MapNever writes the segments under every policy.
	MapNever
	// MapAlways maps the segments under every policy, SyncAlways too: for
	// comparing the two, and for testing mapped segments under SyncAlways.
	MapAlways
)

// Options configure a Log. The zero value is a safe default: SyncEverySecond,
// 64 MiB segments, the operating system's file system, slog.Default().
type Options struct {
	// Sync is the durability policy.
	Sync SyncPolicy
	// SegmentSize is the size at which the log moves on to a new segment
	// file, which is also the size segments are preallocated to. Zero means
	// DefaultSegmentSize. A single record larger than this gets a segment
	// of its own. One spare segment is kept preallocated for the next
	// rotation, so an open log reserves up to about twice this beyond the
	// data it holds.
	SegmentSize int64
	// SyncInterval is how often SyncEverySecond fsyncs. Zero means
	// DefaultSyncInterval.
	SyncInterval time.Duration
	// SkipDamaged makes Open skip the rest of a damaged segment, logging and
	// counting it, instead of failing with a *CorruptError. Records after
	// the damage in that segment are lost. A damaged last segment is
	// truncated at the damage after the damaged bytes are copied to
	// "<segment>.damaged", so that appends can go on after it.
	SkipDamaged bool
	// FS is the file system; nil means OSFS. Tests inject faults here.
	FS FS
	// Logger receives torn-write and damage reports and the failure cause;
	// nil means slog.Default(). Record contents are never logged.
	Logger *slog.Logger

	// OnSkip, if set, is called during Open's replay, in order with the
	// records, where SkipDamaged skips the rest of a damaged segment: the
	// records skipped there are unknown, so whatever they may have changed
	// must be treated as unknown too.
	OnSkip func(segment string)
	// OnSegment, if set, is called with the first LSN of every segment
	// created after Open, once the segment file and its name are durable.
	// It runs on the flusher goroutine and delays the writes behind it:
	// keep it short. The engine records the newest segment outside the log
	// with it, so that a missing newest segment is noticed at Open.
	OnSegment func(first uint64)
	// ExpectSegment, if not zero, is the first LSN of the newest segment
	// that was ever created, as OnSegment reported it. Open fails with a
	// *CorruptError wrapping ErrMissingSegment if no segment at or past it
	// is on disk (a deleted newest segment, or a deleted log), unless
	// SkipDamaged, which then treats it as skipped damage (OnSkip).
	ExpectSegment uint64
	// OnWrite and OnFsync, if set, are called after every write of a batch
	// (with the records and bytes it held) and every fsync of segment data
	// (with its duration), on the goroutine that made it. With mapped
	// segments there are no write calls: OnWrite then reports, at each
	// fsync that SyncAlways or a Sync asks for, the records and bytes it
	// made durable. They are for metrics; keep them short.
	OnWrite func(records uint64, bytes int)
	OnFsync func(time.Duration)

	// Map chooses between mapped segments and write calls (see mapped.go).
	// The zero value, MapAuto, maps them under SyncEverySecond and SyncNo.
	Map MapMode

	// everysecInFlusher makes the flusher itself fsync every SyncInterval
	// instead of a separate syncer goroutine. Only the benchmark that
	// justified the syncer sets it.
	everysecInFlusher bool
}
