package fuzz

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sesscache/sesscache/wal"
)

// memFS is an in-memory wal.FS, so that a fuzz exec never touches the disk.
// Files are sparse: bytes between the stored data and the file's size read
// as zeros, and writing zeros there stores nothing, so preallocating a
// segment (and zero-filling it) costs no memory. It is safe for concurrent
// use: the log's flusher and pipeline and the snapshot workers share it.
type memFS struct {
	mu    sync.Mutex
	files map[string]*memInode // by cleaned path
	dirs  map[string]bool      // by cleaned path
}

type memInode struct {
	mu   sync.Mutex
	data []byte // the first len(data) bytes; the rest up to size are zeros
	size int64
}

var _ wal.FS = (*memFS)(nil)

func newMemFS() *memFS {
	return &memFS{files: map[string]*memInode{}, dirs: map[string]bool{"/": true, ".": true}}
}

// put stores a copy of b as the file name, creating its directory.
func (m *memFS) put(name string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mkdirAllLocked(filepath.Dir(name))
	m.files[filepath.Clean(name)] = &memInode{data: slices.Clone(b), size: int64(len(b))}
}

// get returns a copy of the file name's bytes, or nil if there is none.
func (m *memFS) get(name string) []byte {
	m.mu.Lock()
	ino := m.files[filepath.Clean(name)]
	m.mu.Unlock()
	if ino == nil {
		return nil
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	b := make([]byte, ino.size)
	copy(b, ino.data)
	return b
}

func (m *memFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	ino := m.files[name]
	switch {
	case ino == nil && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case ino == nil && !m.dirs[filepath.Dir(name)]:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case ino == nil && m.dirs[name]:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case ino != nil && flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case ino == nil:
		ino = &memInode{}
		m.files[name] = ino
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if flag&os.O_TRUNC != 0 && writable {
		if err := ino.truncate(0); err != nil {
			return nil, err
		}
	}
	return &memFile{ino: ino, name: name, writable: writable}, nil
}

func (m *memFS) Remove(name string) error {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.files[name] != nil {
		delete(m.files, name)
		return nil
	}
	if m.dirs[name] {
		for p := range m.files {
			if filepath.Dir(p) == name {
				return &fs.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
			}
		}
		delete(m.dirs, name)
		return nil
	}
	return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
}

func (m *memFS) Rename(oldpath, newpath string) error {
	oldpath, newpath = filepath.Clean(oldpath), filepath.Clean(newpath)
	m.mu.Lock()
	defer m.mu.Unlock()
	ino := m.files[oldpath]
	if ino == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	if !m.dirs[filepath.Dir(newpath)] || m.dirs[newpath] {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrInvalid}
	}
	delete(m.files, oldpath)
	m.files[newpath] = ino
	return nil
}

func (m *memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[name] {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	var out []fs.DirEntry
	for p, ino := range m.files {
		if filepath.Dir(p) == name {
			ino.mu.Lock()
			out = append(out, memEntry{name: filepath.Base(p), size: ino.size})
			ino.mu.Unlock()
		}
	}
	for p := range m.dirs {
		if p != name && filepath.Dir(p) == name {
			out = append(out, memEntry{name: filepath.Base(p), dir: true})
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

func (m *memFS) MkdirAll(name string, perm fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mkdirAllLocked(name)
}

func (m *memFS) mkdirAllLocked(name string) error {
	name = filepath.Clean(name)
	for p := name; !m.dirs[p]; p = filepath.Dir(p) {
		if m.files[p] != nil {
			return &fs.PathError{Op: "mkdir", Path: p, Err: fs.ErrExist}
		}
		m.dirs[p] = true
	}
	return nil
}

func (m *memFS) SyncDir(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[filepath.Clean(name)] {
		return &fs.PathError{Op: "sync", Path: name, Err: fs.ErrNotExist}
	}
	return nil
}

// memFile is an open file. Reads and writes after Close fail, which catches a
// caller that keeps using a file it closed.
type memFile struct {
	ino      *memInode
	name     string
	writable bool
	mu       sync.Mutex
	closed   bool
}

func (f *memFile) check(write bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return &fs.PathError{Op: "use", Path: f.name, Err: fs.ErrClosed}
	case write && !f.writable:
		return &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrPermission}
	}
	return nil
}

func (f *memFile) ReadAt(b []byte, off int64) (int, error) {
	if err := f.check(false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
	}
	ino := f.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if off >= ino.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), ino.size-off))
	stored := 0
	if off < int64(len(ino.data)) {
		stored = copy(b[:n], ino.data[off:])
	}
	clear(b[stored:n])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.check(true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrInvalid}
	}
	ino := f.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	ino.size = max(ino.size, off+int64(len(b)))
	// Zeros past the stored data are already there: store up to the last
	// byte that is not such a zero.
	n := len(b)
	for n > 0 && b[n-1] == 0 && off+int64(n) > int64(len(ino.data)) {
		n--
	}
	if end := off + int64(n); end > int64(len(ino.data)) {
		ino.data = append(ino.data, make([]byte, end-int64(len(ino.data)))...)
	}
	copy(ino.data[off:], b[:n])
	return len(b), nil
}

func (f *memFile) Sync() error { return f.check(false) }

func (f *memFile) Truncate(size int64) error {
	if err := f.check(true); err != nil {
		return err
	}
	return f.ino.truncate(size)
}

func (ino *memInode) truncate(size int64) error {
	if size < 0 {
		return fs.ErrInvalid
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if size < int64(len(ino.data)) {
		clear(ino.data[size:])
		ino.data = ino.data[:size]
	}
	ino.size = size
	return nil
}

func (f *memFile) Preallocate(size int64) error {
	if err := f.check(true); err != nil {
		return err
	}
	f.ino.mu.Lock()
	defer f.ino.mu.Unlock()
	f.ino.size = max(f.ino.size, size)
	return nil
}

func (f *memFile) Size() (int64, error) {
	if err := f.check(false); err != nil {
		return 0, err
	}
	f.ino.mu.Lock()
	defer f.ino.mu.Unlock()
	return f.ino.size, nil
}

func (f *memFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

// memEntry is a directory entry and its FileInfo.
type memEntry struct {
	name string
	size int64
	dir  bool
}

func (e memEntry) Name() string               { return e.name }
func (e memEntry) IsDir() bool                { return e.dir }
func (e memEntry) Info() (fs.FileInfo, error) { return e, nil }
func (e memEntry) Size() int64                { return e.size }
func (e memEntry) ModTime() time.Time         { return time.Time{} }
func (e memEntry) Sys() any                   { return nil }

func (e memEntry) Type() fs.FileMode { return e.Mode().Type() }

func (e memEntry) Mode() fs.FileMode {
	if e.dir {
		return fs.ModeDir | 0o700
	}
	return 0o600
}
