package engine

import (
	"context"
	"errors"
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

// Snapshots compact the log. A snapshot notes the log's last LSN L and rolls
// the log to a fresh segment, then copies one shard at a time under its lock
// (a slice of record pointers: records are immutable), writes pending
// included (see commit), and encodes outside it, on several goroutines.
// Writes go on meanwhile and land in the log after L, so the copy may hold
// some of them, a multi-session write possibly in part. Before the snapshot
// gets its name, the log is made durable through every record appended by
// the end of the copy (snapshot.Options.BeforePublish), so a snapshot is
// never ahead of the log: recovery loads the newest valid snapshot and
// replays the log after L, which completes any write the copy caught
// halfway, and since log records are whole states, not deltas, the overlap
// is harmless. Once a snapshot is durable, all but the newest KeepSnapshots
// are deleted, and the log segments wholly at or below the oldest kept one.

// SnapshotStats describes the latest snapshot of a persistent engine.
type SnapshotStats struct {
	// LSN is the last log record the snapshot covers; 0 if there is none.
	LSN uint64
	// Created is when it was written (the engine's clock).
	Created time.Time
	// Duration is how long writing it took, fsyncs included.
	Duration time.Duration
	// Bytes is the size of the snapshot file.
	Bytes int64
	// Sessions is the number of sessions it holds.
	Sessions uint64
	// LogBytesSince is the log written since the snapshot's LSN: what a
	// restart would replay on top of it.
	LogBytesSince int64
}

// snapshotter is a persistent engine's snapshot state.
type snapshotter struct {
	dir  string
	opts snapshot.Options

	opened time.Time // the engine's clock at Open

	mu       sync.Mutex // one snapshot at a time; guards the fields below
	pace     float64    // the running snapshot's share of a processor; 0: unpaced
	last     SnapshotStats
	base     uint64 // the log's BytesAppended when the last snapshot rolled it
	carried  int64  // log bytes after the loaded snapshot found at Open
	failedAt time.Time
}

// Snapshot writes a snapshot now and compacts the log behind it. It returns
// ErrInvalid for an in-memory engine. Writes go on while it runs.
func (e *Engine) Snapshot(ctx context.Context) (SnapshotStats, error) {
	if e.closed.Load() {
		return SnapshotStats{}, ErrClosed
	}
	if e.jr == nil {
		return SnapshotStats{}, fmt.Errorf("%w: an in-memory engine has no log to snapshot", ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return SnapshotStats{}, err
	}
	return e.snapshot(e.opts.SnapshotCPU)
}

// errStopping aborts a paced snapshot when Close begins.
var errStopping = errors.New("sesscache: snapshot abandoned: the engine is closing")

// snapshot writes a snapshot, its encoding paced to pace of a processor
// (see Options.SnapshotCPU; 0 or 1 or more: unpaced).
func (e *Engine) snapshot(pace float64) (st SnapshotStats, err error) {
	sn := e.jr.snap
	sn.mu.Lock()
	defer sn.mu.Unlock()
	sn.pace = pace
	start := time.Now()
	if e.opts.Recorder != nil {
		defer func() { e.opts.Recorder.ObserveSnapshot(time.Since(start), st.Bytes, err) }()
	}
	lsn, err := e.jr.log.Roll()
	if err != nil {
		return sn.last, e.writeFailed(err)
	}
	if lsn == 0 || lsn == sn.last.LSN {
		return sn.last, nil // nothing logged since the last one
	}
	base := e.jr.log.Stats().BytesAppended
	created := e.Now()
	opts := sn.opts
	opts.BeforePublish = func() error {
		if hook := e.opts.beforePublish; hook != nil {
			hook()
		}
		// Every record whose effect the copy may hold was appended by now.
		return e.jr.log.Sync()
	}
	info, err := snapshot.Write(sn.dir, lsn, created, len(e.shards), e.fillChunk, opts)
	if errors.Is(err, errStopping) {
		return sn.last, err
	}
	if err != nil {
		sn.failedAt = time.Now()
		e.opts.Logger.Error("sesscache: snapshot failed; the log still holds everything", "err", err)
		return sn.last, fmt.Errorf("sesscache: snapshot: %w", err)
	}
	sn.last = SnapshotStats{LSN: lsn, Created: created, Duration: time.Since(start), Bytes: info.Bytes, Sessions: info.Sessions}
	sn.base, sn.carried = base, 0
	oldest, err := snapshot.Prune(sn.dir, e.opts.KeepSnapshots, sn.opts)
	if err == nil && oldest > 0 {
		err = e.jr.log.RemoveThrough(oldest)
	}
	if err != nil {
		// The snapshot is durable; only the clean-up failed, and the next
		// snapshot tries again.
		e.opts.Logger.Warn("sesscache: removing old snapshots and log segments failed", "err", err)
	}
	return sn.last, nil
}

// fillChunk hands snapshot.Write the sessions of shard i: those stored, with
// the writes pending on it taken as applied.
func (e *Engine) fillChunk(i int, add func(*wal.Record) error) error {
	if hook := e.opts.beforeSnapshotChunk; hook != nil {
		hook(i)
	}
	s := &e.shards[i]
	start := time.Now()
	recs := make([]shard.Rec, 0, s.Len())
	var gone map[shard.Rec]bool
	s.Lock()
	s.Range(func(r shard.Rec) bool {
		recs = append(recs, r)
		return true
	})
	for k, tx := range s.pending {
		for j := range tx.list() {
			c := &tx.list()[j]
			if c.si != i || c.key() != k {
				continue
			}
			if !c.old.IsZero() {
				if gone == nil {
					gone = make(map[shard.Rec]bool)
				}
				gone[c.old] = true
			}
			if !c.new.IsZero() {
				recs = append(recs, c.new)
			}
		}
	}
	s.Unlock()
	now := e.now()
	for j, r := range recs {
		if j%256 == 255 {
			// Encoding is CPU-bound and runs beside the application's own
			// goroutines: give them a turn rather than wait to be preempted.
			runtime.Gosched()
		}
		if gone[r] || r.Flags()&shard.FlagAlias != 0 || r.Deadline(r.LastAccess()) <= now {
			continue // forwarding entries are not logged; expired sessions need not be
		}
		rec := putRecord(r, diskKey(r))
		buf := e.sealer.sealRecord(&rec)
		err := add(&rec)
		e.sealer.release(buf)
		if err != nil {
			return err
		}
	}
	return e.pace(time.Since(start))
}

// pace pauses a paced snapshot's encoder after it worked for busy, long
// enough to keep to its share of a processor, or abandons the snapshot
// if the engine starts closing meanwhile.
func (e *Engine) pace(busy time.Duration) error {
	p := e.jr.snap.pace
	if p <= 0 || p >= 1 {
		return nil
	}
	t := time.NewTimer(time.Duration(float64(busy) * (1 - p) / p))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-e.stop:
		return errStopping
	}
}

// snapshotStats returns the latest snapshot's stats with the log written
// since.
func (e *Engine) snapshotStats() SnapshotStats {
	sn := e.jr.snap
	appended := e.jr.log.Stats().BytesAppended
	sn.mu.Lock()
	defer sn.mu.Unlock()
	st := sn.last
	st.LogBytesSince = sn.carried + int64(appended-sn.base)
	return st
}

// snapshotDue reports whether an automatic snapshot should run now.
func (e *Engine) snapshotDue(now time.Time) bool {
	st := e.snapshotStats()
	sn := e.jr.snap
	sn.mu.Lock()
	failedAt := sn.failedAt
	sn.mu.Unlock()
	if !failedAt.IsZero() && now.Sub(failedAt) < time.Minute {
		return false // back off after a failure rather than rewrite in a loop
	}
	if st.LogBytesSince == 0 {
		return false
	}
	since := st.Created
	if since.IsZero() {
		since = e.jr.snap.opened // no snapshot yet: count from Open
	}
	if iv := e.opts.SnapshotInterval; iv > 0 && e.Now().Sub(since) >= iv {
		return true
	}
	switch after := e.opts.SnapshotAfterBytes; {
	case after > 0:
		return st.LogBytesSince >= after
	case after == 0:
		// Redis's auto-aof-rewrite rule: the log has grown past a floor and
		// past the size of the last compaction.
		return st.LogBytesSince >= autoSnapshotFloor && st.LogBytesSince >= st.Bytes
	}
	return false
}

const autoSnapshotFloor = 64 << 20

// snapshotLoop is the engine's snapshotter goroutine: it checks once a
// second whether a snapshot is due.
func (e *Engine) snapshotLoop() {
	defer e.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			if e.snapshotDue(now) {
				_, _ = e.snapshot(e.opts.SnapshotCPU) // a failure is logged; the log keeps everything
			}
		}
	}
}

