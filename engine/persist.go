package engine

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/snapshot"
	"github.com/sesscache/sesscache/wal"
)

// The write path of a persistent engine: encode the log record outside any
// lock, append it under the shard lock right before changing memory (so the
// log's order for a session is memory's order, and a failed append leaves
// memory untouched), release the lock, then wait as the sync policy says.
//
// On disk a session is named by a digest of its ID, never the ID: a copy of
// the data directory hands out no usable token. Sessions recovered from disk
// are therefore keyed by their digest in memory ("cold") until a request
// presents the ID, which the engine then hashes once and re-keys the session
// under (see promote). Until then they are only reachable by digest.

// digestOf returns the on-disk name of raw ID k: the first 16 bytes of its
// SHA-256.
func digestOf(k *shard.Key) shard.Key {
	sum := sha256.Sum256(k[:])
	return shard.Key(sum[:16])
}

// diskKey returns the on-disk key of record r, whose in-memory key is hot
// (a raw ID) or cold (already a digest).
func diskKey(r shard.Rec) wal.Key {
	k := r.Key()
	if r.Flags()&shard.FlagCold == 0 {
		k = digestOf(&k)
	}
	return wal.Key{Digest: k, Hint: r.Hint()}
}

var pendingPool = sync.Pool{New: func() any { return new(wal.Pending) }}

// journal is a persistent engine's log and snapshots, and what it needs to
// write them.
type journal struct {
	log       *wal.Log
	lock      *os.File
	touchSecs uint32
	snap      *snapshotter
}

// openJournal locks the data directory and replays its log into e.
func (e *Engine) openJournal() error {
	o := e.opts
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("sesscache: creating data directory: %w", err)
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return err
	}
	start := time.Now()
	sn := &snapshotter{
		dir:    filepath.Join(o.Dir, "snapshots"),
		opened: e.Now(),
		// Half the processors encode, so that a snapshot never takes every
		// core from the application; loading uses them all.
		opts: snapshot.Options{FS: o.FS, Logger: o.Logger, Workers: max(1, runtime.GOMAXPROCS(0)/2)},
	}
	from, snapBytes, err := e.loadSnapshots(sn)
	if err != nil {
		lock.Close()
		return fmt.Errorf("sesscache: recovering %s: %w", o.Dir, err)
	}
	loaded := e.Len()
	log, info, err := func() (*wal.Log, wal.ReplayInfo, error) {
		replay := e.newLogReplay()
		defer replay.finish() // the workers stop whatever happens
		return wal.Open(filepath.Join(o.Dir, "wal"), wal.Options{
			Sync:        o.Sync,
			SegmentSize: o.SegmentSize,
			SkipDamaged: o.SkipDamaged,
			FS:          o.FS,
			Logger:      o.Logger,
		}, from, replay.apply)
	}()
	if err != nil {
		lock.Close()
		return fmt.Errorf("sesscache: recovering %s: %w", o.Dir, err)
	}
	sn.carried = info.Bytes
	e.jr = &journal{log: log, lock: lock, touchSecs: uint32(o.TouchLogInterval / time.Second), snap: sn}
	dropped := e.dropExpired()
	e.recovery.Sessions = e.Len()
	e.recovery.SnapshotLSN = from
	e.recovery.SnapshotSessions = loaded
	e.recovery.SnapshotBytes = snapBytes
	e.recovery.Records = info.Records
	e.recovery.Bytes = info.Bytes
	e.recovery.ExpiredOnLoad = dropped
	e.recovery.TornBytes = info.TornBytes
	e.recovery.Skipped = info.SkippedSegments
	e.recovery.Duration = time.Since(start)
	if from > 0 || info.Records > 0 {
		o.Logger.Info("sesscache: recovered sessions", "dir", o.Dir, "sessions", e.Len(),
			"snapshot_lsn", from, "log_records", info.Records, "expired", dropped,
			"torn_bytes", info.TornBytes, "duration", e.recovery.Duration)
	}
	return nil
}

