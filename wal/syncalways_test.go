package wal_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal"
	"github.com/sesscache/sesscache/wal/waltest"
)

// What SyncAlways does beyond the other policies: group commit that waits
// for the writers an fsync woke (gather), and zeros written ahead of the
// data (zeroAhead).
//
// The gather tests hold the first fsync so that one writer, A, is alone in
// it while seven others queue behind it, then look at how the fsyncs were
// shared.

// heldFirstFsync is a SyncAlways log whose first segment fsync after arm
// blocks until release is closed, with A's record alone in it and seven
// more writers queued behind it.
type heldFirstFsync struct {
	l       *wal.Log
	release chan struct{}
	others  sync.WaitGroup
	errs    [7]error
}

// holdFirstFsync opens the log, starts A (a, given A's first LSN, returns
// when A is done) and the seven others, and returns with all eight blocked
// in Wait and the fsync of A's record held.
func holdFirstFsync(t *testing.T, a func(l *wal.Log, lsn uint64)) *heldFirstFsync {
	t.Helper()
	h := &heldFirstFsync{release: make(chan struct{})}
	fsys := &waltest.FS{NoSync: true}
	var armed atomic.Bool
	entered := make(chan struct{})
	fsys.BeforeSync = func(path string) error {
		if filepath.Ext(path) == ".wal" && armed.CompareAndSwap(true, false) {
			close(entered)
			<-h.release
		}
		return nil
	}
	h.l, _, _ = openLog(t, t.TempDir(), wal.Options{Sync: wal.SyncAlways, FS: fsys}, 0)
	armed.Store(true)
	lsn := appendOnly(t, h.l, 0)
	go a(h.l, lsn)
	<-entered
	for w := range h.errs {
		lsn := appendOnly(t, h.l, w+1)
		h.others.Add(1)
		go func() {
			defer h.others.Done()
			h.errs[w] = h.l.Wait(lsn)
		}()
	}
	waitQueued(h.l, 8)
	return h
}

// appendOnly appends smallRecord(i) without waiting for it.
func appendOnly(t *testing.T, l *wal.Log, i int) uint64 {
	t.Helper()
	var p wal.Pending
	r := smallRecord(i)
	require.NoError(t, p.Encode(&r))
	lsn, err := l.Append(&p)
	require.NoError(t, err)
	return lsn
}

// waitQueued returns once n goroutines are blocked in Wait or Sync. It
// yields rather than sleeps: it waits for a state, not for time.
func waitQueued(l *wal.Log, n int) {
	for wal.QueuedWaiters(l) < n {
		runtime.Gosched()
	}
}

func (h *heldFirstFsync) othersSucceeded(t *testing.T) {
	t.Helper()
	h.others.Wait()
	for w, err := range h.errs {
		require.NoError(t, err, "writer %d", w+1)
	}
}

// TestGatherHoldsTheBatchForWokenWriters: the seven queued records are not
// written until A, woken by the first fsync, has appended again, so that
// one fsync covers all eight. Taking them at once, as the flusher used to,
// would take a third fsync for A's second record.
func TestGatherHoldsTheBatchForWokenWriters(t *testing.T) {
	wal.VerifyNoLeaks(t)
	wal.SetGatherLimit(t, time.Hour) // nothing but A's append may end it
	aDone := make(chan error, 1)
	h := holdFirstFsync(t, func(l *wal.Log, lsn uint64) {
		err := l.Wait(lsn)
		if err == nil {
			var p wal.Pending
			r := smallRecord(100)
			err = p.Encode(&r)
			if err == nil {
				lsn, err = l.Append(&p)
			}
			if err == nil {
				err = l.Wait(lsn)
			}
		}
		aDone <- err
	})
	close(h.release)
	require.NoError(t, <-aDone)
	h.othersSucceeded(t)
	st := h.l.Stats()
	assert.EqualValues(t, 9, st.Records)
	assert.EqualValues(t, 2, st.Fsyncs, "A's second record and the seven share the second fsync")
	assert.EqualValues(t, 8, wal.GatherTarget(h.l), "the eight woken next are awaited next")
	require.NoError(t, h.l.Close())
}

// TestGatherGivesUpOnWritersWhoLeave: A does not append again, so the
// seven are written once the wait times out; and since not even half of
// the woken writers came back, the next batch is not held at all.
func TestGatherGivesUpOnWritersWhoLeave(t *testing.T) {
	wal.VerifyNoLeaks(t)
	wal.SetGatherLimit(t, time.Millisecond)
	aDone := make(chan error, 1)
	h := holdFirstFsync(t, func(l *wal.Log, lsn uint64) { aDone <- l.Wait(lsn) })
	close(h.release)
	require.NoError(t, <-aDone)
	h.othersSucceeded(t)
	st := h.l.Stats()
	assert.EqualValues(t, 8, st.Records)
	assert.EqualValues(t, 2, st.Fsyncs)
	assert.Zero(t, wal.GatherTarget(h.l), "after a gather nobody came back to, the next one is skipped")
	require.NoError(t, h.l.Close())
}

