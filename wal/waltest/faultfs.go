// Package waltest provides a fault-injecting wal.FS for tests of the wal
// package and of its users (the engine, snapshots): failed and short writes,
// failed fsyncs, hooks that can block I/O at a chosen point, and a simulated
// crash that drops every write not yet covered by a successful fsync and,
// with FS.NeedDirSync, every change to a directory's entries not yet covered
// by a successful SyncDir.
//
// It is test support: it keeps an undo copy of every unsynced write (and,
// with NeedDirSync, of every file removed or replaced since its directory's
// last sync), so it is slow and memory-hungry compared with wal.OSFS.
package waltest

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
	// NeedDirSync makes a directory's entries durable only through SyncDir
	// of that directory, as on a real file system, instead of at once: a
	// crash (DropUnsynced, PowerCut) undoes, newest first, every file
	// creation, rename and removal made through f since the last successful
	// SyncDir of the directories involved (for a rename, both). So a file
	// created and never named durably disappears, content and all; a
	// renamed file goes back to its old name; a file removed, or replaced
	// by a rename, comes back with the content it had as of its last Sync.
	// To make that possible f reads such a file into memory when it is
	// removed or replaced, unless its own creation is still undoable, in
	// which case nothing of it can survive anyway. Directories themselves
	// (MkdirAll) still count as durable at once, as do truncation and
	// preallocation. Set it before the FS is used.
	NeedDirSync bool
	// Mappable lets the log map its segments (wal.Mapper) through f, with
	// the mapping simulated so that a crash loses what no fsync covered
	// (see mapped.go). Off, the log writes its segments with write calls,
	// which is what write faults (FaultWrite) need.
	Mappable bool

	// inflight is held shared by every change while it reaches the disk,
	// and exclusively by PowerCut, so that no change lands after the cut.
	inflight sync.RWMutex
	mu       sync.Mutex
	cut      bool // PowerCut happened: every later change fails
	faults   []*pending
	writes   int
	syncs    int
	files    map[string]*fileState // by path, for DropUnsynced
	// entries are the changes to directory entries not yet durable, oldest
	// first (NeedDirSync only).
	entries []*entryChange
}

// entryKind is what an entryChange did.
type entryKind uint8

const (
	entryCreate entryKind = iota + 1
	entryRename
	entryRemove
)

// entryChange is one creation, rename or removal of a file that a crash
// would undo: it is durable once every directory in dirs has been synced
// since.
type entryChange struct {
	kind entryKind
	path string // the name created or removed; a rename's new name
	from string // a rename's old name
	dirs map[string]bool
	// old is the content, as of its last Sync, of the file a removal took
	// away or a rename replaced, to put back; nil if there was none or it
	// could not have survived a crash anyway.
	old *durableContent
}

// durableContent is a file's content as a crash would leave it: data, then
// zeros up to size (preallocated space is kept as a size, not as bytes).
type durableContent struct {
	data []byte
	size int64
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
	var bf wal.File
	var err error
	created := false
	switch {
	case !f.NeedDirSync || flag&os.O_CREATE == 0:
		bf, err = f.base().OpenFile(name, flag, perm)
	case flag&os.O_EXCL != 0:
		bf, err = f.base().OpenFile(name, flag, perm)
		created = err == nil
	default:
		// Whether this call creates the file decides what a crash undoes,
		// so ask for a creation first.
		bf, err = f.base().OpenFile(name, flag|os.O_EXCL, perm)
		created = err == nil
		if errors.Is(err, fs.ErrExist) {
			bf, err = f.base().OpenFile(name, flag, perm)
		}
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if created {
		f.addEntry(&entryChange{kind: entryCreate, path: name}, name)
	}
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
		var old *durableContent
		if f.NeedDirSync {
			var err error
			if old, err = f.durable(name); err != nil {
				return err
			}
		}
		err := f.base().Remove(name)
		if err == nil {
			f.mu.Lock()
			delete(f.files, name)
			if f.NeedDirSync && old != nil {
				f.addEntry(&entryChange{kind: entryRemove, path: name, old: old}, name)
			}
			f.mu.Unlock()
		}
		return err
	})
}

// Rename implements wal.FS.
func (f *FS) Rename(oldpath, newpath string) error {
	return f.change(func() error {
		var replaced *durableContent
		if f.NeedDirSync {
			var err error
			if replaced, err = f.durable(newpath); err != nil {
				return err
			}
		}
		err := f.base().Rename(oldpath, newpath)
		if err == nil {
			f.mu.Lock()
			if st, ok := f.files[oldpath]; ok {
				st.path = newpath
				f.files[newpath] = st
				delete(f.files, oldpath)
			}
			if f.NeedDirSync {
				f.addEntry(&entryChange{kind: entryRename, path: newpath, from: oldpath, old: replaced}, oldpath, newpath)
			}
			f.mu.Unlock()
		}
		return err
	})
}

// addEntry records a change to directory entries that SyncDir of the
// directories of paths has yet to make durable. Caller holds f.mu.
func (f *FS) addEntry(c *entryChange, paths ...string) {
	c.dirs = make(map[string]bool, len(paths))
	for _, p := range paths {
		c.dirs[filepath.Dir(filepath.Clean(p))] = true
	}
	f.entries = append(f.entries, c)
}

