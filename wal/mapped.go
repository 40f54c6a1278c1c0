package wal

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"time"
)

// Mapped segments. Where the file system allocates a segment's space up
// front (Preallocate) and the File can be mapped (Mapper), the log maps the
// segment and Append copies each frame into the mapping, under the append
// lock: the bytes are then in the operating system's page cache, where a
// process crash cannot lose them, and no system call was made. So under
// SyncEverySecond and SyncNo a record is as safe as the policy promises the
// moment Append returns, and Wait returns at once. Under SyncAlways the
// flusher fsyncs (the mapping's dirty pages go with the file's) for every
// writer whose record the fsync covers, as in write mode.
//
// A segment that is full (or that Roll ends) is retired under the append
// lock: the next spare, preallocated and mapped ahead of time by the
// pipeline, gets its header copied in and is renamed to its name there and
// then, so that a crash from that moment on finds it; the flusher then
// fsyncs, unmaps, trims and closes the old one, and fsyncs the directory
// before any fsync of the new segment counts as durable. A frame larger than
// a spare gets a segment of its own, made to fit.
//
// Stores into a mapping cannot fail for want of space, the space being
// allocated; an I/O error on the page cache would raise SIGBUS, which the
// copy turns into the log's failure (debug.SetPanicOnFault) rather than a
// crash. The format on disk is the write mode's, byte for byte.

// tryMap maps s for appends if the log may and can, and reports whether it
// did.
func (l *Log) tryMap(s *segment) bool {
	switch l.opts.Map {
	case MapNever:
		return false
	case MapAuto:
		if l.opts.Sync == SyncAlways {
			return false
		}
	}
	mp, ok := s.f.(Mapper)
	if !ok {
		return false
	}
	m, err := mp.Map(l.opts.SegmentSize)
	if err != nil {
		if !errors.Is(err, ErrNotMappable) {
			l.logger.Warn("wal: cannot map the segment; writing it instead", "err", err)
		}
		return false
	}
	s.m, s.buf = m, m.Bytes()
	return true
}

// appendMapped is Append for mapped segments.
func (l *Log) appendMapped(p *Pending) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.err(); err != nil {
		return 0, err
	}
	if l.closing {
		return 0, ErrClosed
	}
	lsn := l.last + 1
	n := int64(len(p.buf) + uintSize(lsn))
	if l.cur.size+n > int64(len(l.cur.buf)) {
		if err := l.retireLocked(lsn, n); err != nil {
			l.fail(err)
			return 0, l.err()
		}
	}
	off := l.cur.size
	if err := copyFrame(p, l.cur.buf[off:off:len(l.cur.buf)], lsn); err != nil {
		l.fail(err)
		return 0, l.err()
	}
	l.cur.size += n
	l.cur.next = lsn + 1
	l.last = lsn
	l.lastLSN.Store(lsn)
	l.appendedBytes.Add(uint64(n))
	l.writtenBytes.Add(uint64(n))
	l.writtenLSN.Store(lsn)
	if l.opts.Sync == SyncAlways {
		l.wake()
	}
	return lsn, nil
}

// copyFrame copies p as a frame with LSN lsn into dst, whose capacity holds
// it, turning a fault on the mapped memory into an error.
func copyFrame(p *Pending, dst []byte, lsn uint64) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if f, ok := r.(interface{ Addr() uintptr }); ok {
				err = fmt.Errorf("fault writing into a mapped segment at %#x: %v", f.Addr(), r)
				return
			}
			panic(r)
		}
	}()
	p.appendTo(dst, lsn)
	return nil
}

// retireLocked ends the current segment and continues in a new one whose
// first LSN is first, with room for at least n more bytes. Caller holds mu.
func (l *Log) retireLocked(first uint64, n int64) error {
	var s spare
	if segmentHeaderSize+n > l.opts.SegmentSize {
		s = l.pipe.create(fmt.Sprintf("large-%016x.wal.tmp", first), segmentHeaderSize+n)
	} else {
		s = l.pipe.take()
	}
	if s.err != nil {
		return fmt.Errorf("prepare next segment: %w", s.err)
	}
	path := filepath.Join(l.dir, segmentName(first))
	copy(s.m.Bytes(), appendSegmentHeader(nil, first))
	if err := l.fsys.Rename(s.path, path); err != nil {
		_ = s.m.Unmap() // the log fails with err; the spare is abandoned
		_ = s.f.Close()
		return fmt.Errorf("start segment %s: %w", segmentName(first), err)
	}
	l.retired = append(l.retired, l.cur)
	l.named = true
	l.cur = &segment{first: first, next: first, size: segmentHeaderSize, f: s.f, m: s.m, buf: s.m.Bytes()}
	l.tailFirst = first
	l.segMu.Lock()
	l.segs = append(l.segs, segInfo{first: first, bytes: segmentHeaderSize})
	l.segMu.Unlock()
	l.wake()
	return nil
}

// rollMapped is Roll for mapped segments: the new segment starts now.
func (l *Log) rollMapped() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.err(); err != nil {
		return 0, err
	}
	if l.closing {
		return 0, ErrClosed
	}
	if !l.cur.empty() {
		if err := l.retireLocked(l.last+1, 0); err != nil {
			l.fail(err)
			return 0, l.err()
		}
	}
	return l.last, nil
}

