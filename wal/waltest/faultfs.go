// Package waltest provides a fault-injecting wal.FS for tests of the wal
// package and of its users (the engine, snapshots): failed and short writes,
// failed fsyncs, hooks that can block I/O at a chosen point, and a simulated
// crash that drops every write not yet covered by a successful fsync.
//
// It is test support: it keeps an undo copy of every unsynced write, so it is
// slow and memory-hungry compared with wal.OSFS.
package waltest

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/sesscache/sesscache/wal"
)

// FaultOp says which calls a Fault applies to.
type FaultOp uint8

const (
	// FaultWrite applies to File.WriteAt.
	FaultWrite FaultOp = iota + 1
	// FaultSync applies to File.Sync.
	FaultSync
)

// Fault describes one injected failure. It fires once, on the first matching
// call after Skip matching calls have passed, counted from Inject.
type Fault struct {
	Op FaultOp
	// Pattern, if not empty, restricts the fault to files whose base name
	// matches it (filepath.Match), such as "*.wal" for segment files.
	Pattern string
	// Skip is how many matching calls succeed first: 0 fails the next one.
	Skip int
	// Err is the error returned, such as syscall.ENOSPC or syscall.EIO.
	Err error
	// Short makes a FaultWrite write the first half of its data before
	// returning Err; with a nil Err it returns a silently short count.
	Short bool
}

// FS wraps a wal.FS and injects faults. The zero value wraps wal.OSFS. Set
// the hook fields before handing the FS to wal.Open; the methods are safe
// for concurrent use.
type FS struct {
	// Base is the wrapped file system; nil means wal.OSFS.
	Base wal.FS
	// NoSync makes Sync and SyncDir succeed at once without reaching the
	// disk, for tests that open many logs. DropUnsynced still treats such
	// syncs as durable.
	NoSync bool
	// BeforeWrite, if set, runs before every WriteAt with the file's path;
	// a non-nil error fails the write with nothing written. It may block.
	BeforeWrite func(path string, off int64, n int) error
	// BeforeSync, if set, runs before every Sync with the file's path; a
	// non-nil error fails the sync. It may block.
	BeforeSync func(path string) error

	// inflight is held shared by every change while it reaches the disk,
	// and exclusively by PowerCut, so that no change lands after the cut.
	inflight sync.RWMutex
	mu       sync.Mutex
	cut      bool // PowerCut happened: every later change fails
	faults   []*pending
	writes   int
	syncs    int
	files    map[string]*fileState // by path, for DropUnsynced
}

type pending struct {
	Fault
	seen int
}

// fileState is what DropUnsynced needs to put a file back as of its last
// successful Sync.
type fileState struct {
	syncedSize int64
	undo       []span // writes since the last Sync, oldest first
	path       string // the file's name now: a rename follows it
}

type span struct {
	off int64
	old []byte // content before the write, only the part inside syncedSize
}

var _ wal.FS = (*FS)(nil)

// Inject arms a fault.
func (f *FS) Inject(ft Fault) {
	f.mu.Lock()
	f.faults = append(f.faults, &pending{Fault: ft})
	f.mu.Unlock()
}

// Writes returns the number of WriteAt calls made so far.
func (f *FS) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// Syncs returns the number of File.Sync calls made so far.
func (f *FS) Syncs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

func (f *FS) base() wal.FS {
	if f.Base == nil {
		return wal.OSFS{}
	}
	return f.Base
}

// fire returns the fault that applies to this call, if any, and disarms it.
func (f *FS) fire(op FaultOp, path string) *Fault {
	for i, p := range f.faults {
		if p.Op != op {
			continue
		}
		if p.Pattern != "" {
			if ok, _ := filepath.Match(p.Pattern, filepath.Base(path)); !ok {
				continue
			}
		}
		if p.seen < p.Skip {
			p.seen++
			continue
		}
		f.faults = append(f.faults[:i], f.faults[i+1:]...)
		return &p.Fault
	}
	return nil
}