// fresh reports whether the file now named path traces back, through
// renames not yet durable, to a creation not yet durable: a crash would
// undo it whole. Caller holds f.mu.
func (f *FS) fresh(path string) bool {
	for i := len(f.entries) - 1; i >= 0; i-- {
		c := f.entries[i]
		if c.path != path {
			continue
		}
		switch c.kind {
		case entryCreate:
			return true
		case entryRename:
			path = c.from
		case entryRemove:
			return false // named again later by a durable change
		}
	}
	return false
}

// durable returns the content that a crash would leave in the file at path
// if its removal or replacement now were undone: nil if there is no such
// file, or it could not survive a crash anyway (see fresh), or it is not a
// regular file (a directory's removal counts as durable at once).
func (f *FS) durable(path string) (*durableContent, error) {
	f.mu.Lock()
	fresh := f.fresh(path)
	var st *fileState
	if s, ok := f.files[path]; ok {
		st = &fileState{syncedSize: s.syncedSize, undo: slices.Clone(s.undo)}
	}
	f.mu.Unlock()
	if fresh {
		return nil, nil
	}
	bf, err := f.base().OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = bf.Close() }() // read-only
	size, err := bf.Size()
	if err != nil {
		return nil, err
	}
	// Read in chunks and keep the data only up to its last non-zero
	// chunk: a preallocated segment is mostly zeros.
	var data []byte
	chunk := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(chunk)) {
		n, err := bf.ReadAt(chunk[:min(int64(len(chunk)), size-off)], off)
		if err != nil && err != io.EOF {
			return nil, nil // not a regular file: see above
		}
		if slices.ContainsFunc(chunk[:n], func(b byte) bool { return b != 0 }) {
			data = append(data, make([]byte, off-int64(len(data)))...) // the zero chunks skipped
			data = append(data, chunk[:n]...)
		}
	}
	data = data[:min(int64(len(data)), size)]
	if st != nil {
		// Take back the writes since the file's last Sync, newest first,
		// as restore does on disk.
		for i := len(st.undo) - 1; i >= 0; i-- {
			u := st.undo[i]
			if end := u.off + int64(len(u.old)); end > int64(len(data)) {
				data = append(data, make([]byte, end-int64(len(data)))...)
			}
			copy(data[u.off:], u.old)
		}
		if st.syncedSize >= 0 {
			size = min(size, st.syncedSize)
			data = data[:min(int64(len(data)), size)]
		}
	}
	return &durableContent{data: data, size: size}, nil
}

// ReadDir implements wal.FS.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) { return f.base().ReadDir(name) }

// MkdirAll implements wal.FS.
func (f *FS) MkdirAll(name string, perm fs.FileMode) error { return f.base().MkdirAll(name, perm) }

// SyncDir implements wal.FS. With NeedDirSync it makes the changes to the
// directory's entries made so far durable.
func (f *FS) SyncDir(name string) error {
	return f.change(func() error {
		if !f.NoSync {
			if err := f.base().SyncDir(name); err != nil {
				return err
			}
		}
		dir := filepath.Clean(name)
		f.mu.Lock()
		kept := f.entries[:0]
		for _, c := range f.entries {
			delete(c.dirs, dir)
			if len(c.dirs) > 0 {
				kept = append(kept, c)
			}
		}
		clear(f.entries[len(kept):])
		f.entries = kept
		f.mu.Unlock()
		return nil
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
// cut back to its size at that Sync. Then, with NeedDirSync, every creation,
// rename and removal since the last successful SyncDir of its directory is
// undone, newest first (see NeedDirSync); without it, directory operations
// count as durable at once. Truncation and preallocation always do. Call
// it after the files are closed (after Log.Close, which cannot fsync a
// failed log); it also clears the bookkeeping, so the FS can be reused for
// the reopen.
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
	for i := len(f.entries) - 1; i >= 0; i-- {
		errs = append(errs, f.undoEntry(f.entries[i]))
	}
	f.files, f.entries = nil, nil
	return errors.Join(errs...)
}

// undoEntry takes back one change to directory entries.
func (f *FS) undoEntry(c *entryChange) error {
	base := f.base()
	var err error
	switch c.kind {
	case entryCreate:
		err = base.Remove(c.path)
	case entryRename:
		err = base.Rename(c.path, c.from)
	}
	if errors.Is(err, fs.ErrNotExist) {
		err = nil // a later change, itself durable, took the name away
	}
	if err != nil || c.old == nil {
		return err
	}
	return putBack(base, c.path, c.old)
}

// putBack recreates the file at path with content as of its last Sync.
func putBack(base wal.FS, path string, c *durableContent) error {
	bf, err := base.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = bf.WriteAt(c.data, 0)
	if err == nil && c.size > int64(len(c.data)) {
		err = bf.Truncate(c.size)
	}
	if cerr := bf.Close(); err == nil {
		err = cerr
	}
	return err
}

func restore(base wal.FS, path string, st *fileState) error {
	bf, err := base.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = bf.Close() }() // the restore's writes are what matter; a test harness, not the log
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
	m    *mapping // its simulated mapping, if mapped; guarded by fs.mu
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
	w.fs.mu.Lock()
	m := w.m
	w.fs.mu.Unlock()
	if m != nil {
		// A mapped file's stores reach it when it is fsynced.
		if err := m.writeBack(); err != nil {
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