// mappedPending reports whether the flusher has work in mapped mode; mu
// held.
func (l *Log) mappedPending() bool {
	if l.err() != nil {
		return len(l.retired) > 0
	}
	durable := l.durableLSN.Load()
	return len(l.retired) > 0 || l.named || l.syncReq > durable ||
		(l.opts.Sync == SyncAlways && l.last > durable)
}

// mappedFlusher is the flusher for mapped segments: appends need no write,
// so it finishes retired segments and fsyncs, as the policy, Sync and
// WaitDurable ask.
func (l *Log) mappedFlusher() {
	defer func() {
		l.closeMapped()
		l.stopped.Store(true)
		close(l.flusherDone)
		l.notify()
	}()
	gatherTimer := time.NewTimer(time.Hour)
	gatherTimer.Stop()
	// What the last fsync covered, for OnWrite: in mapped mode a group
	// commit's size is what one fsync makes durable.
	synced, syncedBytes := l.durableLSN.Load(), l.appendedBytes.Load()
	for {
		l.mu.Lock()
		for !l.mappedPending() {
			if l.closing {
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
			<-l.kick
			l.mu.Lock()
		}
		if l.opts.Sync == SyncAlways {
			l.gather(gatherTimer)
		}
		retired, named := l.retired, l.named
		l.retired, l.named = nil, false
		cur, target, syncReq, targetEnd := l.cur, l.last, l.syncReq, l.cur.size
		targetBytes := l.appendedBytes.Load()
		l.mu.Unlock()

		if err := l.finish(retired); err != nil {
			l.fail(err)
			continue
		}
		// A new segment's header is in its mapping only: it is fsynced
		// before the segment's name is made durable, so that no crash
		// leaves the name without the header.
		durable := l.durableLSN.Load()
		fsync := named || (target > durable && (l.opts.Sync == SyncAlways || syncReq > durable))
		var d time.Duration
		if fsync {
			start := time.Now()
			if err := cur.f.Sync(); err != nil {
				l.fail(fmt.Errorf("fsync %s: %w", segmentName(cur.first), err))
				continue
			}
			d = time.Since(start)
			markSynced(cur, targetEnd)
			l.fsyncs.Add(1)
			if l.opts.OnFsync != nil {
				l.opts.OnFsync(d)
			}
		}
		if named {
			if err := l.fsys.SyncDir(l.dir); err != nil {
				l.fail(fmt.Errorf("sync %s: %w", l.dir, err))
				continue
			}
			if l.opts.OnSegment != nil {
				l.opts.OnSegment(cur.first)
			}
		}
		if !fsync {
			if covered := cur.first - 1; covered > durable { // what the finished segments hold
				l.advanceDurable(covered)
				l.notify()
			}
			continue
		}
		if l.opts.OnWrite != nil && target > synced {
			l.opts.OnWrite(target-synced, int(targetBytes-syncedBytes))
		}
		synced, syncedBytes = target, targetBytes
		l.advanceDurable(target)
		l.notifyAndRegroup(d)
	}
}

// finish fsyncs, unmaps, trims to its data and closes each retired segment.
func (l *Log) finish(retired []*segment) error {
	for _, s := range retired {
		name := segmentName(s.first)
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", name, err)
		}
		l.fsyncs.Add(1)
		markSynced(s, s.size) // made durable by the fsync after the trim
		if err := s.m.Unmap(); err != nil {
			return fmt.Errorf("unmap %s: %w", name, err)
		}
		s.m, s.buf = nil, nil
		err := s.f.Truncate(s.size)
		if err == nil {
			err = s.f.Sync()
		}
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("trim %s: %w", name, err)
		}
		l.segMu.Lock()
		for i := range l.segs {
			if l.segs[i].first == s.first {
				l.segs[i].bytes = s.size
			}
		}
		l.segMu.Unlock()
	}
	return nil
}

// closeMapped is the mapped flusher's last act: finish what is retired,
// fsync the current segment if the policy has not, and release it.
func (l *Log) closeMapped() {
	l.mu.Lock()
	retired, cur := l.retired, l.cur
	l.retired = nil
	l.mu.Unlock()
	var errs []error
	if l.err() == nil {
		errs = append(errs, l.finish(retired))
		if l.durableLSN.Load() < l.writtenLSN.Load() {
			if err := cur.f.Sync(); err != nil {
				l.fail(fmt.Errorf("fsync %s: %w", segmentName(cur.first), err))
				errs = append(errs, err)
			} else {
				l.fsyncs.Add(1)
				markSynced(cur, cur.size)
				l.advanceDurable(l.writtenLSN.Load())
			}
		}
	} else {
		for _, s := range retired {
			_ = s.m.Unmap() // failed: what they hold is the durable prefix's business
			_ = s.f.Close()
		}
	}
	if cur.m != nil {
		errs = append(errs, cur.m.Unmap())
		cur.m, cur.buf = nil, nil
	}
	errs = append(errs, cur.f.Close())
	if err := errors.Join(errs...); err != nil {
		l.closeErr = fmt.Errorf("wal: close: %w", err)
	}
	l.segMu.Lock()
	l.segs[len(l.segs)-1].bytes = cur.size
	l.segMu.Unlock()
}
