package wal_test

import (
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal"
	"github.com/sesscache/sesscache/wal/waltest"
)

func TestWaitEdgeCases(t *testing.T) {
	wal.VerifyNoLeaks(t)
	for _, policy := range policies {
		l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: policy}, 0)
		assert.NoError(t, l.Wait(0), policy)
		assert.Error(t, l.Wait(1), "%v: LSN 1 was never assigned", policy)
		var p wal.Pending
		_, err := l.Append(&p)
		assert.ErrorIs(t, err, wal.ErrInvalidRecord, "%v: an empty Pending", policy)
		require.NoError(t, l.Close())
	}
}

// TestSyncIsDurableUnderEveryPolicy uses a sync hook to see the fsync
// instead of timing it.
func TestSyncIsDurableUnderEveryPolicy(t *testing.T) {
	wal.VerifyNoLeaks(t)
	for _, policy := range policies {
		opts := wal.Options{Sync: policy, SyncInterval: time.Hour, FS: fastFS()}
		l, _, _ := openLog(t, t.TempDir(), opts, 0)
		r := appendWait(t, l, smallRecord(1))
		require.NoError(t, l.Sync(), policy)
		st := l.Stats()
		assert.GreaterOrEqual(t, st.DurableLSN, r.LSN, policy)
		assert.GreaterOrEqual(t, st.WrittenLSN, r.LSN, policy)
		require.NoError(t, l.Close())
	}
}

func TestEverySecondFsyncsInTheBackground(t *testing.T) {
	wal.VerifyNoLeaks(t)
	for _, inFlusher := range []bool{false, true} {
		fsys := fastFS()
		synced := make(chan string, 100)
		fsys.BeforeSync = func(path string) error {
			if filepath.Ext(path) == ".wal" {
				select {
				case synced <- path:
				default:
				}
			}
			return nil
		}
		opts := wal.Options{Sync: wal.SyncEverySecond, SyncInterval: time.Millisecond, FS: fsys}
		if inFlusher {
			wal.SetEverysecInFlusher(&opts)
		}
		l, _, _ := openLog(t, t.TempDir(), opts, 0)
		for len(synced) > 0 {
			<-synced // the segment's creation
		}
		r := appendWait(t, l, smallRecord(1))
		select {
		case <-synced:
		case <-time.After(10 * time.Second):
			t.Fatalf("inFlusher %v: no periodic fsync", inFlusher)
		}
		require.NoError(t, l.Close())
		assert.GreaterOrEqual(t, l.Stats().DurableLSN, r.LSN)
		assert.GreaterOrEqual(t, l.Stats().Fsyncs, uint64(1))
	}
}

