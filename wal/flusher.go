package wal

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"time"
)

// maxIdleBatchBuffer bounds the batch buffer the flusher keeps for reuse, so
// one burst (a huge record, a stalled disk) does not pin its peak memory for
// the life of the log. It is well above the batches SyncNo builds when
// appends outrun the disk (up to maxBacklog plus one record per writer),
// which would otherwise be reallocated every time.
const maxIdleBatchBuffer = 4 * maxBacklog

// flusher is the goroutine that moves batches to disk. It swaps the append
// side's batch for an empty buffer, writes it with one write call (more only
// at segment boundaries), fsyncs if the policy or a Sync asks, and wakes the
// waiters. Appends that arrive meanwhile form the next batch: that is the
// group commit. Under SyncAlways it first lets the writers it just woke
// rejoin that batch (see gather).
//
// Writing and fsyncing on one goroutine, one after the other, is deliberate.
// A variant that wrote the next batch while a syncer goroutine fsynced the
// previous one was measured (BENCHMARKS.md): it wrote nearly every record
// with a write call of its own and started each fsync with whatever had
// trickled in, and was about half as fast with 64 writers.
func (l *Log) flusher() {
	defer func() {
		l.closeFiles()
		l.stopped.Store(true)
		close(l.flusherDone)
		l.notify()
	}()
	var tick <-chan time.Time
	if l.opts.Sync == SyncEverySecond && l.opts.everysecInFlusher {
		t := time.NewTicker(l.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	gatherTimer := time.NewTimer(time.Hour)
	gatherTimer.Stop()
	for {
		l.mu.Lock()
		for !l.flushPending() {
			if l.closing {
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
			select {
			case <-l.kick:
			case <-tick:
				l.periodicSync()
			}
			l.mu.Lock()
		}
		l.gather(gatherTimer)
		if l.opts.Sync != SyncAlways && len(l.batch) < yieldBelow {
			// A small batch: let the goroutines ready to run go first, so
			// that the writers among them append to it. Without this a
			// busy process writes about one record per write(2): the
			// append that wakes the flusher hands it the processor at
			// once (the scheduler's runnext), ahead of the writers the
			// last write released. One yield batched ~25 records per
			// write at 64 writers and raised SyncEverySecond's Create
			// rate from 450k/s to 600k/s on 2 cores (BenchmarkCreateDurable
			// in engine, records/write); with nothing else ready it
			// returns at once. Its cost is that of any goroutine on the
			// global run queue: when every processor is busy, the flusher
			// waits its turn as a goroutine woken by the network poller
			// would, and the writers waiting for it with it. Yielding only
			// after a write that released several writers does not do:
			// the convoy it breaks releases one writer per write (measured:
			// 2 records per write at 8 writers instead of 4.5).
			l.mu.Unlock()
			runtime.Gosched()
			l.mu.Lock()
		}
		buf, first, last := l.batch, l.batchFirst, l.last
		cuts, syncReq := l.cuts, l.syncReq
		l.batch = l.spareBuf[:0]
		l.cuts = nil
		l.mu.Unlock()

		if l.err() != nil {
			// Failed: the batch is dropped; its waiters get the failure.
			l.recycle(buf)
			continue
		}
		durableBefore := l.durableLSN.Load()
		if err := l.writeBatch(buf, first, cuts); err != nil {
			l.fail(err)
			l.recycle(buf)
			continue
		}
		if l.durableLSN.Load() > durableBefore {
			// A rotation fsynced the old segment: whoever waits for what
			// that covered (a Sync, WaitDurable) must hear of it now, as
			// no further fsync may come.
			l.notify()
		}
		if len(buf) > 0 {
			l.writtenBytes.Add(uint64(len(buf)))
			l.writtenLSN.Store(last)
			if l.opts.Sync != SyncAlways {
				l.notify()
			}
		}
		l.recycle(buf)
		if (l.opts.Sync == SyncAlways && len(buf) > 0) || syncReq > l.durableLSN.Load() {
			start := time.Now()
			if l.syncCurrent() == nil {
				l.notifyAndRegroup(time.Since(start))
			}
		}
		if tick != nil {
			select {
			case <-tick:
				l.periodicSync()
			default:
			}
		}
	}
}

// flushPending reports whether the flusher has work; l.mu must be held. A
// failed log only drops batches: a Sync waiting there already has its error.
func (l *Log) flushPending() bool {
	if len(l.batch) > 0 || len(l.cuts) > 0 {
		return true
	}
	return l.err() == nil && l.syncReq > l.durableLSN.Load()
}

func (l *Log) recycle(buf []byte) {
	if cap(buf) > maxIdleBatchBuffer {
		buf = nil
	}
	l.spareBuf = buf[:0]
}

// writeBatch writes the frames in buf, whose first LSN is first, splitting
// them where a Roll asked for a new segment.
func (l *Log) writeBatch(buf []byte, first uint64, cuts []cut) error {
	pos, lsn := 0, first
	for _, c := range cuts {
		if err := l.writeFrames(buf[pos:c.off], &lsn); err != nil {
			return err
		}
		if !l.cur.empty() {
			if err := l.rotate(c.lsn); err != nil {
				return err
			}
		}
		pos = c.off
	}
	return l.writeFrames(buf[pos:], &lsn)
}

// writeFrames writes whole frames, moving to a new segment whenever the
// current one has reached SegmentSize. *lsn is the LSN of chunk's first frame
// and is advanced past what was written.
func (l *Log) writeFrames(chunk []byte, lsn *uint64) error {
	for len(chunk) > 0 {
		room := l.opts.SegmentSize - l.cur.size
		n, k := fitFrames(chunk, room)
		if k == 0 {
			if !l.cur.empty() {
				if err := l.rotate(*lsn); err != nil {
					return err
				}
				continue
			}
			// A frame larger than a whole segment gets one to itself.
			n, k = frameLen(chunk), 1
		}
		if err := writeAll(l.cur.f, chunk[:n], l.cur.size); err != nil {
			return fmt.Errorf("write %s: %w", segmentName(l.cur.first), err)
		}
		l.writes.Add(1)
		if l.opts.OnWrite != nil {
			l.opts.OnWrite(k, n)
		}
		l.cur.size += int64(n)
		l.cur.wrote.Store(l.cur.size)
		l.cur.next += k
		if l.opts.Sync == SyncAlways && l.cur.size >= l.cur.zeroed {
			if err := l.zeroAhead(); err != nil {
				return err
			}
		}
		*lsn += k
		chunk = chunk[n:]
		l.segMu.Lock()
		l.segs[len(l.segs)-1].bytes = l.cur.size
		l.segMu.Unlock()
	}
	return nil
}

// zeroAhead writes zeros over the next zeroStep bytes past the current
// segment's data, within its preallocated space. Under SyncAlways the
// flusher calls it whenever the data has caught up with the zeros.
//
// fallocate reserves space as unwritten extents (ext4, XFS), and the first
// write into one converts it in the file system's journal: an fdatasync
// after such a write commits the journal as well as flushing the data. Into
// space already written it only flushes the data: BenchmarkSegmentFsync
// measured 4 KiB write+fdatasync at about 175 µs against 105 µs. Writing
// the zeros ahead, a step at a time, makes one fsync in many pay for the
// conversion (and for flushing the zeros) instead of every one.
//
// Doing it here rather than zero-filling whole segments ahead of time (in
// the spare pipeline, and in Open) was measured too (BENCHMARKS.md): 64 MiB
// of zeros written and flushed in the background slowed the writers'
// fsyncs down more than the zeros sped them up, for as long as it ran, and
// made Open and Close wait for them.
func (l *Log) zeroAhead() error {
	s := l.cur
	end := min(l.opts.SegmentSize, (s.size+zeroStep+4095)&^4095)
	if end <= s.size {
		return nil // a frame that outgrew the segment
	}
	if err := writeAll(s.f, zeroData[:end-s.size], s.size); err != nil {
		return fmt.Errorf("write %s: %w", segmentName(s.first), err)
	}
	s.zeroed = end
	return nil
}

// zeroStep is how far zeroAhead writes: 256 KiB, about a thousand
// 200-byte sessions' worth of records. A longer step makes the fsync that
// flushes it slower; a shorter one makes more of them.
const zeroStep = 256 << 10

// zeroData is what zeroAhead writes. Nothing writes to it, so it costs no
// allocation and, never touched, no memory.
var zeroData [zeroStep + 4096]byte

// fitFrames returns the length and count of the longest run of whole frames
// at the start of chunk that fits in room bytes. It reads frame headers only.
func fitFrames(chunk []byte, room int64) (n int, k uint64) {
	for n < len(chunk) {
		f := frameLen(chunk[n:])
		if int64(n+f) > room {
			break
		}
		n += f
		k++
	}
	return n, k
}

// frameLen returns the size of the well-formed frame at the start of b.
func frameLen(b []byte) int {
	return HeaderSize + int(binary.LittleEndian.Uint32(b))
}

// rotate finishes the current segment and continues in a new one whose first
// LSN is first. The old segment is trimmed to its data and made durable
// before the new one is named, so replay never finds a segment after one
// whose end was lost.
func (l *Log) rotate(first uint64) error {
	old := l.cur
	name := segmentName(old.first)
	if err := old.f.Truncate(old.size); err != nil {
		return fmt.Errorf("truncate %s: %w", name, err)
	}
	if err := l.syncFile(old); err != nil {
		return err
	}
	s := l.pipe.take()
	if s.err != nil {
		return fmt.Errorf("prepare next segment: %w", s.err)
	}
	path := filepath.Join(l.dir, segmentName(first))
	// The header is durable before the name: a segment named but headless
	// after a power cut would be removed as torn at Open, and with it the
	// record that it was the newest (Options.OnSegment).
	err := writeAll(s.f, appendSegmentHeader(nil, first), 0)
	if err == nil {
		err = s.f.Sync()
	}
	if err == nil {
		err = l.fsys.Rename(s.path, path)
	}
	if err == nil {
		err = l.fsys.SyncDir(l.dir)
	}
	if err != nil {
		_ = s.f.Close() // the log fails with err; the spare is abandoned
		return fmt.Errorf("start segment %s: %w", segmentName(first), err)
	}
	if l.opts.OnSegment != nil {
		l.opts.OnSegment(first)
	}
	l.fileMu.Lock()
	l.cur = &segment{first: first, next: first, size: segmentHeaderSize, zeroed: segmentHeaderSize, f: s.f}
	l.fileMu.Unlock()
	err = old.f.Close()
	l.segMu.Lock()
	l.segs = append(l.segs, segInfo{first: first, bytes: segmentHeaderSize})
	l.segMu.Unlock()
	if err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	return nil
}

// syncFile fsyncs a segment the flusher owns and advances durableLSN to what
// had been written. A failure is returned, not recorded: callers fail the log.
func (l *Log) syncFile(s *segment) error {
	written, end := l.writtenLSN.Load(), s.wrote.Load()
	start := time.Now()
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", segmentName(s.first), err)
	}
	markSynced(s, end)
	if l.opts.OnFsync != nil {
		l.opts.OnFsync(time.Since(start))
	}
	l.fsyncs.Add(1)
	l.advanceDurable(written)
	return nil
}

// syncCurrent fsyncs the current segment from the flusher, failing the log on
// error.
func (l *Log) syncCurrent() error {
	err := l.syncFile(l.cur)
	if err != nil {
		l.fail(err)
	}
	return err
}

// periodicSync is SyncEverySecond's fsync when the flusher does it itself.
func (l *Log) periodicSync() {
	if l.err() == nil && l.durableLSN.Load() < l.writtenLSN.Load() {
		if l.syncCurrent() == nil {
			l.notify()
		}
	}
}

func (l *Log) advanceDurable(lsn uint64) {
	for {
		d := l.durableLSN.Load()
		if d >= lsn || l.durableLSN.CompareAndSwap(d, lsn) {
			return
		}
	}
}

// syncer is SyncEverySecond's fsync goroutine. It runs beside the flusher so
// that a slow fsync does not hold up the writes, and so Wait, of the records
// appended meanwhile.
func (l *Log) syncer() {
	defer close(l.syncerDone)
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.syncerStop:
			return
		case <-t.C:
		}
		if l.err() != nil || l.durableLSN.Load() >= l.writtenLSN.Load() {
			continue
		}
		if l.mapped {
			// The mapped flusher does every fsync: ask it for one.
			l.mu.Lock()
			l.syncReq = max(l.syncReq, l.last)
			l.mu.Unlock()
			l.wake()
			continue
		}
		// fileMu keeps rotation from closing the file under the fsync.
		l.fileMu.Lock()
		err := l.syncFile(l.cur)
		l.fileMu.Unlock()
		if err != nil {
			l.fail(err)
			continue
		}
		l.notify()
	}
}

// yieldBelow is the batch size under which the flusher, outside SyncAlways,
// yields the processor once before it writes.
const yieldBelow = 64 << 10
