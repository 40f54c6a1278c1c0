package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Log is an open write-ahead log. It is safe for concurrent use.
type Log struct {
	dir    string
	fsys   FS
	opts   Options
	logger *slog.Logger

	// Append side.
	mu         sync.Mutex
	batch      []byte // frames appended and not yet taken by the flusher
	batchFirst uint64 // LSN of batch's first frame
	cuts       []cut  // segment boundaries inside batch, from Roll
	last       uint64 // last LSN assigned
	tailFirst  uint64 // first LSN of the segment the next append lands in, if it is fresh
	syncReq    uint64 // Sync asks the flusher to fsync through this LSN
	closing    bool

	// SyncAlways's gathering of the next batch; see gather.
	gatherFrom   uint64    // l.last when the writers were woken
	gatherWant   uint64    // appends after gatherFrom to wait for; 0: none
	gatherUntil  time.Time // when to stop waiting for them
	gatherMissed bool      // the last gather timed out with few writers back

	kick chan struct{} // wakes the flusher; capacity 1

	// Progress, readable without locks.
	lastLSN    atomic.Uint64
	writtenLSN atomic.Uint64
	// Frame bytes appended and written since Open; their difference is
	// what SyncNo lets run ahead of the disk.
	appendedBytes atomic.Uint64
	writtenBytes  atomic.Uint64
	durableLSN    atomic.Uint64
	failure       atomic.Pointer[error]
	stopped       atomic.Bool // the flusher has exited

	// Goroutines blocked in Wait and Sync, by the LSN they wait for; see
	// notify.
	waitMu         sync.Mutex
	durableWaiters waitQueue // for durableLSN: Wait under SyncAlways, and Sync
	writtenWaiters waitQueue // for writtenLSN: Wait under the other policies

	// Mapped mode (see mapped.go): appends copy into cur's mapping under mu;
	// retired and named, also under mu, tell the flusher what to finish.
	mapped  bool
	retired []*segment
	named   bool

	// Flusher state, touched only by the flusher goroutine (and by Open
	// before it starts). cur is also read by the syncer under fileMu, and
	// in mapped mode written by appends under mu.
	fileMu   sync.Mutex
	cur      *segment
	spareBuf []byte
	pipe     *pipeline
	woken    []*waiter // notifyAndRegroup's buffer
	startLSN uint64    // last LSN at Open, to count records appended since

	segMu sync.Mutex
	segs  []segInfo // every segment file, in LSN order; the last is current

	writes, fsyncs atomic.Uint64
	replay         ReplayInfo

	flusherDone chan struct{}
	syncerStop  chan struct{}
	syncerDone  chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

// cut is a segment boundary requested by Roll: the frame at off in the batch,
// whose LSN is lsn, starts a new segment.
type cut struct {
	off int
	lsn uint64
}

// Open opens the log in dir, creating the directory (mode 0700) if needed.
// It first replays, in LSN order, every record with an LSN above from into
// apply, before any append is possible; apply's Record may alias the read
// buffer and must be copied to be kept. A torn tail of the last segment is
// truncated away; other damage fails Open with a *CorruptError unless
// opts.SkipDamaged. An error from apply stops the replay and is returned
// wrapped. The next LSN assigned is one above both from and the last LSN in
// the log, so a log whose records all lie below a snapshot's LSN still
// continues after that snapshot. A nil apply replays nothing but still
// checks the log.
func Open(dir string, opts Options, from uint64, apply func(*Record) error) (*Log, ReplayInfo, error) {
	if opts.Sync > SyncNo {
		return nil, ReplayInfo{}, fmt.Errorf("wal: unknown sync policy %d", opts.Sync)
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if apply == nil {
		apply = func(*Record) error { return nil }
	}
	l := &Log{
		dir:         dir,
		fsys:        opts.FS,
		opts:        opts,
		logger:      opts.Logger,
		kick:        make(chan struct{}, 1),
		flusherDone: make(chan struct{}),
	}
	if err := l.fsys.MkdirAll(dir, dirMode); err != nil {
		return nil, ReplayInfo{}, fmt.Errorf("wal: %w", err)
	}
	start := time.Now()
	res, err := replay(l.fsys, dir, opts, l.logger, from, apply)
	if err != nil {
		return nil, res.info, err
	}
	if err := l.openCurrent(res, from); err != nil {
		return nil, res.info, fmt.Errorf("wal: %w", err)
	}
	res.info.Duration = time.Since(start)
	l.replay = res.info

	l.mapped = l.tryMap(l.cur)
	l.pipe = startPipeline(l.fsys, dir, opts.SegmentSize, l.mapped)
	if l.mapped {
		go l.mappedFlusher()
	} else {
		go l.flusher()
	}
	if opts.Sync == SyncEverySecond && !opts.everysecInFlusher {
		l.syncerStop = make(chan struct{})
		l.syncerDone = make(chan struct{})
		go l.syncer()
	}
	return l, res.info, nil
}

// openCurrent chooses the segment appends go to: the last one if it ends
// exactly where the log continues, otherwise a new one.
func (l *Log) openCurrent(res replayResult, from uint64) error {
	next := max(from, res.lastLSN) + 1
	l.segs = res.segs
	if t := res.tail; t != nil {
		if t.next == next {
			// The sync makes DurableLSN true from the start: a crashed
			// process may have left its last writes in the page cache only.
			err := t.f.Preallocate(l.opts.SegmentSize)
			if err == nil {
				err = t.f.Sync()
			}
			if err != nil {
				_ = t.f.Close() // Open fails with err
				return err
			}
			markSynced(t, t.size)
			t.wrote.Store(t.size)
			// Past its data the space may be preallocated only.
			t.zeroed = t.size
			l.cur = t
		} else {
			// It stops being the last segment: trim its preallocated tail
			// as rotation would have.
			err := t.f.Truncate(t.size)
			if err == nil {
				err = t.f.Sync()
			}
			if cerr := t.f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if t.empty() {
				// Names a first LSN the log will never write: it would
				// read as a gap after the new segment's predecessor.
				if err := l.fsys.Remove(filepath.Join(l.dir, segmentName(t.first))); err != nil {
					return err
				}
				l.segs = l.segs[:len(l.segs)-1]
			}
		}
	}
	if l.cur == nil {
		s, err := createSegment(l.fsys, l.dir, next, l.opts.SegmentSize)
		if err != nil {
			return err
		}
		l.cur = s
		l.segs = append(l.segs, segInfo{first: next, bytes: s.size})
	}
	if l.cur.empty() {
		l.tailFirst = next
	}
	l.last = next - 1
	l.startLSN = l.last
	l.lastLSN.Store(l.last)
	l.writtenLSN.Store(l.last)
	l.durableLSN.Store(l.last)
	return nil
}

// Append copies p's record into the log's batch and assigns it the next LSN.
// It does not wait for any I/O; call Wait with the returned LSN for that. The
// engine calls it under its shard lock, so that the log's order for a session
// is the order memory saw. p may be reused as soon as Append returns.
//
// Append fails fast with an error wrapping ErrFailed and the cause once the
// log has failed, with ErrClosed once Close has begun, and with
// ErrInvalidRecord if p holds no record.
func (l *Log) Append(p *Pending) (uint64, error) {
	if p.Len() == 0 {
		return 0, fmt.Errorf("%w: empty Pending", ErrInvalidRecord)
	}
	if l.mapped {
		return l.appendMapped(p)
	}
	l.mu.Lock()
	if err := l.err(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	if l.closing {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	lsn := l.last + 1
	wasIdle := len(l.batch) == 0 && len(l.cuts) == 0
	if len(l.batch) == 0 {
		l.batchFirst = lsn
	}
	n := len(l.batch)
	l.batch = p.appendTo(l.batch, lsn)
	l.appendedBytes.Add(uint64(len(l.batch) - n))
	l.last = lsn
	l.lastLSN.Store(lsn)
	// The flusher may be in gather, waiting for exactly this append.
	wakeFlusher := wasIdle || (l.gatherWant > 0 && lsn-l.gatherFrom == l.gatherWant)
	l.mu.Unlock()
	if wakeFlusher {
		l.wake()
	}
	return lsn, nil
}

// wake makes sure the flusher looks at the batch again.
func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Roll makes the next Append start a new segment and returns the last LSN
// assigned before it. A snapshot uses that LSN as its own: once the snapshot
// is durable, RemoveThrough(last) can delete every segment before the roll.
// Rolling twice with no append in between starts one new segment, not two.
func (l *Log) Roll() (last uint64, err error) {
	if l.mapped {
		return l.rollMapped()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.err(); err != nil {
		return 0, err
	}
	if l.closing {
		return 0, ErrClosed
	}
	if l.tailFirst != l.last+1 {
		l.cuts = append(l.cuts, cut{off: len(l.batch), lsn: l.last + 1})
		l.tailFirst = l.last + 1
		l.wake()
	}
	return l.last, nil
}

// RemoveThrough deletes, oldest first, the segments all of whose records have
// LSNs at or below lsn. It never deletes the segment being appended to, so it
// may keep a segment that a Roll has not moved past yet. A segment that Open
// skipped damage in (ReplayInfo.DamagedSegments) is not deleted but moved
// into the "quarantine" directory beside the segments, for inspection.
func (l *Log) RemoveThrough(lsn uint64) error {
	l.mu.Lock()
	closing := l.closing
	l.mu.Unlock()
	if closing {
		return ErrClosed
	}
	l.segMu.Lock()
	defer l.segMu.Unlock()
	n := 0
	for n+1 < len(l.segs) && l.segs[n+1].first-1 <= lsn {
		if err := l.discard(segmentName(l.segs[n].first)); err != nil {
			l.segs = l.segs[n:]
			return err
		}
		n++
	}
	if n == 0 {
		return nil
	}
	l.segs = l.segs[n:]
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// QuarantineDir is the directory, inside the log's, that RemoveThrough moves
// damaged segments into.
const QuarantineDir = "quarantine"

// discard removes a segment file, or moves it into the quarantine directory
// if replay found damage in it.
func (l *Log) discard(name string) error {
	path := filepath.Join(l.dir, name)
	if !slices.Contains(l.replay.DamagedSegments, name) {
		if err := l.fsys.Remove(path); err != nil {
			return fmt.Errorf("wal: remove segment: %w", err)
		}
		return nil
	}
	q := filepath.Join(l.dir, QuarantineDir)
	err := l.fsys.MkdirAll(q, dirMode)
	if err == nil {
		err = l.fsys.Rename(path, filepath.Join(q, name))
	}
	if err == nil {
		err = l.fsys.SyncDir(q)
	}
	if err != nil {
		return fmt.Errorf("wal: quarantine damaged segment: %w", err)
	}
	l.logger.Warn("wal: moved a damaged segment into quarantine", slog.String("file", name),
		slog.String("dir", q))
	return nil
}

// NewestSegment returns the first LSN of the segment being appended to.
func (l *Log) NewestSegment() uint64 {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	return l.segs[len(l.segs)-1].first
}

// LastLSN returns the last LSN assigned (by Append, or found at Open).
func (l *Log) LastLSN() uint64 { return l.lastLSN.Load() }

// Err returns the log's sticky failure, wrapping ErrFailed and the cause, or
// nil if it has not failed.
func (l *Log) Err() error { return l.err() }

func (l *Log) err() error {
	if p := l.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// fail makes the log failed for good; the first cause wins.
func (l *Log) fail(cause error) {
	err := fmt.Errorf("%w: %w", ErrFailed, cause)
	if l.failure.CompareAndSwap(nil, &err) {
		l.logger.Error("wal: log failed; appends refused until reopened",
			slog.String("dir", l.dir), slog.Any("err", cause))
	}
	l.notify()
}

// Close writes and fsyncs everything appended, closes the files and stops
// every goroutine the Log started. It returns the log's failure if it has
// failed, else the first error met while closing. Later calls return the same
// result.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closing = true
		l.mu.Unlock()
		if l.syncerStop != nil {
			close(l.syncerStop)
			<-l.syncerDone
		}
		l.wake()
		<-l.flusherDone
		l.pipe.close()
		if err := l.err(); err != nil {
			l.closeErr = err
		}
	})
	return l.closeErr
}

// closeFiles is the flusher's last act: fsync what was written and close.
func (l *Log) closeFiles() {
	var errs []error
	if l.err() == nil && l.durableLSN.Load() < l.writtenLSN.Load() {
		errs = append(errs, l.syncCurrent())
	}
	l.fileMu.Lock()
	errs = append(errs, l.cur.f.Close())
	l.fileMu.Unlock()
	if err := errors.Join(errs...); err != nil {
		l.closeErr = fmt.Errorf("wal: close: %w", err)
	}
}

// AcksAtAppend reports whether a record is as safe as the policy promises
// as soon as Append returns: so under SyncNo, and under SyncEverySecond when
// segments are mapped (the record is in the page cache). Wait then returns
// at once, and a caller may act on the record without waiting.
func (l *Log) AcksAtAppend() bool {
	return l.opts.Sync == SyncNo || (l.mapped && l.opts.Sync == SyncEverySecond)
}
