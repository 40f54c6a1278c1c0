package snapshot_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/snapshot"
	"github.com/sesscache/sesscache/wal"
	"github.com/sesscache/sesscache/wal/waltest"
)

// faultFS adds the faults waltest.FS lacks: failing directory operations and
// reads.
type faultFS struct {
	base                                     *waltest.FS // nil: a fresh one
	openErr, renameErr, syncDirErr, mkdirErr error
	readErr                                  error
	readSkip                                 int // reads that succeed before readErr
	once                                     sync.Once
	mu                                       sync.Mutex
	reads                                    int
}

func (f *faultFS) fs() *waltest.FS {
	f.once.Do(func() {
		if f.base == nil {
			f.base = &waltest.FS{}
		}
	})
	return f.base
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	if f.openErr != nil {
		return nil, f.openErr
	}
	file, err := f.fs().OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) Remove(name string) error { return f.fs().Remove(name) }

func (f *faultFS) Rename(oldpath, newpath string) error {
	if f.renameErr != nil {
		return f.renameErr
	}
	return f.fs().Rename(oldpath, newpath)
}

func (f *faultFS) ReadDir(name string) ([]fs.DirEntry, error) { return f.fs().ReadDir(name) }

func (f *faultFS) MkdirAll(name string, perm fs.FileMode) error {
	if f.mkdirErr != nil {
		return f.mkdirErr
	}
	return f.fs().MkdirAll(name, perm)
}

func (f *faultFS) SyncDir(name string) error {
	if f.syncDirErr != nil {
		return f.syncDirErr
	}
	return f.fs().SyncDir(name)
}

type faultFile struct {
	wal.File
	fs *faultFS
}

func (f *faultFile) ReadAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	f.fs.reads++
	fail := f.fs.readErr != nil && f.fs.reads > f.fs.readSkip
	f.fs.mu.Unlock()
	if fail {
		return 0, f.fs.readErr
	}
	return f.File.ReadAt(b, off)
}

// writeWithFS writes a 2000-record snapshot at LSN 7 into dir through fsys.
func writeWithFS(dir string, fsys wal.FS) (snapshot.Info, error) {
	opts := testOptions(2, 16<<10)
	opts.FS = fsys
	return snapshot.Write(dir, 7, created, 4, fillFrom(split(makeRecords(2000, 1), 4)), opts)
}

func TestWriteFaultsLeaveNothingBehind(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	// Count the writes of a clean run to aim at the footer.
	clean := &waltest.FS{NoSync: true}
	_, err := writeWithFS(t.TempDir(), clean)
	require.NoError(t, err)
	writes := clean.Writes()
	require.Greater(t, writes, 5)

	errIO := syscall.EIO
	cases := []struct {
		name  string
		fsys  func() wal.FS
		wants error
	}{
		{"header write", injected(waltest.Fault{Op: waltest.FaultWrite, Err: errIO}), errIO},
		{"first chunk write", injected(waltest.Fault{Op: waltest.FaultWrite, Skip: 1, Err: errIO}), errIO},
		{"middle chunk write", injected(waltest.Fault{Op: waltest.FaultWrite, Skip: writes / 2, Err: syscall.ENOSPC}), syscall.ENOSPC},
		{"footer write", injected(waltest.Fault{Op: waltest.FaultWrite, Skip: writes - 1, Err: errIO}), errIO},
		{"short write with an error", injected(waltest.Fault{Op: waltest.FaultWrite, Skip: 2, Err: syscall.ENOSPC, Short: true}), syscall.ENOSPC},
		{"silently short write", injected(waltest.Fault{Op: waltest.FaultWrite, Skip: 2, Short: true}), io.ErrShortWrite},
		{"fsync", injected(waltest.Fault{Op: waltest.FaultSync, Err: errIO}), errIO},
		{"create", func() wal.FS { return &faultFS{openErr: syscall.EACCES} }, syscall.EACCES},
		{"mkdir", func() wal.FS { return &faultFS{mkdirErr: syscall.EROFS} }, syscall.EROFS},
		{"rename", func() wal.FS { return &faultFS{renameErr: syscall.EXDEV} }, syscall.EXDEV},
		{"directory fsync", func() wal.FS { return &faultFS{syncDirErr: errIO} }, errIO},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			// An older snapshot, and one at the same LSN, must survive.
			writeRecords(t, dir, 3, makeRecords(5, 2), 1, testOptions(1, 0))
			writeRecords(t, dir, 7, makeRecords(6, 2), 1, testOptions(1, 0))
			before, err := os.ReadFile(snapPath(dir, 7))
			require.NoError(t, err)

			info, err := writeWithFS(dir, c.fsys())
			require.ErrorIs(t, err, c.wants)
			assert.Zero(t, info)
			assert.ElementsMatch(t, []string{snapshot.FileName(3), snapshot.FileName(7)}, dirNames(t, dir))
			after, err := os.ReadFile(snapPath(dir, 7))
			require.NoError(t, err)
			if c.name != "directory fsync" {
				assert.Equal(t, before, after, "the snapshot at the same LSN is untouched")
			}
			_, err = snapshot.Load(snapPath(dir, 7), testOptions(1, 0), nil)
			assert.NoError(t, err, "the snapshot at the same LSN is valid")

			// With no snapshot at the same LSN, none is left either.
			require.NoError(t, os.Remove(snapPath(dir, 7)))
			_, err = writeWithFS(dir, c.fsys())
			require.ErrorIs(t, err, c.wants)
			assert.Equal(t, []string{snapshot.FileName(3)}, dirNames(t, dir))
		})
	}
}

