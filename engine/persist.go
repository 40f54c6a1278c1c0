package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/snapshot"
	"github.com/sesscache/sesscache/wal"
)

// On disk a session is named by a digest of its ID, never the ID: a copy of
// the data directory hands out no usable token. Sessions recovered from disk
// are therefore keyed by their digest in memory ("cold") until a request
// presents the ID, which the engine then hashes once and re-keys the session
// under (see promote). Until then they are only reachable by digest, and a
// raw ID equal to a digest never finds one (see find).
//
// The data directory holds:
//
//	LOCK        the lock a second engine finds taken
//	MANIFEST    the first LSN of the newest log segment (manifest.go)
//	wal/        the log segments (package wal); wal/quarantine/ damaged ones
//	snapshots/  the snapshots (package snapshot); snapshots/quarantine/ too

// diskKey returns the on-disk key of record r, whose in-memory key is hot
// (a raw ID) or cold (already a digest).
func diskKey(r shard.Rec) wal.Key {
	return wal.Key{Digest: handleOf(r), Hint: r.Hint()}
}

var pendingPool = sync.Pool{New: func() any { return new(wal.Pending) }}

// journal is a persistent engine's log and snapshots, and what it needs to
// write them.
type journal struct {
	log      *wal.Log
	lock     *os.File
	snap     *snapshotter
	manifest *manifest
}

// openJournal locks the data directory and recovers its snapshot and log
// into e.
func (e *Engine) openJournal() error {
	o := e.opts
	if err := prepareDir(o.Dir, o.Logger); err != nil {
		return err
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return err
	}
	start := time.Now()
	fail := func(err error) error {
		_ = lock.Close() // releases the lock; the recovery error is what matters
		return fmt.Errorf("sesscache: recovering %s: %w", o.Dir, classify(err))
	}
	mf := &manifest{path: filepath.Join(o.Dir, manifestName), fsys: o.FS, logger: o.Logger}
	expect, err := mf.read()
	if err != nil && !o.SkipDamaged {
		return fail(err)
	}
	sn := &snapshotter{
		dir:    filepath.Join(o.Dir, "snapshots"),
		opened: e.Now(),
		// Half the processors encode, so that a snapshot never takes every
		// core from the application; loading uses them all.
		opts: snapshot.Options{FS: o.FS, Logger: o.Logger, Workers: max(1, runtime.GOMAXPROCS(0)/2)},
	}
	from, snapBytes, err := e.loadSnapshots(sn)
	if err != nil {
		return fail(err)
	}
	loaded := e.Len()
	var replayed *logReplay
	log, info, err := func() (*wal.Log, wal.ReplayInfo, error) {
		replayed = e.newLogReplay()
		defer replayed.finish() // the workers stop whatever happens
		return wal.Open(filepath.Join(o.Dir, "wal"), wal.Options{
			Sync:          o.Sync.wal(),
			SegmentSize:   o.SegmentSize,
			SkipDamaged:   o.SkipDamaged,
			FS:            o.FS,
			Logger:        o.Logger,
			ExpectSegment: expect,
			Map:           o.walMap(),
			OnSkip:        func(string) { replayed.suspectAll() },
			OnSegment:     mf.record,
			OnWrite:       e.observeLogWrite,
			OnFsync:       e.observeFsync,
		}, from, replayed.apply)
	}()
	if err != nil {
		return fail(err)
	}
	e.jr = &journal{log: log, lock: lock, snap: sn, manifest: mf}
	// A write waits for the log before memory shows it, unless the log
	// holds it as the policy promises the moment it is appended.
	e.deferApply = !log.AcksAtAppend()
	sn.carried = info.Bytes
	dropped, unproven := e.dropDead()
	if err := mf.write(log.NewestSegment()); err != nil {
		_ = e.closeJournal() // the log and the lock: the manifest error is what matters
		return fmt.Errorf("sesscache: recovering %s: %w", o.Dir, err)
	}
	e.recovery = RecoveryStats{
		Sessions:         e.Len(),
		SnapshotLSN:      from,
		SnapshotSessions: loaded,
		SnapshotBytes:    snapBytes,
		DamagedSnapshots: e.recovery.DamagedSnapshots,
		Records:          info.Records,
		Bytes:            info.Bytes,
		ExpiredOnLoad:    dropped,
		TornBytes:        info.TornBytes,
		Skipped:          info.SkippedSegments,
		DroppedUnproven:  len(unproven),
		RejectedRecords:  replayed.rejected,
		Quarantined:      append(info.DamagedSegments, e.recovery.Quarantined...),
	}
	if info.SkippedSegments > 0 || replayed.rejected > 0 || len(unproven) > 0 {
		// Seal the gap: a snapshot of what was recovered, so that no later
		// Open needs the log across the damage, and no older snapshot that
		// would is kept.
		if err := e.sealRecovery(unproven); err != nil {
			_ = e.closeJournal() // the log and the lock: the sealing error is what matters
			return fmt.Errorf("sesscache: recovering %s: sealing off the damage: %w", o.Dir, err)
		}
	}
	e.recovery.Duration = time.Since(start)
	if o.Recorder != nil {
		o.Recorder.ObserveRecovery(e.recovery.Duration, e.recovery.Sessions)
	}
	if from > 0 || info.Records > 0 {
		o.Logger.Info("sesscache: recovered sessions", "dir", o.Dir, "sessions", e.Len(),
			"snapshot_lsn", from, "log_records", info.Records, "expired", dropped,
			"dropped_unproven", len(unproven), "torn_bytes", info.TornBytes, "duration", e.recovery.Duration)
	}
	return nil
}

