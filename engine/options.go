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
type SyncPolicy = wal.SyncPolicy

// Sync policies. Whatever the policy, the log's order for any one session is
// the order in which memory saw the writes, and recovery never revives an
// expired session.
const (
	// SyncEverySecond, the default: a write returns once its log record is
	// handed to the operating system, and the log is fsynced every second.
	// A process crash loses nothing that was acknowledged; a power cut or
	// kernel crash loses at most about the last second.
	SyncEverySecond = wal.SyncEverySecond
	// SyncAlways: a write returns after an fsync covers its record; many
	// concurrent writers share one fsync (group commit). Nothing that was
	// acknowledged is lost, even to a power cut.
	SyncAlways = wal.SyncAlways
	// SyncNo: a write returns at once and the operating system decides when
	// to write. A process crash can lose the writes of the last moments.
	SyncNo = wal.SyncNo
)

// Options configures an Engine. The zero value is a safe, fast in-memory
// store; every field documents its default.
type Options struct {
	// Dir turns persistence on: the engine logs every write to a write-ahead
	// log under Dir and recovers from it on Open. Empty means in memory
	// only. The directory is created (mode 0700) if missing and locked
	// against a second engine.
	Dir string

	// Sync is the durability policy of a persistent engine. Default
	// SyncEverySecond.
	Sync SyncPolicy

	// SegmentSize is the size of a log segment file. Default 64 MiB.
	SegmentSize int64

	// SkipDamaged makes recovery skip the rest of a damaged log segment,
	// with a logged warning, instead of failing Open with ErrCorrupt. The
	// records after the damage in that segment are lost. A torn write at
	// the very end of the log is always repaired, with or without it.
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

	// KeepSnapshots is how many snapshots to keep, and so how far back the
	// log is kept: recovery falls back to an older snapshot and more log if
	// the newest is damaged. Default 2; at least 1.
	KeepSnapshots int

	// Logger receives recovery reports and write failures; nil means
	// slog.Default(). Session IDs are never logged.
	Logger *slog.Logger

	// FS replaces the file system under the log, for fault-injection tests
	// (see package wal/waltest). Nil means the operating system's.
	FS wal.FS

	// SigningKeys turns on signed tokens: each ID is issued with an
	// HMAC-SHA256 tag, and a token whose tag does not verify is rejected as
	// malformed before any lookup, in constant time. The first key signs;
	// all verify, so keys rotate by putting the new key first and dropping
	// the old one after the absolute timeout. Keys are at least 32 bytes.
	SigningKeys [][]byte

	// EncryptionKeys turns on encryption at rest: session data in log and
	// snapshot files is sealed with AES-256-GCM under the first key, and
	// opened with whichever key its record names, so keys rotate the same
	// way. Recovery fails with ErrEncryptionKey if a needed key is missing
	// or wrong. Memory holds plaintext.
	EncryptionKeys []EncryptionKey

	// RotateGrace keeps the old ID of a rotated session working, read-only,
	// for this long, so that requests already in flight with it succeed
	// (Session.Rotated reports it). Zero: the old ID stops at once.
	// Grace entries are not logged; a restart ends them early.
	RotateGrace time.Duration

	// MaxSessionsPerUser caps the sessions one owner may hold; creating one
	// more deletes that owner's oldest. Zero means no cap.
	MaxSessionsPerUser int

	// IdleTimeout ends a session that has not been used for this long.
	// Default 30 minutes. A session may override it at creation.
	IdleTimeout time.Duration

	// AbsoluteTimeout ends a session this long after its creation, however
	// active. Default 24 hours. A session may override it at creation.
	AbsoluteTimeout time.Duration

	// MaxSessions caps the number of sessions; Create returns ErrFull beyond
	// it. Zero means no cap.
	MaxSessions int

	// MaxDataSize caps a session's data in bytes; larger writes return
	// ErrTooLarge. Default 64 KiB.
	MaxDataSize int

	// MaxUserIDSize caps an owner ID in bytes. Default 256.
	MaxUserIDSize int

	// Shards is the number of lock stripes, rounded up to a power of two.
	// Default 16 × GOMAXPROCS, at least 64.
	Shards int

	// Clock, when set, replaces the engine's coarse clock; see NewManualClock.
	Clock *Clock

	// ClockResolution is how often the engine's own clock advances, and so
	// how late past its deadline a session may still be seen. Default 10 ms.
	ClockResolution time.Duration

	// ReapBudget is the most sessions the janitor examines per shard per
	// visit, bounding how long it holds a shard's lock. Default 256.
	ReapBudget int

	// manualReap stops the janitor from reaping and the snapshotter from
	// starting, so that this package's tests decide exactly when reaping and
	// snapshots happen.
	manualReap bool

	// beforeSnapshotChunk, if set, runs before a snapshot copies shard i:
	// tests use it to land writes inside a snapshot.
	beforeSnapshotChunk func(i int)
}

const (
	defaultIdle        = 30 * time.Minute
	defaultAbsolute    = 24 * time.Hour
	defaultMaxData     = 64 << 10
	defaultMaxUserID   = 256
	defaultResolution  = 10 * time.Millisecond
	defaultReapBudget  = 256
	defaultTouchLog    = time.Minute
	defaultSnapEvery   = time.Hour
	defaultKeepSnaps   = 2
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
	case o.RotateGrace < 0:
		return o, fmt.Errorf("%w: negative RotateGrace", ErrInvalid)
	case o.MaxSessions < 0, o.MaxDataSize < 0, o.MaxUserIDSize < 0, o.Shards < 0, o.ReapBudget < 0, o.MaxSessionsPerUser < 0:
		return o, fmt.Errorf("%w: negative limit in Options", ErrInvalid)
	case o.MaxDataSize > maxDataSizeAllowed:
		return o, fmt.Errorf("%w: MaxDataSize above %d", ErrInvalid, maxDataSizeAllowed)
	case o.MaxUserIDSize > shard.MaxUserID:
		return o, fmt.Errorf("%w: MaxUserIDSize above %d", ErrInvalid, shard.MaxUserID)
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
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