func injected(ft waltest.Fault) func() wal.FS {
	return func() wal.FS {
		fsys := &waltest.FS{NoSync: true}
		fsys.Inject(ft)
		return fsys
	}
}

// TestWriteIsDurableBeforeItReturns: a crash right after Write keeps the
// snapshot whole.
func TestWriteIsDurableBeforeItReturns(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	fsys := &waltest.FS{}
	recs := makeRecords(3000, 3)
	opts := testOptions(2, 16<<10)
	opts.FS = fsys
	info, err := snapshot.Write(dir, 11, created, 3, fillFrom(split(recs, 3)), opts)
	require.NoError(t, err)
	require.NoError(t, fsys.DropUnsynced())
	_, got := loadAll(t, info.Path, testOptions(1, 0))
	assert.Equal(t, withLSN(recs, 11), got)
}

func TestFillAndAddErrors(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	errFill := errors.New("fill failed")
	put := putRecord(1, []byte("x"))
	cases := []struct {
		name  string
		fill  func(int, func(*wal.Record) error) error
		wants error // nil: any error
	}{
		{"fill error in the first chunk", func(i int, add func(*wal.Record) error) error {
			if i == 0 {
				return errFill
			}
			return add(&put)
		}, errFill},
		{"fill error in the last chunk", func(i int, add func(*wal.Record) error) error {
			if err := add(&put); err != nil {
				return err
			}
			if i == 19 {
				return errFill
			}
			return nil
		}, errFill},
		{"delete record", func(i int, add func(*wal.Record) error) error {
			r := put
			if i == 3 {
				r.Op = wal.OpDelete
			}
			return add(&r)
		}, wal.ErrInvalidRecord},
		{"batch record", func(i int, add func(*wal.Record) error) error {
			return add(&wal.Record{Op: wal.OpBatch, Ops: []wal.Record{put}})
		}, wal.ErrInvalidRecord},
		{"nil record", func(i int, add func(*wal.Record) error) error {
			return add(nil)
		}, wal.ErrInvalidRecord},
		{"add error ignored by fill", func(i int, add func(*wal.Record) error) error {
			if i == 5 {
				add(&wal.Record{Op: wal.OpTouch})
			}
			return nil
		}, wal.ErrInvalidRecord},
	}
	for _, c := range cases {
		for _, workers := range []int{1, 3} {
			t.Run(c.name, func(t *testing.T) {
				dir := t.TempDir()
				info, err := snapshot.Write(dir, 5, created, 20, c.fill, testOptions(workers, 64))
				require.ErrorIs(t, err, c.wants)
				assert.Zero(t, info)
				assert.Empty(t, dirNames(t, dir))
			})
		}
	}
}

