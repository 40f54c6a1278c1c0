package wal_test

import (
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal"
	"github.com/sesscache/sesscache/wal/waltest"
)

// failedLogCheck asserts the sticky failure: err and every later call carry
// ErrFailed and cause, and Close reports it.
func failedLogCheck(t *testing.T, l *wal.Log, err, cause error) {
	t.Helper()
	assert.ErrorIs(t, err, wal.ErrFailed)
	assert.ErrorIs(t, err, cause)
	assert.ErrorIs(t, l.Err(), cause)
	assert.True(t, l.Stats().Failed)
	var p wal.Pending
	r := smallRecord(1)
	require.NoError(t, p.Encode(&r))
	_, aerr := l.Append(&p)
	assert.ErrorIs(t, aerr, wal.ErrFailed)
	assert.ErrorIs(t, aerr, cause)
	assert.ErrorIs(t, l.Sync(), wal.ErrFailed)
	_, rerr := l.Roll()
	assert.ErrorIs(t, rerr, wal.ErrFailed)
	assert.ErrorIs(t, l.Close(), wal.ErrFailed, "Close reports the failure")
	assert.ErrorIs(t, l.Close(), wal.ErrFailed, "and keeps reporting it")
}

func TestWriteFaultsFailTheLog(t *testing.T) {
	cases := []struct {
		name  string
		fault waltest.Fault
		cause error
	}{
		{"ENOSPC", waltest.Fault{Op: waltest.FaultWrite, Pattern: "*.wal", Err: syscall.ENOSPC}, syscall.ENOSPC},
		{"short write with error", waltest.Fault{Op: waltest.FaultWrite, Pattern: "*.wal", Short: true, Err: syscall.ENOSPC}, syscall.ENOSPC},
		{"silent short write", waltest.Fault{Op: waltest.FaultWrite, Pattern: "*.wal", Short: true}, io.ErrShortWrite},
		{"fsync EIO", waltest.Fault{Op: waltest.FaultSync, Pattern: "*.wal", Err: syscall.EIO}, syscall.EIO},
	}
	for _, tc := range cases {
		for _, crash := range []bool{false, true} {
			name := tc.name
			if crash {
				name += " then crash"
			}
			t.Run(name, func(t *testing.T) {
				wal.VerifyNoLeaks(t)
				dir := t.TempDir()
				fsys := &waltest.FS{NoSync: true}
				l, _, _ := openLog(t, dir, wal.Options{Sync: wal.SyncAlways, FS: fsys}, 0)
				var acked []wal.Record
				for i := 0; i < 5; i++ {
					acked = append(acked, appendWait(t, l, smallRecord(i)))
				}
				fsys.Inject(tc.fault)
				var p wal.Pending
				r := wal.Record{Op: wal.OpPut, Data: make([]byte, 100)}
				require.NoError(t, p.Encode(&r))
				lsn, err := l.Append(&p)
				require.NoError(t, err)
				err = l.Wait(lsn)
				failedLogCheck(t, l, err, tc.cause)
				assert.EqualValues(t, 5, l.Stats().DurableLSN)

				if crash {
					require.NoError(t, fsys.DropUnsynced())
				}
				info, got, err := replayAll(t, dir, wal.Options{FS: fastFS()}, 0)
				require.NoError(t, err)
				if crash || tc.fault.Op == waltest.FaultWrite {
					assert.Equal(t, acked, got, "exactly the durable prefix")
				} else {
					// The failed fsync's data may or may not survive.
					require.GreaterOrEqual(t, len(got), len(acked))
					assert.Equal(t, acked, got[:len(acked)])
				}
				if tc.fault.Short && !crash {
					assert.Positive(t, info.TornBytes, "the half-written frame is repaired as torn")
				}
			})
		}
	}
}

// TestFailureWakesEveryWaiter parks a batch in a write, lets more writers
// queue behind it, then fails the write: every waiter must get the error.
func TestFailureWakesEveryWaiter(t *testing.T) {
	for _, policy := range []wal.SyncPolicy{wal.SyncAlways, wal.SyncEverySecond} {
		t.Run(policy.String(), func(t *testing.T) {
			wal.VerifyNoLeaks(t)
			fsys := &waltest.FS{NoSync: true}
			var armed atomic.Bool
			entered := make(chan struct{})
			release := make(chan struct{})
			fsys.BeforeWrite = func(path string, off int64, n int) error {
				if filepath.Ext(path) == ".wal" && armed.CompareAndSwap(true, false) {
					close(entered)
					<-release
					return syscall.ENOSPC
				}
				return nil
			}
			l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: policy, FS: fsys}, 0)
			armed.Store(true)

			const writers = 8
			var appended, done sync.WaitGroup
			errs := make([]error, writers)
			for w := 0; w < writers; w++ {
				appended.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					var p wal.Pending
					r := smallRecord(w)
					if err := p.Encode(&r); err != nil {
						errs[w] = err
						appended.Done()
						return
					}
					lsn, err := l.Append(&p)
					appended.Done()
					if err == nil {
						err = l.Wait(lsn)
					}
					errs[w] = err
				}()
			}
			appended.Wait()
			<-entered
			close(release)
			done.Wait()
			for w, err := range errs {
				assert.ErrorIs(t, err, wal.ErrFailed, "writer %d", w)
				assert.ErrorIs(t, err, syscall.ENOSPC, "writer %d", w)
			}
			assert.ErrorIs(t, l.Close(), syscall.ENOSPC)
		})
	}
}

