package engine

import (
	"fmt"
	"log/slog"
	"math/bits"
	"runtime"
	"time"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/wal"
)

// SyncPolicy says when a write returns relative to the disk, in the terms of
// Redis's appendfsync. See the constants.
type SyncPolicy uint8

// Sync policies. Whatever the policy, the log's order for any one session is
// the order in which memory saw the writes, a write becomes visible to
// readers only once the log holds it as the policy says (so a write that
// fails leaves no trace), and recovery never revives an expired session.
// Removals (Delete, RevokeUser, RevokeOthers, RevokeSession) wait for an
// fsync under every policy: a logout survives a power cut.
const (
	// SyncEverySecond, the default: a write returns once its log record is
	// in the operating system's page cache (copied into the mapped log, or,
	// where the log is not mapped, written to it), and the log is fsynced
	// every second. A process crash loses nothing that was acknowledged; a
	// power cut or kernel crash loses at most about the last second of
	// writes other than removals (Delete and the revocations wait for an
	// fsync under every policy).
	SyncEverySecond SyncPolicy = iota
	// SyncAlways: a write returns after an fsync covers its record; many
	// concurrent writers share one fsync (group commit). Nothing that was
	// acknowledged is lost, even to a power cut.
	SyncAlways
	// SyncNo: a write returns once its record is in the page cache (mapped
	// log) or, where the log is not mapped, at once, and the operating
	// system decides when to write. A power cut loses what it had not
	// written; with the log not mapped a process crash can lose the writes
	// of the last moments too.
	SyncNo
)

// String returns Redis's name for the policy: everysec, always or no.
func (p SyncPolicy) String() string { return p.wal().String() }

func (p SyncPolicy) wal() wal.SyncPolicy {
	switch p {
	case SyncAlways:
		return wal.SyncAlways
	case SyncNo:
		return wal.SyncNo
	}
	return wal.SyncEverySecond
}

// FS is the file system under a persistent engine's data directory: its
// log and snapshots. It exists for fault-injection tests (see package
// wal/waltest, whose FS simulates failed writes and fsyncs and power cuts);
// nil means the operating system's.
type FS = wal.FS