// prepareDir creates the data directory with mode 0700, or tightens an
// existing one that others may read or enter.
func prepareDir(dir string, logger *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sesscache: creating data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("sesscache: data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: data directory %s is not a directory", ErrInvalid, dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&0o700); err != nil {
			return fmt.Errorf("sesscache: data directory %s has mode %04o, open to other users, and tightening it failed: %w", dir, perm, err)
		}
		logger.Warn("sesscache: tightened the data directory's mode: it was open to other users",
			"dir", dir, "was", fmt.Sprintf("%04o", perm), "now", fmt.Sprintf("%04o", perm&0o700))
	}
	return nil
}

// classify makes the log's and snapshots' damage and format errors match
// the engine's sentinels, keeping the original for its file and offset.
func classify(err error) error {
	switch {
	case errors.Is(err, wal.ErrCorrupt), errors.Is(err, snapshot.ErrCorrupt), errors.Is(err, errManifest):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case errors.Is(err, snapshot.ErrUnsupportedVersion), errors.Is(err, wal.ErrUnsupportedVersion):
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return err
}

// closeJournal writes a final snapshot if asked to, flushes and fsyncs the
// log, and releases the directory.
func (e *Engine) closeJournal() error {
	if e.jr == nil {
		return nil
	}
	var err error
	if e.opts.SnapshotOnClose {
		_, err = e.snapshot(0)
	}
	if cerr := e.jr.log.Close(); err == nil {
		err = cerr
	}
	if cerr := e.jr.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// pending returns an empty Pending, or nil for an in-memory engine.
func (e *Engine) pending() *wal.Pending {
	if e.jr == nil {
		return nil
	}
	return pendingPool.Get().(*wal.Pending)
}

func release(p *wal.Pending) {
	if p != nil {
		pendingPool.Put(p)
	}
}

func putRecord(r shard.Rec, key wal.Key) wal.Record {
	rec := wal.Record{
		Op:         wal.OpPut,
		Key:        key,
		Version:    r.Version(),
		Created:    r.Created(),
		LastAccess: r.LastAccess(),
		Idle:       r.Idle(),
		Absolute:   r.Absolute(),
		UserID:     []byte(r.UserID()),
		Data:       r.Data(),
		AuthAt:     r.AuthAt(),
		Label:      []byte(r.Label()),
	}
	if r.Flags()&shard.FlagBound != 0 {
		// Logged so that a restart keeps the binding instead of lifting it.
		rec.Fingerprint = r.Fingerprint()
	}
	return rec
}

// wait blocks until the record at lsn is as durable as the sync policy
// says, or fsynced whatever the policy if durable.
func (e *Engine) wait(lsn uint64, durable bool) error {
	var err error
	if durable {
		err = e.jr.log.WaitDurable(lsn)
	} else {
		err = e.jr.log.Wait(lsn)
	}
	if err != nil {
		return e.writeFailed(err)
	}
	return nil
}

func (e *Engine) writeFailed(err error) error {
	if e.closed.Load() || errors.Is(err, wal.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrReadOnly, err)
}

// logTouch records r's last access in the log without waiting: a touch is
// not acknowledged to anyone, and losing one can only end a session early by
// up to the touch interval.
func (e *Engine) logTouch(r shard.Rec, lastAccess int64) {
	p := pendingPool.Get().(*wal.Pending)
	if p.Encode(&wal.Record{Op: wal.OpTouch, Key: diskKey(r), LastAccess: lastAccess}) == nil {
		_, _ = e.jr.log.Append(p) // a failure here shows on the next write
	}
	pendingPool.Put(p)
}

func (e *Engine) observeLogWrite(records uint64, bytes int) {
	if e.opts.Recorder != nil {
		e.opts.Recorder.ObserveLogWrite(records, bytes)
	}
}

func (e *Engine) observeFsync(d time.Duration) {
	if e.opts.Recorder != nil {
		e.opts.Recorder.ObserveFsync(d)
	}
}

// dropDead removes, after recovery, every session already past its deadline
// and every session still marked suspect (see logReplay.suspectAll). It
// returns how many expired and the on-disk keys of the suspects. On the way
// it makes later stamps (nextStamp) come after every time recovered.
func (e *Engine) dropDead() (expired int, suspects []wal.Key) {
	now := e.now()
	var latest int64
	for i := range e.shards {
		s := &e.shards[i]
		s.Lock()
		var doomed []shard.Rec
		s.Range(func(r shard.Rec) bool {
			latest = max(latest, r.Created(), r.AuthAt())
			if r.Flags()&shard.FlagSuspect != 0 {
				doomed = append(doomed, r)
			}
			return true
		})
		for _, r := range doomed {
			k := r.Key()
			suspects = append(suspects, diskKey(r))
			e.forget(i, r)
			s.Remove(r, shard.Hash(&k))
		}
		for {
			n, more := s.PopExpired(now, 1<<20, func(r shard.Rec) bool { e.forget(i, r); return true })
			expired += n
			if !more {
				break
			}
		}
		s.Unlock()
	}
	e.stamp.Store(max(e.stamp.Load(), latest))
	return expired, suspects
}

// RecoveryStats describes what Open recovered from the data directory.
type RecoveryStats struct {
	// Sessions is the number of live sessions after recovery.
	Sessions int
	// SnapshotLSN is the LSN of the snapshot loaded, 0 if none;
	// SnapshotSessions and SnapshotBytes are its sessions and size.
	SnapshotLSN      uint64
	SnapshotSessions int
	SnapshotBytes    int64
	// DamagedSnapshots is the number of newer snapshots skipped as damaged
	// (and moved into snapshots/quarantine).
	DamagedSnapshots int
	// Records and Bytes are the log records replayed after the snapshot and
	// their size.
	Records uint64
	Bytes   int64
	// ExpiredOnLoad is the number of recovered sessions dropped because
	// they were already past their deadline.
	ExpiredOnLoad int
	// TornBytes is the size of a torn write repaired at the end of the log.
	TornBytes int64
	// Skipped is the number of damaged stretches of log skipped
	// (Options.SkipDamaged), a missing newest segment included.
	Skipped int
	// RejectedRecords counts sealed records that did not open with their
	// key (edited or damaged on disk), skipped under Options.SkipDamaged.
	RejectedRecords int
	// DroppedUnproven is the number of sessions dropped because a skipped
	// stretch of log may have ended them and no later record shows them
	// alive.
	DroppedUnproven int
	// Quarantined names the damaged files moved aside, relative to the
	// data directory's wal/ and snapshots/ directories.
	Quarantined []string
	// Duration is how long recovery took, snapshot and log together.
	Duration time.Duration
}

// walMap is the log's MapMode for these options.
func (o *Options) walMap() wal.MapMode {
	switch {
	case o.NoMap:
		return wal.MapNever
	case o.mapAlways:
		return wal.MapAlways
	}
	return wal.MapAuto
}