func (f *FS) state(path string) *fileState {
	if f.files == nil {
		f.files = make(map[string]*fileState)
	}
	st := f.files[path]
	if st == nil {
		st = &fileState{syncedSize: -1, path: path}
		f.files[path] = st
	}
	return st
}

// OpenFile implements wal.FS.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) != 0 {
		var out wal.File
		err := f.change(func() error {
			var err error
			out, err = f.open(name, flag, perm)
			return err
		})
		return out, err
	}
	return f.open(name, flag, perm)
}

func (f *FS) open(name string, flag int, perm fs.FileMode) (wal.File, error) {
	bf, err := f.base().OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	st := f.state(name)
	if st.syncedSize < 0 || flag&os.O_TRUNC != 0 {
		// A file first seen is taken as durable as it is; truncation on
		// open counts as durable at once, like the other metadata.
		if size, err := bf.Size(); err == nil {
			st.syncedSize = size
		}
		st.undo = nil
	}
	f.mu.Unlock()
	return &file{fs: f, st: st, base: bf}, nil
}

// Remove implements wal.FS.
func (f *FS) Remove(name string) error {
	return f.change(func() error {
		err := f.base().Remove(name)
		if err == nil {
			f.mu.Lock()
			delete(f.files, name)
			f.mu.Unlock()
		}
		return err
	})
}

// Rename implements wal.FS.
func (f *FS) Rename(oldpath, newpath string) error {
	return f.change(func() error {
		err := f.base().Rename(oldpath, newpath)
		if err == nil {
			f.mu.Lock()
			if st, ok := f.files[oldpath]; ok {
				st.path = newpath
				f.files[newpath] = st
				delete(f.files, oldpath)
			}
			f.mu.Unlock()
		}
		return err
	})
}

// ReadDir implements wal.FS.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) { return f.base().ReadDir(name) }

// MkdirAll implements wal.FS.
func (f *FS) MkdirAll(name string, perm fs.FileMode) error { return f.base().MkdirAll(name, perm) }

// SyncDir implements wal.FS.
func (f *FS) SyncDir(name string) error {
	return f.change(func() error {
		if f.NoSync {
			return nil
		}
		return f.base().SyncDir(name)
	})
}

// ErrPowerCut is what every change through an FS returns after PowerCut.
var ErrPowerCut = errors.New("waltest: the power is off")

// PowerCut simulates a power cut while the files are still in use: from now
// on every write, sync, truncation, preallocation, rename, removal and
// directory sync through f fails with ErrPowerCut (so whatever the program
// does next, Close included, reaches no disk), and every write not yet
// covered by a successful Sync is undone, as DropUnsynced does. Reads go on,
// so a test can let the program wind down; then it reopens the directory
// with a fresh FS.
func (f *FS) PowerCut() error {
	f.inflight.Lock()
	defer f.inflight.Unlock()
	f.mu.Lock()
	f.cut = true
	f.mu.Unlock()
	return f.DropUnsynced()
}

// change runs op as a change to the disk: refused after PowerCut, and never
// concurrent with it.
func (f *FS) change(op func() error) error {
	f.inflight.RLock()
	defer f.inflight.RUnlock()
	f.mu.Lock()
	cut := f.cut
	f.mu.Unlock()
	if cut {
		return ErrPowerCut
	}
	return op()
}

// DropUnsynced simulates a crash of the machine: every write made through
// this FS since its file's last successful Sync is undone, and the file is
// cut back to its size at that Sync. Directory operations, truncation and
// preallocation count as durable at once. Call it after the files are
// closed (after Log.Close, which cannot fsync a failed log); it also clears
// the bookkeeping, so the FS can be reused for the reopen.
func (f *FS) DropUnsynced() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for path, st := range f.files {
		if len(st.undo) == 0 {
			continue
		}
		errs = append(errs, restore(f.base(), path, st))
	}
	f.files = nil
	return errors.Join(errs...)
}