// Options configures an Engine. The zero value is a safe, fast in-memory
// store; every field documents its default.
type Options struct {
	// Dir turns persistence on: the engine logs every write to a write-ahead
	// log under Dir and recovers from it on Open. Empty means in memory
	// only. The directory is created with mode 0700 if missing, tightened
	// to 0700 (with a warning) if it is open to others, and locked against
	// a second engine.
	Dir string

	// Sync is the durability policy of a persistent engine. Default
	// SyncEverySecond.
	Sync SyncPolicy

	// SegmentSize is the size of a log segment file. Default 64 MiB.
	SegmentSize int64

	// NoMap makes the log write its segments with write calls instead of
	// mapping them into memory, which it does by default under
	// SyncEverySecond and SyncNo where the file system preallocates space
	// (Linux). Mapped, a write is in the page cache, safe from a process
	// crash, without a system call, so it is acknowledged at once; but a
	// store into a page the kernel has just written back faults, and the
	// fault may wait for the file system's journal. Written, the log's
	// flusher makes every system call and writers wait for it instead.
	// Under SyncAlways the log writes its segments either way: every write
	// waits for an fsync, which a mapping makes slower.
	NoMap bool

	// SkipDamaged makes recovery go on past damage in the log (a damaged
	// segment's rest is skipped, a missing newest segment is done without)
	// instead of failing Open with ErrCorrupt. What the skipped records did
	// is unknown, so recovery drops every session that no record after the
	// damage shows alive: it never revives a session the skipped records
	// may have deleted, revoked or rotated away. Users may be logged out;
	// none is let back in. The damaged segments are moved into
	// "wal/quarantine" and a snapshot seals the gap, so that the next Open,
	// with or without SkipDamaged, succeeds. RecoveryStats says what was
	// skipped and dropped. A torn write at the end of the log is always
	// repaired, with or without it; after a power cut that includes holes
	// anywhere past the last fsync, since unsynced pages reach the disk in
	// any order.
	SkipDamaged bool

	// TouchLogInterval is how far the last access must move before a Get
	// logs it. A restart may end an idle session early by up to this much;
	// it never revives an expired one. Default 1 minute; at least 1 second.
	TouchLogInterval time.Duration

	// SnapshotInterval writes a snapshot when the last one is this old and
	// the log has grown since. Default 1 hour; negative: never on a timer.
	SnapshotInterval time.Duration

	// SnapshotAfterBytes writes a snapshot once this much log has been
	// written since the last one. Zero means Redis's auto-rewrite rule:
	// once the log since the last snapshot exceeds both 64 MiB and that
	// snapshot's size. Negative: never on size.
	SnapshotAfterBytes int64

	// SnapshotOnClose writes a snapshot in Close, so the next Open replays
	// little log. Off by default, to keep Close quick.
	SnapshotOnClose bool

	// SnapshotCPU is the share of one processor a snapshot's encoding may
	// take while the engine serves: it pauses between shards to stay
	// within it, so that a snapshot does not take the cores requests need
	// (a snapshot then takes longer). Default 0.25; 1 or more: no pauses.
	// Snapshots at Close and at Open run unpaced.
	SnapshotCPU float64

	// KeepSnapshots is how many snapshots to keep, and so how far back the
	// log is kept: recovery falls back to an older snapshot and more log if
	// the newest is damaged. Default 2; at least 1.
	KeepSnapshots int

	// Logger receives recovery reports and write failures; nil means
	// slog.Default(). Session IDs are never logged.
	Logger *slog.Logger

	// FS replaces the file system under the data directory, for
	// fault-injection tests. Nil means the operating system's.
	FS FS

	// SigningKeys turns on signed tokens: each ID is issued with an
	// HMAC-SHA256 tag, and a token whose tag does not verify is rejected as
	// malformed before any lookup, in constant time. The first key signs;
	// all verify, so keys rotate by putting the new key first and dropping
	// the old one after the absolute timeout. Keys are at least 32 bytes.
	SigningKeys [][]byte

	// EncryptionKeys turns on encryption at rest: every session record in
	// log and snapshot files is sealed with AES-256-GCM under the first
	// key, its owner, label, deadlines and other metadata together with its
	// data, so a record edited on disk fails to open rather than load.
	// Records open with whichever key they name, so keys rotate the same
	// way as signing keys. Recovery fails with ErrEncryptionKey if a needed
	// key is missing or a record does not open. Memory holds plaintext.
	// Records written before encryption was turned on are plaintext on
	// disk (key ID 0) and still load, until a snapshot rewrites them
	// sealed; so the seal does not stop whoever can write the data
	// directory from adding plaintext records, which its 0700 mode does.
	EncryptionKeys []EncryptionKey

	// RotateGrace keeps the old ID of a session rotated without a change
	// of privilege (Rotate; see RotateOptions.Privileged) readable for this
	// long, so that requests already in flight with it still read the
	// session. Such reads are read-only and anonymous and never learn the
	// new ID (see Session.Rotated). Zero, the default: the old ID stops at
	// once. Grace entries are not logged; a restart ends them early.
	RotateGrace time.Duration

	// MaxSessionsPerUser caps the sessions one owner may hold; creating or
	// logging in one more ends that owner's session that authenticated
	// longest ago, in the same atomic step. Zero means no cap.
	MaxSessionsPerUser int

	// IdleTimeout ends a session that has not been used for this long.
	// Default 30 minutes. A session may override it at creation. A lookup
	// records an access once the clock has moved a second (or a 64th of
	// the session's idle timeout, if shorter) past the last one recorded,
	// so the idle deadline slides in steps of that much.
	IdleTimeout time.Duration

	// AbsoluteTimeout ends a session this long after its creation, however
	// active: the user must authenticate again. Default 12 hours (ASVS
	// 3.3.2). A session may override it at creation.
	AbsoluteTimeout time.Duration

	// MaxSessions caps the number of sessions. Anonymous sessions never
	// keep an authenticated one out: at the cap, a Create evicts the least
	// recently used anonymous session (approximately: the best of a
	// sample, as Redis's LRU does), and returns ErrFull only if every
	// session is authenticated. Zero means no cap.
	MaxSessions int

	// MaxAnonymousSessions caps anonymous sessions on their own: at the
	// cap, creating one more evicts the least recently used anonymous
	// session (approximately, as above). Zero means no separate cap.
	MaxAnonymousSessions int

	// MaxDataSize caps a session's data in bytes; larger writes return
	// ErrTooLarge. Default 64 KiB.
	MaxDataSize int

	// MaxUserIDSize caps an owner ID in bytes. Default 256.
	MaxUserIDSize int

	// MaxLabelSize caps a session's label in bytes. Default 256.
	MaxLabelSize int

	// Shards is the number of lock stripes, rounded up to a power of two.
	// Default 16 × GOMAXPROCS, at least 64.
	Shards int

	// Clock, when set, replaces the engine's coarse clock; see NewManualClock.
	Clock *Clock

	// ClockResolution is how often the engine's own clock advances while
	// the engine is in use, and so how late past its deadline a session
	// may still be seen. Default 10 ms. An engine left idle for a second
	// lets its clock sleep; the next call wakes it.
	ClockResolution time.Duration

	// ReapBudget is the most sessions the janitor examines per shard per
	// visit, bounding how long it holds a shard's lock. Default 256.
	ReapBudget int

	// OnEvent, if set, is called for every session created, rotated,
	// deleted, revoked, evicted or expired, with its handle and owner and
	// never its token: an audit trail (ASVS V7). It runs on the goroutine
	// that made the change (the janitor for expiry), after the change is
	// visible and with no lock held, so it may call the engine; it must not
	// block for long.
	OnEvent func(Event)

	// Recorder, if set, receives latencies and sizes for metrics (see
	// Recorder). Nil costs nothing.
	Recorder Recorder

	// OnTouch, if set, is called when a lookup moves a session's last
	// access TouchLogInterval or more past the one last reported, so at
	// most once per session per interval, with its handle and the new last
	// access: a shared store's near cache writes sliding expiry behind with
	// it. It runs on the looking-up goroutine and must not block.
	OnTouch func(h Handle, lastAccess time.Time)

	// manualReap stops the janitor from reaping and the snapshotter from
	// starting, so that this package's tests decide exactly when reaping and
	// snapshots happen.
	manualReap bool

	// beforeSnapshotChunk, if set, runs before a snapshot copies shard i:
	// tests use it to land writes inside a snapshot.
	beforeSnapshotChunk func(i int)

	// beforePublish, if set, runs when a snapshot asks the log to be
	// durable through what it copied, before it does.
	beforePublish func()

	// mapAlways maps the log's segments under SyncAlways too, which by
	// default writes them: BenchmarkCreateDurable compares the two.
	mapAlways bool
}