func TestTooLargeRecord(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	big := make([]byte, wal.MaxFrameSize+1)
	for _, n := range []int{wal.MaxFrameSize + 1, wal.MaxFrameSize - 8} {
		dir := t.TempDir()
		r := putRecord(1, big[:n])
		_, err := snapshot.Write(dir, 5, created, 1, func(_ int, add func(*wal.Record) error) error {
			return add(&r)
		}, testOptions(1, 0))
		require.ErrorIs(t, err, wal.ErrTooLarge, "%d bytes of data", n)
		assert.Empty(t, dirNames(t, dir))
	}
}

func TestAddAfterFillReturns(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	var saved func(*wal.Record) error
	put := putRecord(1, nil)
	info, err := snapshot.Write(t.TempDir(), 5, created, 1, func(_ int, add func(*wal.Record) error) error {
		saved = add
		return add(&put)
	}, testOptions(1, 0))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.Sessions)
	assert.Error(t, saved(&put))
}

// TestFailureReleasesBlockedFill: a fill blocked in add because it ran too
// far ahead of the file is released when another fill fails.
func TestFailureReleasesBlockedFill(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	opts := testOptions(2, 64) // every record is a chunk of its own
	snapshot.SetLookahead(&opts, 4*64)
	blocking := snapshot.SlotCapacity(opts) + 2 // the first add that finds the queue full
	errFill := errors.New("fill 0 failed")
	ahead := make(chan int, 100)
	fill := func(i int, add func(*wal.Record) error) error {
		if i == 0 {
			for n := range ahead {
				if n == blocking {
					return errFill
				}
			}
		}
		for n := 1; ; n++ {
			if i == 1 {
				ahead <- n
			}
			r := putRecord(n, make([]byte, 100))
			if err := add(&r); err != nil {
				return err
			}
		}
	}
	dir := t.TempDir()
	_, err := snapshot.Write(dir, 5, created, 2, fill, opts)
	require.ErrorIs(t, err, errFill)
	assert.Empty(t, dirNames(t, dir))
}

// TestLookaheadStreamsInOrder: fills that each produce far more than the
// look-ahead still complete, in order, whatever the worker count.
func TestLookaheadStreamsInOrder(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	recs := makeRecords(6000, 4)
	for _, workers := range []int{1, 2, 7} {
		opts := testOptions(workers, 512)
		snapshot.SetLookahead(&opts, 2048)
		dir := t.TempDir()
		w := writeRecords(t, dir, 5, recs, 9, opts)
		_, got := loadAll(t, w.Path, testOptions(1, 0))
		assert.Equal(t, withLSN(recs, 5), got, "workers=%d", workers)
	}
}

func TestWriteRejectsBadArguments(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	noop := func(int, func(*wal.Record) error) error { return nil }
	_, err := snapshot.Write(dir, 0, created, 1, noop, testOptions(1, 0))
	assert.Error(t, err, "LSN 0")
	_, err = snapshot.Write(dir, 1, created, -1, noop, testOptions(1, 0))
	assert.Error(t, err, "negative chunks")
	_, err = snapshot.Write(dir, 1, created, 1, nil, testOptions(1, 0))
	assert.Error(t, err, "nil fill")
	assert.Empty(t, dirNames(t, dir))
}

// TestBeforePublishRunsBeforeTheName: the hook sees the file complete but
// not yet under its final name, and its error leaves no snapshot behind.
func TestBeforePublishRunsBeforeTheName(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	recs := makeRecords(10, 1)
	fill := func(_ int, add func(*wal.Record) error) error {
		for i := range recs {
			if err := add(&recs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	calls := 0
	opts := snapshot.Options{BeforePublish: func() error {
		calls++
		snaps, err := snapshot.List(dir, snapshot.Options{})
		require.NoError(t, err)
		assert.Empty(t, snaps, "the name appears only after the hook")
		return errors.New("log not durable")
	}}
	_, err := snapshot.Write(dir, 5, time.Time{}, 1, fill, opts)
	require.ErrorContains(t, err, "log not durable")
	assert.Equal(t, 1, calls)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing left behind")

	opts.BeforePublish = func() error { calls++; return nil }
	info, err := snapshot.Write(dir, 5, time.Time{}, 1, fill, opts)
	require.NoError(t, err)
	assert.Equal(t, uint64(10), info.Sessions)
	assert.Equal(t, 2, calls)
}
