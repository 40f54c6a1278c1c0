package snapshot

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
)

// List returns the complete snapshot files in dir, newest (highest LSN)
// first. It goes by name and size only: it neither opens nor verifies the
// files, so Created, Sessions and Duration are zero; Load tells whether one
// is valid. Temporary files and names that do not match are skipped. A
// directory that does not exist holds no snapshots.
func List(dir string, opts Options) ([]Info, error) {
	snaps, _, err := scanDir(dir, opts)
	return snaps, err
}

// Prune removes all but the newest keep snapshots, and every temporary file
// left by a Write that did not finish, and returns the LSN of the oldest
// snapshot kept (0 if none). The log may then drop what that snapshot
// covers. keep 0 removes every snapshot. Prune must not run concurrently
// with Write on the same directory.
//
// Prune goes on past a file it cannot remove and returns the first error,
// with oldestKept still the oldest snapshot it meant to keep.
func Prune(dir string, keep int, opts Options) (oldestKept uint64, err error) {
	if keep < 0 {
		return 0, fmt.Errorf("snapshot: negative keep %d", keep)
	}
	snaps, temps, err := scanDir(dir, opts)
	if err != nil {
		return 0, err
	}
	if n := min(keep, len(snaps)); n > 0 {
		oldestKept = snaps[n-1].LSN
	}
	var victims []string
	if keep < len(snaps) {
		for _, s := range snaps[keep:] {
			victims = append(victims, s.Path)
		}
	}
	for _, name := range temps {
		opts.logger().Info("snapshot: removing temporary file left by an unfinished write", "file", name)
		victims = append(victims, filepath.Join(dir, name))
	}
	if len(victims) == 0 {
		return oldestKept, nil
	}
	fsys := opts.fs()
	var errs []error
	for _, path := range victims {
		if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("snapshot: remove %s: %w", filepath.Base(path), err))
		}
	}
	// Removal need not be durable for correctness (a resurrected old
	// snapshot is merely older), but a sync keeps the disk use honest.
	if err := fsys.SyncDir(dir); err != nil {
		errs = append(errs, fmt.Errorf("snapshot: sync directory: %w", err))
	}
	if len(errs) > 0 {
		return oldestKept, errs[0]
	}
	return oldestKept, nil
}

// scanDir returns dir's snapshots, newest first, and the base names of its
// temporary files.
func scanDir(dir string, opts Options) (snaps []Info, temps []string, err error) {
	entries, err := opts.fs().ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: read directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if isTempName(name) {
			temps = append(temps, name)
			continue
		}
		lsn, ok := parseName(name)
		if !ok {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, nil, fmt.Errorf("snapshot: stat %s: %w", name, err)
		}
		snaps = append(snaps, Info{Path: filepath.Join(dir, name), LSN: lsn, Bytes: fi.Size()})
	}
	slices.SortFunc(snaps, func(a, b Info) int { return cmp.Compare(b.LSN, a.LSN) })
	return snaps, temps, nil
}
