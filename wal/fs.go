package wal

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// FS is the narrow slice of a file system that the log, and package snapshot,
// use. It exists so tests can inject faults (see package waltest); OSFS is the
// real thing. Names are paths as the os package takes them.
type FS interface {
	// OpenFile opens a file like os.OpenFile.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Remove removes a file like os.Remove.
	Remove(name string) error
	// Rename renames a file like os.Rename; it is atomic on POSIX systems.
	Rename(oldpath, newpath string) error
	// ReadDir lists a directory like os.ReadDir, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// MkdirAll creates a directory and its parents like os.MkdirAll.
	MkdirAll(name string, perm fs.FileMode) error
	// SyncDir makes the directory's entries (creations, renames, removals)
	// durable.
	SyncDir(name string) error
}

// File is an open file. It has positioned reads and writes only, so it never
// carries a hidden offset; wrap it with io.NewOffsetWriter or
// io.NewSectionReader for streaming.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes the file's data, and the metadata needed to read it back
	// (its size), durable: fdatasync on Linux, fsync elsewhere. It does not
	// make the file's name durable; see FS.SyncDir.
	Sync() error
	// Truncate changes the file's size like os.File.Truncate.
	Truncate(size int64) error
	// Preallocate reserves disk space so that the file is at least size
	// bytes long, reading as zeros past the data written so far. Later
	// writes inside that space do not grow the file, which keeps Sync cheap
	// and turns a full disk into an early error. Where the file system
	// cannot preallocate it does nothing.
	Preallocate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
	// Close closes the file.
	Close() error
}

// Mapper is implemented by a File that can be mapped into memory. The log
// maps its segments when it can and then appends by copying into the
// mapping: the bytes are in the operating system's page cache, and so safe
// from a process crash, without a system call.
type Mapper interface {
	// Map maps the file's first size bytes, shared and read-write. The
	// file's space must be allocated (Preallocate) so that no store into
	// the mapping can fail for want of space; where it is not, or the
	// platform cannot, Map fails with ErrNotMappable. File.Sync makes the
	// mapping's changes durable as it does the file's writes.
	Map(size int64) (Mapping, error)
}

// Mapping is a file mapped into memory.
type Mapping interface {
	// Bytes returns the mapped memory. Stores into it change the file.
	Bytes() []byte
	// Unmap releases the mapping; Bytes must not be used after.
	Unmap() error
}

// ErrNotMappable is returned by Mapper.Map for a file the log must write
// with write calls instead.
var ErrNotMappable = errors.New("wal: file cannot be mapped")

// OSFS is the operating system's file system.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &osFile{File: f}, nil
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// ReadDir implements FS.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }

// SyncDir implements FS.
func (OSFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type osFile struct {
	*os.File
	allocated int64 // bytes Preallocate reserved for real; Map may map no more
}

func (f *osFile) Sync() error { return datasync(f.File) }

func (f *osFile) Preallocate(size int64) error {
	reserved, err := preallocate(f.File, size)
	if reserved {
		f.allocated = max(f.allocated, size)
	}
	return err
}

func (f *osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