// closeJournal writes a final snapshot if asked to, flushes and fsyncs the
// log, and releases the directory.
func (e *Engine) closeJournal() error {
	if e.jr == nil {
		return nil
	}
	var err error
	if e.opts.SnapshotOnClose {
		_, err = e.snapshot()
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

// encodePut encodes a Put of r into p (nil: in memory, nothing to do),
// sealing the data if the engine encrypts at rest.
func (e *Engine) encodePut(p *wal.Pending, r shard.Rec, key wal.Key) error {
	if p == nil {
		return nil
	}
	rec := putRecord(r, key)
	buf := e.sealer.sealRecord(&rec)
	err := p.Encode(&rec)
	e.sealer.release(buf)
	return err
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
	}
	if r.Flags()&shard.FlagBound != 0 {
		// Logged so that a restart keeps the binding instead of lifting it.
		rec.Fingerprint = r.Fingerprint()
	}
	return rec
}

func encodeDelete(p *wal.Pending, key wal.Key) error {
	if p == nil {
		return nil
	}
	return p.Encode(&wal.Record{Op: wal.OpDelete, Key: key})
}

// appendLocked appends p to the log; the caller holds the shard lock and
// changes memory only if it succeeds. It returns the LSN to wait for.
func (e *Engine) appendLocked(p *wal.Pending) (uint64, error) {
	if p == nil {
		return 0, nil
	}
	lsn, err := e.jr.log.Append(p)
	if err != nil {
		return 0, e.writeFailed(err)
	}
	return lsn, nil
}

// wait blocks until the record at lsn is as durable as the sync policy says.
func (e *Engine) wait(lsn uint64) error {
	if lsn == 0 {
		return nil
	}
	if err := e.jr.log.Wait(lsn); err != nil {
		return e.writeFailed(err)
	}
	return nil
}

func (e *Engine) writeFailed(err error) error {
	if e.closed.Load() {
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

// replayPut stores a recovered session. Snapshot loading calls it from
// several goroutines at once.
func (e *Engine) replayPut(rec *wal.Record) {
	s, si := e.shardOf(uint64(rec.Key.Hint))
	d := shard.Key(rec.Key.Digest)
	h := shard.Hash(&d)
	r := e.recoveredRec(rec, &d)
	s.Lock()
	defer s.Unlock()
	e.storeRecovered(s, si, s.Lookup(&d, h), h, r)
}

// dropExpired removes every session already past its deadline after
// recovery, and returns how many.
func (e *Engine) dropExpired() int {
	now := e.clock.nanos()
	n := 0
	for i := range e.shards {
		s := &e.shards[i].Shard
		s.Lock()
		for {
			k, more := s.PopExpired(now, 1<<20, func(r shard.Rec) { e.forget(i, r) })
			n += k
			if !more {
				break
			}
		}
		s.Unlock()
	}
	return n
}

// promote re-keys the recovered session whose digest matches raw ID k from
// its digest to k, now that a request has presented the ID, and returns it;
// the zero Rec if there is none. Its callers looked k up and missed first.
func (e *Engine) promote(s *shard.Shard, si int, k *shard.Key, h uint64) shard.Rec {
	d := digestOf(k)
	dh := shard.Hash(&d)
	if s.Lookup(&d, dh).IsZero() {
		// Absent, or promoted by someone else since the caller's miss: the
		// re-key publishes k before it drops d, so look k up again.
		return s.Lookup(k, h)
	}
	s.Lock()
	defer s.Unlock()
	if r := s.Lookup(k, h); !r.IsZero() {
		return r
	}
	cold := s.Lookup(&d, dh)
	if cold.IsZero() {
		return shard.Rec{}
	}
	m := cold.Meta()
	m.Flags &^= shard.FlagCold
	hot := cold.With(k, m, cold.LastAccess(), cold.Data())
	s.Rekey(cold, dh, hot, h)
	if u := hot.UserID(); u != "" {
		e.users.remove(u, d)
		e.users.add(u, *k, si)
	}
	return hot
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
	// DamagedSnapshots is the number of newer snapshots skipped as damaged.
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
	// Skipped is the number of damaged segments skipped (Options.SkipDamaged).
	Skipped int
	// Duration is how long recovery took, snapshot and log together.
	Duration time.Duration
}
