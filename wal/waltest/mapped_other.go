//go:build !linux

package waltest

import "github.com/sesscache/sesscache/wal"

type mapping struct{}

func (m *mapping) writeBack() error { return nil }

// Map implements wal.Mapper: simulated mappings exist only on Linux.
func (w *file) Map(int64) (wal.Mapping, error) { return nil, wal.ErrNotMappable }
