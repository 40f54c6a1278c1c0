package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sesscache/sesscache/wal"
)

// Write writes a snapshot at LSN lsn made of `chunks` chunks and returns its
// Info. It creates dir (mode 0700) if needed.
//
// fill is called exactly once per chunk index in [0, chunks), from up to
// opts.Workers goroutines at once, and calls add once per record: OpPut
// records only, whose LSN field is ignored (every record of a snapshot
// carries the snapshot's LSN). The Record and its slices may be reused by the
// caller once add returns. add must be called only from the fill call that
// received it, and not after that call returns. A chunk index is a unit of
// work, such as a shard: its records are written in the order add saw them,
// after those of lower indices, cut into file chunks of about 256 KiB. Fill
// calls run ahead of the file by a bounded amount (about 4 MiB of output each
// and 2 × Workers calls in all); beyond that add blocks until the file
// catches up, so use several chunk indices per worker to encode in parallel.
//
// On any error (from fill, add, encoding, or the file system) the temporary
// file is removed, no snapshot appears and the first error is returned. (One
// exception: if only the final directory fsync fails and the new file
// replaced a snapshot of the same LSN, the new file stays, since removing it
// would lose both.) add returns an error as soon as the Write has failed,
// and fill should then return. add fails with wal.ErrInvalidRecord for a record that is not a Put
// and with wal.ErrTooLarge for one that would not fit in a frame.
//
// opts.BeforePublish, if set, runs after the file is complete and durable
// and before its final name appears; its error fails the Write.
//
// Writing a snapshot at an LSN that already has one replaces it atomically.
// Write must not run concurrently with Prune on the same directory, which
// removes temporary files.
func Write(dir string, lsn uint64, created time.Time, chunks int, fill func(chunk int, add func(*wal.Record) error) error, opts Options) (Info, error) {
	start := time.Now()
	switch {
	case lsn == 0:
		return Info{}, errors.New("snapshot: LSN 0 cannot be snapshotted")
	case chunks < 0:
		return Info{}, fmt.Errorf("snapshot: negative chunk count %d", chunks)
	case fill == nil && chunks > 0:
		return Info{}, errors.New("snapshot: nil fill function")
	}
	fsys := opts.fs()
	if err := fsys.MkdirAll(dir, dirMode); err != nil {
		return Info{}, fmt.Errorf("snapshot: create directory: %w", err)
	}
	tmp, f, err := createTemp(fsys, dir, lsn)
	if err != nil {
		return Info{}, err
	}
	w := newWriter(f, lsn, chunks, fill, opts)
	final := filepath.Join(dir, fileName(lsn))
	size, err := w.writeFile(created, opts.workers())
	if err == nil {
		err = syncClose(f, tmp)
		f = nil
	}
	if err == nil && opts.BeforePublish != nil {
		if err = opts.BeforePublish(); err != nil {
			err = fmt.Errorf("snapshot: before publishing: %w", err)
		}
	}
	existed := false
	if err == nil {
		existed = exists(fsys, final)
		err = fsys.Rename(tmp, final)
		if err != nil {
			err = fmt.Errorf("snapshot: rename %s: %w", filepath.Base(tmp), err)
		}
	}
	if err != nil {
		cleanUp(fsys, f, tmp, opts)
		return Info{}, err
	}
	if err := fsys.SyncDir(dir); err != nil {
		// The new name may not survive a crash, so the caller must not drop
		// log segments on the strength of it: take it back. Unless it
		// replaced a snapshot of the same LSN, which removing it would lose;
		// the new file is as complete and valid as that one was.
		if !existed {
			cleanUp(fsys, nil, final, opts)
		}
		return Info{}, fmt.Errorf("snapshot: sync directory: %w", err)
	}
	info := Info{
		Path:     final,
		LSN:      lsn,
		Created:  fromUnixNano(unixNano(created)),
		Sessions: w.sessions,
		Bytes:    size,
		Duration: time.Since(start),
	}
	opts.logger().Debug("snapshot written", "file", filepath.Base(final), "lsn", lsn,
		"sessions", info.Sessions, "bytes", info.Bytes, "duration", info.Duration)
	return info, nil
}

// createTemp creates a new temporary file for a snapshot at lsn.
func createTemp(fsys wal.FS, dir string, lsn uint64) (string, wal.File, error) {
	var err error
	for range 8 {
		name := filepath.Join(dir, tempName(lsn))
		var f wal.File
		f, err = fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
		if err == nil {
			return name, f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return "", nil, fmt.Errorf("snapshot: create temporary file: %w", err)
}

// exists reports whether path can be opened; Write uses it only to decide
// what to undo, so an error other than not-existing counts as existing.
func exists(fsys wal.FS, path string) bool {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	_ = f.Close() // read-only: a failed close loses nothing
	return true
}

func syncClose(f wal.File, path string) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot: sync %s: %w", filepath.Base(path), err)
	}
	return nil
}

// cleanUp closes f if it is open and removes path, logging what it cannot
// undo: the caller is already returning an error of its own.
func cleanUp(fsys wal.FS, f wal.File, path string, opts Options) {
	if f != nil {
		_ = f.Close() // the file is removed next; the Write's error stands
	}
	if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		opts.logger().Warn("snapshot: cannot remove file of failed write",
			"file", filepath.Base(path), "err", err)
	}
}
