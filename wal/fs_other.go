//go:build !linux

package wal

import "os"

func datasync(f *os.File) error { return f.Sync() }

// preallocate does nothing where there is no portable fallocate: segments
// then grow as they are written, which is correct, only slower to fsync.
func preallocate(*os.File, int64) (bool, error) { return false, nil }

// Map implements Mapper: nowhere but on Linux, where Preallocate reserves
// the space a mapping needs.
func (f *osFile) Map(int64) (Mapping, error) { return nil, ErrNotMappable }