// TestCloseAndSyncEndAGather: a gather that would wait an hour for A ends
// at once when the log is closed or synced, and the seven are made durable.
func TestCloseAndSyncEndAGather(t *testing.T) {
	for _, end := range []string{"Close", "Sync"} {
		t.Run(end, func(t *testing.T) {
			wal.VerifyNoLeaks(t)
			wal.SetGatherLimit(t, time.Hour)
			aDone := make(chan error, 1)
			h := holdFirstFsync(t, func(l *wal.Log, lsn uint64) { aDone <- l.Wait(lsn) })
			close(h.release)
			require.NoError(t, <-aDone)
			if end == "Close" {
				require.NoError(t, h.l.Close())
			} else {
				require.NoError(t, h.l.Sync())
			}
			h.othersSucceeded(t)
			assert.EqualValues(t, 8, h.l.Stats().DurableLSN)
			require.NoError(t, h.l.Close())
		})
	}
}

// TestLoneWriterIsNeverHeld: one writer's own append completes the gather
// its previous fsync set up, so with an hour-long limit it still runs at
// one fsync per record.
func TestLoneWriterIsNeverHeld(t *testing.T) {
	wal.VerifyNoLeaks(t)
	wal.SetGatherLimit(t, time.Hour)
	l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: wal.SyncAlways, FS: fastFS()}, 0)
	for i := 0; i < 20; i++ {
		appendWait(t, l, smallRecord(i))
	}
	assert.EqualValues(t, 20, l.Stats().Fsyncs)
	require.NoError(t, l.Close())
}

// TestSyncAlwaysWritesZerosAhead watches the writes: under SyncAlways,
// whenever the data reaches the end of the space written so far, the next
// write puts zeros over the following stretch of preallocated space, right
// after the data and never past SegmentSize (the file does not grow); under
// the other policies only frames and headers are written.
func TestSyncAlwaysWritesZerosAhead(t *testing.T) {
	const size = 1 << 20
	for _, policy := range policies {
		t.Run(policy.String(), func(t *testing.T) {
			wal.VerifyNoLeaks(t)
			spy := &writeSpy{name: wal.SegmentName(1)}
			dir := t.TempDir()
			fsys := &waltest.FS{Base: spy, NoSync: true}
			l, _, _ := openLog(t, dir, wal.Options{Sync: policy, SegmentSize: size, FS: fsys}, 0)
			put := wal.Record{Op: wal.OpPut, Data: make([]byte, 4000)}
			for i := 0; i < size/2/len(put.Data); i++ {
				appendWait(t, l, put)
			}
			require.NoError(t, l.Close())
			fi, err := os.Stat(filepath.Join(dir, wal.SegmentName(1)))
			require.NoError(t, err)
			assert.EqualValues(t, size, fi.Size(), "the preallocated size, not more")

			spy.mu.Lock()
			defer spy.mu.Unlock()
			dataEnd, zeros := int64(wal.SegmentHeaderSize), 0
			for _, w := range spy.writes {
				switch {
				case w.off == 0: // the header
				case w.off == 28 && w.n == 4: // its synced-through offset, after an fsync
				case w.zeros:
					zeros++
					assert.Equal(t, dataEnd, w.off, "zeros right after the data")
					assert.LessOrEqual(t, w.off+w.n, int64(size))
				default:
					require.Equal(t, dataEnd, w.off, "frames follow each other")
					dataEnd += w.n
				}
			}
			if policy == wal.SyncAlways {
				assert.GreaterOrEqual(t, zeros, 2, "half a MiB of data: more than one step of zeros")
			} else {
				assert.Zero(t, zeros)
			}
		})
	}
}

// writeSpy is the operating system's file system, recording the writes to
// the file called name: where, how long, and whether they were all zeros.
type writeSpy struct {
	wal.OSFS
	name   string
	mu     sync.Mutex
	writes []spiedWrite
}

type spiedWrite struct {
	off, n int64
	zeros  bool
}

func (s *writeSpy) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	f, err := s.OSFS.OpenFile(name, flag, perm)
	if err != nil || filepath.Base(name) != s.name {
		return f, err
	}
	return spiedFile{File: f, spy: s}, nil
}

type spiedFile struct {
	wal.File
	spy *writeSpy
}

func (f spiedFile) WriteAt(b []byte, off int64) (int, error) {
	f.spy.mu.Lock()
	f.spy.writes = append(f.spy.writes, spiedWrite{off, int64(len(b)), !slices.ContainsFunc(b, func(c byte) bool { return c != 0 })})
	f.spy.mu.Unlock()
	return f.File.WriteAt(b, off)
}
