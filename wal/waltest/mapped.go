//go:build linux

package waltest

import (
	"bytes"
	"fmt"
	"io"
	"syscall"

	"github.com/sesscache/sesscache/wal"
)

// Mapped segments under a simulated crash. With FS.Mappable a file can be
// mapped (wal.Mapper), and the mapping behaves as a page cache that only a
// Sync writes back: stores into it reach the file when the file is fsynced
// (or unmapped, which hands them to the file without making them durable),
// so PowerCut loses exactly what no fsync covered, as for a real mapping
// after a power cut. The mapped memory comes from the operating system, not
// the Go heap, as a real mapping's does: the race detector does not watch
// it, so the log's appends and the write-back at a Sync may overlap, as
// they do with a real mapping and the kernel.

const pageSize = 4096

// mapping is a file's simulated mapping: mem is what the program stores
// into, synced what the file held as of the last write-back.
type mapping struct {
	w      *file
	mem    []byte
	synced []byte
}

// Map implements wal.Mapper when the FS is Mappable and size lies within
// the file.
func (w *file) Map(size int64) (wal.Mapping, error) {
	if !w.fs.Mappable {
		return nil, wal.ErrNotMappable
	}
	cur, err := w.base.Size()
	if err != nil {
		return nil, err
	}
	if size <= 0 || size > cur || int64(int(size)) != size {
		return nil, wal.ErrNotMappable
	}
	m := &mapping{w: w}
	if m.mem, err = anon(int(size)); err != nil {
		return nil, err
	}
	if m.synced, err = anon(int(size)); err != nil {
		_ = syscall.Munmap(m.mem)
		return nil, err
	}
	if _, err := w.base.ReadAt(m.mem, 0); err != nil && err != io.EOF {
		m.release()
		return nil, fmt.Errorf("waltest: map: %w", err)
	}
	copy(m.synced, m.mem)
	w.fs.mu.Lock()
	w.m = m
	w.fs.mu.Unlock()
	return m, nil
}

func anon(n int) ([]byte, error) {
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

func (m *mapping) Bytes() []byte { return m.mem }

// Unmap hands what was stored to the file, not durably, and releases the
// memory.
func (m *mapping) Unmap() error {
	err := m.writeBack()
	m.w.fs.mu.Lock()
	if m.w.m == m {
		m.w.m = nil
	}
	m.w.fs.mu.Unlock()
	m.release()
	return err
}

func (m *mapping) release() {
	_ = syscall.Munmap(m.mem)
	_ = syscall.Munmap(m.synced)
}

// writeBack writes the pages stored into since the last write-back to the
// file, as ordinary (undoable until synced) writes.
func (m *mapping) writeBack() error {
	for off := 0; off < len(m.mem); off += pageSize {
		end := min(off+pageSize, len(m.mem))
		if bytes.Equal(m.mem[off:end], m.synced[off:end]) {
			continue
		}
		page := append([]byte(nil), m.mem[off:end]...)
		if _, err := m.w.WriteAt(page, int64(off)); err != nil {
			return err
		}
		copy(m.synced[off:end], page)
	}
	return nil
}