// TestEverySecondFsyncFailure: a failed background fsync fails the log,
// though records already written keep their successful Wait.
func TestEverySecondFsyncFailure(t *testing.T) {
	wal.VerifyNoLeaks(t)
	fsys := &waltest.FS{NoSync: true}
	var armed atomic.Bool
	fsys.BeforeSync = func(path string) error {
		if filepath.Ext(path) == ".wal" && armed.Load() {
			return syscall.EIO
		}
		return nil
	}
	l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: wal.SyncEverySecond, SyncInterval: time.Millisecond, FS: fsys}, 0)
	armed.Store(true)
	r := appendWait(t, l, smallRecord(1))
	// Whether the syncer or this Sync meets the fault first, the log fails.
	err := l.Sync()
	assert.NoError(t, l.Wait(r.LSN), "the record was written, as SyncEverySecond promises")
	failedLogCheck(t, l, err, syscall.EIO)
}

// TestGroupCommitSharesFsyncs holds the first fsync until every writer has
// appended, so the rest must share the next one: records per fsync > 1,
// asserted from Stats and independent of timing.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	wal.VerifyNoLeaks(t)
	fsys := &waltest.FS{NoSync: true}
	var armed atomic.Bool
	entered := make(chan struct{})
	release := make(chan struct{})
	fsys.BeforeSync = func(path string) error {
		if filepath.Ext(path) == ".wal" && armed.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
		return nil
	}
	l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: wal.SyncAlways, FS: fsys}, 0)
	armed.Store(true)

	const writers = 16
	var appended, done sync.WaitGroup
	errs := make([]error, writers)
	for w := 0; w < writers; w++ {
		appended.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			var p wal.Pending
			r := smallRecord(w)
			errs[w] = p.Encode(&r)
			lsn, err := l.Append(&p)
			appended.Done()
			if err == nil {
				err = l.Wait(lsn)
			}
			if errs[w] == nil {
				errs[w] = err
			}
		}()
	}
	appended.Wait()
	<-entered
	close(release)
	done.Wait()
	for w, err := range errs {
		require.NoError(t, err, "writer %d", w)
	}
	st := l.Stats()
	assert.EqualValues(t, writers, st.Records)
	assert.LessOrEqual(t, st.Fsyncs, uint64(2), "one fsync held, one for everyone who queued behind it")
	assert.Greater(t, st.RecordsPerFsync(), 1.0)
	require.NoError(t, l.Close())
}

// TestGroupCommitUnderLoad is the same property on the real file system with
// free-running writers.
func TestGroupCommitUnderLoad(t *testing.T) {
	wal.VerifyNoLeaks(t)
	l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: wal.SyncAlways}, 0)
	const writers, each = 32, 20
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p wal.Pending
			for i := 0; i < each; i++ {
				r := smallRecord(w*each + i)
				if p.Encode(&r) != nil {
					failures.Add(1)
					return
				}
				lsn, err := l.Append(&p)
				if err != nil || l.Wait(lsn) != nil {
					failures.Add(1)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, failures.Load())
	st := l.Stats()
	assert.EqualValues(t, writers*each, st.Records)
	assert.Less(t, st.Fsyncs, st.Records)
	t.Logf("%d records, %d fsyncs, %.1f records/fsync", st.Records, st.Fsyncs, st.RecordsPerFsync())
	require.NoError(t, l.Close())
}

func TestRotationFailureFailsTheLog(t *testing.T) {
	wal.VerifyNoLeaks(t)
	fsys := &waltest.FS{NoSync: true}
	l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: wal.SyncAlways, SegmentSize: 200, FS: fsys}, 0)
	appendWait(t, l, smallRecord(1))
	// The next write to a spare is the header written when rotating into it.
	fsys.Inject(waltest.Fault{Op: waltest.FaultWrite, Pattern: "spare-*", Err: syscall.ENOSPC})
	var err error
	for i := 0; err == nil && i < 100; i++ {
		var p wal.Pending
		r := smallRecord(i)
		require.NoError(t, p.Encode(&r))
		var lsn uint64
		if lsn, err = l.Append(&p); err == nil {
			err = l.Wait(lsn)
		}
	}
	failedLogCheck(t, l, err, syscall.ENOSPC)
}