const (
	defaultIdle        = 30 * time.Minute
	defaultAbsolute    = 12 * time.Hour
	defaultMaxData     = 64 << 10
	defaultMaxUserID   = 256
	defaultMaxLabel    = 256
	defaultResolution  = 10 * time.Millisecond
	defaultReapBudget  = 256
	defaultTouchLog    = time.Minute
	defaultSnapEvery   = time.Hour
	defaultKeepSnaps   = 2
	defaultSnapCPU     = 0.25
	minShards          = 64
	maxShards          = 1 << 16 // a shard is chosen by the 16-bit hint stored on disk
	maxDataSizeAllowed = shard.MaxData
)

// withDefaults returns o with every zero field set to its default, or an
// error naming the first field out of range.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.IdleTimeout < 0, o.AbsoluteTimeout < 0, o.ClockResolution < 0, o.TouchLogInterval < 0, o.SegmentSize < 0:
		return o, fmt.Errorf("%w: negative duration in Options", ErrInvalid)
	case o.KeepSnapshots < 0:
		return o, fmt.Errorf("%w: negative KeepSnapshots", ErrInvalid)
	case o.SnapshotCPU < 0:
		return o, fmt.Errorf("%w: negative SnapshotCPU", ErrInvalid)
	case o.RotateGrace < 0:
		return o, fmt.Errorf("%w: negative RotateGrace", ErrInvalid)
	case o.MaxSessions < 0, o.MaxAnonymousSessions < 0, o.MaxDataSize < 0, o.MaxUserIDSize < 0,
		o.MaxLabelSize < 0, o.Shards < 0, o.ReapBudget < 0, o.MaxSessionsPerUser < 0:
		return o, fmt.Errorf("%w: negative limit in Options", ErrInvalid)
	case o.MaxDataSize > maxDataSizeAllowed:
		return o, fmt.Errorf("%w: MaxDataSize above %d", ErrInvalid, maxDataSizeAllowed)
	case o.MaxUserIDSize > shard.MaxUserID:
		return o, fmt.Errorf("%w: MaxUserIDSize above %d", ErrInvalid, shard.MaxUserID)
	case o.MaxLabelSize > shard.MaxLabel:
		return o, fmt.Errorf("%w: MaxLabelSize above %d", ErrInvalid, shard.MaxLabel)
	case o.Shards > maxShards:
		return o, fmt.Errorf("%w: Shards above %d", ErrInvalid, maxShards)
	case o.Sync > SyncNo:
		return o, fmt.Errorf("%w: unknown Sync policy %d", ErrInvalid, o.Sync)
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = defaultIdle
	}
	if o.AbsoluteTimeout == 0 {
		o.AbsoluteTimeout = defaultAbsolute
	}
	if o.MaxDataSize == 0 {
		o.MaxDataSize = defaultMaxData
	}
	if o.MaxUserIDSize == 0 {
		o.MaxUserIDSize = defaultMaxUserID
	}
	if o.MaxLabelSize == 0 {
		o.MaxLabelSize = defaultMaxLabel
	}
	if o.Shards == 0 {
		o.Shards = max(16*runtime.GOMAXPROCS(0), minShards)
	}
	o.Shards = 1 << bits.Len(uint(o.Shards-1))
	if o.ClockResolution == 0 {
		o.ClockResolution = defaultResolution
	}
	if o.ReapBudget == 0 {
		o.ReapBudget = defaultReapBudget
	}
	if o.TouchLogInterval == 0 {
		o.TouchLogInterval = defaultTouchLog
	}
	o.TouchLogInterval = max(o.TouchLogInterval, time.Second)
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = defaultSnapEvery
	}
	if o.KeepSnapshots == 0 {
		o.KeepSnapshots = defaultKeepSnaps
	}
	if o.SnapshotCPU == 0 {
		o.SnapshotCPU = defaultSnapCPU
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