// loadSnapshots loads the newest snapshot that verifies, falling back to
// older ones past damage (which it moves into quarantine), and returns its
// LSN (0 if none): the log must be replayed after it. A snapshot that cannot
// be opened for another reason (a missing encryption key, another format)
// fails recovery; so does a sealed record that does not open, unless
// Options.SkipDamaged, which then takes the snapshot as damaged.
func (e *Engine) loadSnapshots(sn *snapshotter) (uint64, int64, error) {
	snaps, err := snapshot.List(sn.dir, sn.opts)
	if err != nil {
		return 0, 0, err
	}
	for _, info := range snaps {
		loaded, err := e.loadSnapshot(info, sn)
		if err == nil {
			sn.last = SnapshotStats{LSN: loaded.LSN, Created: loaded.Created, Bytes: loaded.Bytes, Sessions: loaded.Sessions}
			return loaded.LSN, loaded.Bytes, nil
		}
		damaged := errors.Is(err, snapshot.ErrCorrupt) || (errors.Is(err, errSealBroken) && e.opts.SkipDamaged)
		if !damaged {
			return 0, 0, fmt.Errorf("%s: %w", filepath.Base(info.Path), err)
		}
		e.opts.Logger.Warn("sesscache: skipping a damaged snapshot; recovering from an older one and more log",
			"file", filepath.Base(info.Path), "err", err)
		e.resetMemory()
		e.recovery.DamagedSnapshots++
		if err := quarantine(e.opts.FS, info.Path); err != nil {
			return 0, 0, err
		}
		e.recovery.Quarantined = append(e.recovery.Quarantined, filepath.Join("snapshots", filepath.Base(info.Path)))
	}
	return 0, 0, nil
}