func restore(base wal.FS, path string, st *fileState) error {
	bf, err := base.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer bf.Close()
	for i := len(st.undo) - 1; i >= 0; i-- {
		if _, err := bf.WriteAt(st.undo[i].old, st.undo[i].off); err != nil {
			return err
		}
	}
	if size, err := bf.Size(); err == nil && size > st.syncedSize {
		return bf.Truncate(st.syncedSize)
	}
	return nil
}

// file is an open file. It reaches its bookkeeping through st, not its
// name, so that a file renamed while open (a spare segment put to use) is
// still tracked, and hooks and faults see its current name.
type file struct {
	fs   *FS
	st   *fileState
	base wal.File
}

// path returns the file's current name.
func (w *file) path() string {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	return w.st.path
}

func (w *file) ReadAt(b []byte, off int64) (int, error) { return w.base.ReadAt(b, off) }

func (w *file) WriteAt(b []byte, off int64) (n int, err error) {
	if w.fs.BeforeWrite != nil {
		if err := w.fs.BeforeWrite(w.path(), off, len(b)); err != nil {
			return 0, err
		}
	}
	err = w.fs.change(func() error {
		var werr error
		n, werr = w.writeAt(b, off)
		return werr
	})
	return n, err
}

func (w *file) writeAt(b []byte, off int64) (int, error) {
	f := w.fs
	f.mu.Lock()
	f.writes++
	ft := f.fire(FaultWrite, w.st.path)
	data := b
	if ft != nil {
		if !ft.Short {
			f.mu.Unlock()
			return 0, ft.Err
		}
		data = b[:len(b)/2]
	}
	st := w.st
	if end := min(off+int64(len(data)), st.syncedSize); end > off {
		old := make([]byte, end-off)
		n, err := w.base.ReadAt(old, off)
		if err != nil && err != io.EOF {
			f.mu.Unlock()
			return 0, err
		}
		st.undo = append(st.undo, span{off: off, old: old[:n]})
	} else {
		st.undo = append(st.undo, span{off: off})
	}
	f.mu.Unlock()
	n, err := w.base.WriteAt(data, off)
	if err == nil && ft != nil {
		err = ft.Err
	}
	return n, err
}

func (w *file) Sync() error {
	if w.fs.BeforeSync != nil {
		if err := w.fs.BeforeSync(w.path()); err != nil {
			return err
		}
	}
	return w.fs.change(w.sync)
}

func (w *file) sync() error {
	f := w.fs
	f.mu.Lock()
	f.syncs++
	ft := f.fire(FaultSync, w.st.path)
	f.mu.Unlock()
	if ft != nil {
		return ft.Err
	}
	if !f.NoSync {
		if err := w.base.Sync(); err != nil {
			return err
		}
	}
	size, err := w.base.Size()
	if err != nil {
		return err
	}
	f.mu.Lock()
	w.st.syncedSize, w.st.undo = size, nil
	f.mu.Unlock()
	return nil
}

// Truncate counts as durable at once (see DropUnsynced).
func (w *file) Truncate(size int64) error {
	return w.fs.change(func() error {
		if err := w.base.Truncate(size); err != nil {
			return err
		}
		w.fs.mu.Lock()
		w.st.syncedSize = size
		w.fs.mu.Unlock()
		return nil
	})
}

// Preallocate counts as durable at once (see DropUnsynced).
func (w *file) Preallocate(size int64) error {
	return w.fs.change(func() error {
		if err := w.base.Preallocate(size); err != nil {
			return err
		}
		w.fs.mu.Lock()
		st := w.st
		if cur, err := w.base.Size(); err == nil {
			st.syncedSize = max(st.syncedSize, cur)
		}
		w.fs.mu.Unlock()
		return nil
	})
}

func (w *file) Size() (int64, error) { return w.base.Size() }

func (w *file) Close() error { return w.base.Close() }
