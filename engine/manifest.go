package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/sesscache/sesscache/wal"
)

// The manifest records, outside the log, the first LSN of the newest log
// segment ever created, so that Open notices a newest segment, or a whole
// log, that has gone missing instead of recovering silently without it
// (wal.Options.ExpectSegment). It is rewritten, atomically, whenever the log
// starts a segment (after the segment's name is durable) and at Open.
//
// Format, 32 bytes, little-endian:
//
//	+0   magic     8 bytes  "SESSMAN\x00"
//	+8   version   uint32   1
//	+12  reserved  uint32   0
//	+16  segment   uint64   first LSN of the newest segment
//	+24  CRC       uint32   CRC-32C of bytes 0..23
//	+28  reserved  uint32   0
const (
	manifestName    = "MANIFEST"
	manifestMagic   = "SESSMAN\x00"
	manifestVersion = 1
	manifestSize    = 32
)

var errManifest = errors.New("sesscache: damaged manifest")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type manifest struct {
	path   string
	fsys   wal.FS // nil: the operating system's
	logger *slog.Logger
	mu     sync.Mutex
}

func (m *manifest) fs() wal.FS {
	if m.fsys == nil {
		return wal.OSFS{}
	}
	return m.fsys
}

// read returns the segment the manifest names, 0 if there is no manifest.
func (m *manifest) read() (uint64, error) {
	f, err := m.fs().OpenFile(m.path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sesscache: reading %s: %w", manifestName, err)
	}
	defer func() { _ = f.Close() }() // read-only: a failed close loses nothing
	var b [manifestSize]byte
	if n, err := f.ReadAt(b[:], 0); n != len(b) {
		return 0, fmt.Errorf("%w: %s is %d bytes: %v", errManifest, manifestName, n, err)
	}
	switch {
	case string(b[:8]) != manifestMagic,
		crc32.Checksum(b[:24], castagnoli) != binary.LittleEndian.Uint32(b[24:]):
		return 0, fmt.Errorf("%w: %s fails its checksum", errManifest, manifestName)
	case binary.LittleEndian.Uint32(b[8:]) != manifestVersion:
		return 0, fmt.Errorf("%w: %s has version %d, this build reads %d",
			ErrUnsupported, manifestName, binary.LittleEndian.Uint32(b[8:]), manifestVersion)
	}
	return binary.LittleEndian.Uint64(b[16:]), nil
}

// write replaces the manifest with one naming segment, durably: a
// temporary file, fsynced, renamed, and the directory fsynced.
func (m *manifest) write(segment uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b [manifestSize]byte
	copy(b[:], manifestMagic)
	binary.LittleEndian.PutUint32(b[8:], manifestVersion)
	binary.LittleEndian.PutUint64(b[16:], segment)
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
	fsys := m.fs()
	tmp := m.path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("sesscache: writing %s: %w", manifestName, err)
	}
	_, err = f.WriteAt(b[:], 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, m.path)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(m.path))
	}
	if err != nil {
		return fmt.Errorf("sesscache: writing %s: %w", manifestName, err)
	}
	return nil
}

// record is the log's OnSegment: it writes the manifest for a new segment.
// A failure is logged and the log goes on: the manifest then names an older
// segment, which only weakens the check, and the next segment tries again.
func (m *manifest) record(segment uint64) {
	if err := m.write(segment); err != nil {
		m.logger.Warn("sesscache: could not record the newest log segment", "err", err)
	}
}