// TestConcurrentWritersEveryPolicy checks that concurrent appends all land,
// each with the content its writer gave it.
func TestConcurrentWritersEveryPolicy(t *testing.T) {
	for _, policy := range policies {
		t.Run(policy.String(), func(t *testing.T) {
			wal.VerifyNoLeaks(t)
			dir := t.TempDir()
			opts := wal.Options{Sync: policy, SegmentSize: 4 << 10, FS: fastFS()}
			l, _, _ := openLog(t, dir, opts, 0)
			const writers, each = 8, 100
			byLSN := make([]wal.Record, writers*each+1)
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var p wal.Pending
					for i, r := range randomRecords(uint64(w), each) {
						if r.Op != wal.OpBatch {
							r.Key.Hint = uint16(w*each + i)
						}
						if err := p.Encode(&r); err != nil {
							errs <- err
							return
						}
						lsn, err := l.Append(&p)
						if err == nil {
							err = l.Wait(lsn)
						}
						if err != nil {
							errs <- err
							return
						}
						r.LSN = lsn
						byLSN[lsn] = r
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.NoError(t, l.Close())
			_, got, err := replayAll(t, dir, opts, 0)
			require.NoError(t, err)
			assert.Equal(t, byLSN[1:], got)
		})
	}
}

// TestCloseFlushesPendingAppends appends without waiting and closes: every
// record must be on disk afterwards, whatever the policy.
func TestCloseFlushesPendingAppends(t *testing.T) {
	wal.VerifyNoLeaks(t)
	for _, policy := range policies {
		dir := t.TempDir()
		fsys := &waltest.FS{}
		opts := wal.Options{Sync: policy, SyncInterval: time.Hour, FS: fsys}
		l, _, _ := openLog(t, dir, opts, 0)
		var p wal.Pending
		var want []wal.Record
		for i := 0; i < 50; i++ {
			r := smallRecord(i)
			require.NoError(t, p.Encode(&r))
			lsn, err := l.Append(&p)
			require.NoError(t, err)
			r.LSN = lsn
			want = append(want, r)
		}
		require.NoError(t, l.Close())
		require.NoError(t, fsys.DropUnsynced(), "Close fsynced everything")
		_, got, err := replayAll(t, dir, wal.Options{}, 0)
		require.NoError(t, err, policy)
		assert.Equal(t, want, got, policy)
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	wal.VerifyNoLeaks(t)
	// The real file system: the fault injector allocates per write.
	l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: wal.SyncEverySecond}, 0)
	r := smallRecord(0)
	var p wal.Pending
	require.NoError(t, p.Encode(&r))
	appendAndWait := func() {
		lsn, err := l.Append(&p)
		if err == nil {
			err = l.Wait(lsn)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		appendAndWait() // let the batch buffers reach their size
	}
	assert.Zero(t, testing.AllocsPerRun(1000, appendAndWait))
	allocs := testing.AllocsPerRun(1000, func() {
		if err := p.Encode(&r); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "Pending.Encode reuses its buffer")
	require.NoError(t, l.Close())
}

// TestSyncNoBackpressure stalls the disk and lets appends run more than the
// backlog limit ahead: Wait must then wait for the write instead of letting
// memory grow. A Wait that returned early would see its record unwritten.
func TestSyncNoBackpressure(t *testing.T) {
	wal.VerifyNoLeaks(t)
	fsys := &waltest.FS{NoSync: true}
	var armed atomic.Bool
	release := make(chan struct{})
	fsys.BeforeWrite = func(path string, off int64, n int) error {
		if filepath.Ext(path) == ".wal" && armed.CompareAndSwap(true, false) {
			<-release
		}
		return nil
	}
	l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: wal.SyncNo, SegmentSize: 64 << 20, FS: fsys}, 0)
	armed.Store(true)
	r := wal.Record{Op: wal.OpPut, Data: make([]byte, 1<<20)}
	var p wal.Pending
	require.NoError(t, p.Encode(&r))
	var last uint64
	for i := 0; i < 10; i++ {
		lsn, err := l.Append(&p)
		require.NoError(t, err)
		last = lsn
	}
	written := make(chan uint64)
	go func() {
		err := l.Wait(last)
		assert.NoError(t, err)
		written <- l.Stats().WrittenLSN
	}()
	// Only once Wait is blocked: released first, the stalled write could
	// bring the backlog under the limit, and Wait would rightly not wait.
	waitQueued(l, 1)
	close(release)
	assert.GreaterOrEqual(t, <-written, last, "Wait returned before its record was written")
	require.NoError(t, l.Close())
}

// TestRotationFsyncWakesDurableWaiters: the fsync that ends a segment at a
// rotation can be the one that covers a waiter's record. It must wake the
// waiter: no later fsync may come (here SyncEverySecond's is an hour away),
// and a snapshot waits for exactly this (Sync after Roll). It hung before
// the flusher notified after rotations.
func TestRotationFsyncWakesDurableWaiters(t *testing.T) {
	wal.VerifyNoLeaks(t)
	var armed atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	fsys := &waltest.FS{NoSync: true, BeforeSync: func(path string) error {
		if filepath.Ext(path) == ".wal" && armed.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
		return nil
	}}
	l, _, _ := openLog(t, t.TempDir(), wal.Options{Sync: wal.SyncEverySecond, SyncInterval: time.Hour, FS: fsys}, 0)
	for i := range 5 {
		appendWait(t, l, smallRecord(i))
	}
	armed.Store(true)
	_, err := l.Roll() // the flusher rotates, and blocks in the old segment's fsync
	require.NoError(t, err)
	<-entered
	done := make(chan error, 1)
	go func() { done <- l.WaitDurable(5) }()
	for l.DurableWaiters() == 0 {
		runtime.Gosched()
	}
	close(release)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("WaitDurable(5) never returned although the rotation's fsync covered LSN 5")
	}
	require.NoError(t, l.Close())
}