// quarantine moves a damaged file into the "quarantine" directory beside
// it, for inspection, durably.
func quarantine(fsys wal.FS, path string) error {
	if fsys == nil {
		fsys = wal.OSFS{}
	}
	q := filepath.Join(filepath.Dir(path), wal.QuarantineDir)
	err := fsys.MkdirAll(q, 0o700)
	if err == nil {
		err = fsys.Rename(path, filepath.Join(q, filepath.Base(path)))
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(path))
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sesscache: moving damaged %s into quarantine: %w", filepath.Base(path), err)
	}
	return nil
}

// resetMemory empties the shards and the books after a snapshot that
// failed halfway through loading.
func (e *Engine) resetMemory() {
	for i := range e.shards {
		e.shards[i].Reset()
	}
	e.users.init(len(e.shards))
	e.live.Store(0)
	e.anon.Store(0)
}

// loadSnapshot loads one snapshot file into the shards, in bulk: each shard
// is sized once up front and its heap ordered once at the end.
func (e *Engine) loadSnapshot(info snapshot.Info, sn *snapshotter) (snapshot.Info, error) {
	// A session takes about 300 bytes on disk; sizing from the file's length
	// avoids growing each table a dozen times while loading.
	per := int(info.Bytes/300)/len(e.shards) + 1
	for i := range e.shards {
		e.shards[i].Lock()
		e.shards[i].BeginBulk(per)
		e.shards[i].Unlock()
	}
	defer e.endBulk()
	// Each loading goroutine takes a scratch buffer and a slab for a chunk
	// and puts them back.
	type loader struct {
		buf  []byte
		slab shard.Slab
		recs []shard.Rec
	}
	var loaders sync.Pool
	all := sn.opts
	all.Workers = 0 // loading has the machine to itself: every processor
	// Check as it applies: a damaged file is found part-way, and
	// loadSnapshots then empties memory before it falls back.
	all.OnePass = true
	return snapshot.LoadBatches(info.Path, all, func(recs []wal.Record) error {
		l, _ := loaders.Get().(*loader)
		if l == nil {
			l = new(loader)
		}
		defer loaders.Put(l)
		// A chunk holds one shard's sessions, or the end of one and the
		// start of the next: each run of one shard is stored under one
		// taking of its lock.
		for start := 0; start < len(recs); {
			hint := recs[start].Key.Hint
			end := start
			l.recs = l.recs[:0]
			for ; end < len(recs) && recs[end].Key.Hint&uint16(e.mask) == hint&uint16(e.mask); end++ {
				rec := &recs[end]
				var err error
				if l.buf, err = e.sealer.openRecord(rec, l.buf); err != nil {
					return err
				}
				d := shard.Key(rec.Key.Digest)
				l.recs = append(l.recs, e.recoveredRec(&l.slab, rec, &d))
			}
			e.storeRun(uint64(hint), l.recs)
			start = end
		}
		return nil
	})
}

// sealRecovery runs at the end of an Open that skipped damage: it writes a
// snapshot of what was recovered, then retires every older snapshot (the
// log they need crosses the damage) and the log segments behind the new
// one, moving the damaged ones into quarantine. The next Open starts from
// that snapshot and never reads across the damage.
//
// The sessions recovery dropped as unproven are first deleted in the log
// too, so that the log agrees with memory on its own: a later recovery
// that does not cross the damage (say, from the new snapshot's fallback)
// does not bring them back.
func (e *Engine) sealRecovery(dropped []wal.Key) error {
	for len(dropped) > 0 {
		n := min(len(dropped), 4096)
		ops := make([]wal.Record, n)
		for i := range ops {
			ops[i] = wal.Record{Op: wal.OpDelete, Key: dropped[i]}
		}
		dropped = dropped[n:]
		rec := wal.Record{Op: wal.OpBatch, Ops: ops}
		if n == 1 {
			rec = ops[0]
		}
		p := e.pending()
		err := p.Encode(&rec)
		if err == nil {
			_, err = e.jr.log.Append(p)
		}
		release(p)
		if err != nil {
			return err
		}
	}
	if err := e.jr.log.Sync(); err != nil {
		return err
	}
	st, err := e.snapshot(0)
	if err != nil {
		return err
	}
	if st.LSN == 0 {
		return nil // an empty log: nothing to seal
	}
	sn := e.jr.snap
	snaps, err := snapshot.List(sn.dir, sn.opts)
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if s.LSN != st.LSN {
			if err := quarantine(e.opts.FS, s.Path); err != nil {
				return err
			}
			e.recovery.Quarantined = append(e.recovery.Quarantined, filepath.Join("snapshots", filepath.Base(s.Path)))
		}
	}
	return e.jr.log.RemoveThrough(st.LSN)
}
