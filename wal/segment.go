package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"unsafe"
)

// Segment file format constants; part of the format (see the package comment).
//
// formatVersion history (only the current version is read; an older one is
// refused with an error that names it, never read as damage):
//
//	1  Put without the fingerprint element
//	2  Put ends with fingerprint before the LSN
//	3  Put ends with fingerprint, authAt and label before the LSN; a sealed
//	   Put carries its metadata inside its sealed data
const (
	segmentExt        = ".wal"
	segmentMagic      = "SESSWAL\x00"
	formatVersion     = 3
	segmentHeaderSize = 32
)

// Spare segments are preallocated under these names and renamed when the log
// rotates into them. Two names alternate so the pipeline can create the next
// spare while the flusher still holds the previous one.
var spareNames = [2]string{"spare-0.wal.tmp", "spare-1.wal.tmp"}

const (
	fileMode = 0o600
	dirMode  = 0o700
)

// ErrUnsupportedVersion marks a well-formed segment header of another format
// version, older or newer. It is never treated as damage: skipping it would
// silently drop data, and decoding it as the current version would misread
// it.
var ErrUnsupportedVersion = errors.New("wal: unsupported segment format version")

// segmentName returns the file name of the segment whose first LSN is first.
func segmentName(first uint64) string {
	return fmt.Sprintf("%016x%s", first, segmentExt)
}

// parseSegmentName returns the first LSN named by a segment file name, or
// false if name is not exactly 16 lower-case hex digits and ".wal" naming a
// non-zero LSN.
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != 16+len(segmentExt) || name[16:] != segmentExt {
		return 0, false
	}
	for _, c := range name[:16] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return 0, false
		}
	}
	first, err := strconv.ParseUint(name[:16], 16, 64)
	return first, err == nil && first != 0
}

func appendSegmentHeader(b []byte, first uint64) []byte {
	start := len(b)
	b = append(b, segmentMagic...)
	b = binary.LittleEndian.AppendUint32(b, formatVersion)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, first)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	return binary.LittleEndian.AppendUint32(b, 0)
}

// offSynced is where a segment header keeps how far the segment's data is
// known to be durable (see syncedThrough). It is outside the header's CRC:
// it changes after the header is written, with a single aligned 4-byte
// store, which a disk writes whole.
const offSynced = 28

// syncedThrough returns the offset up to which the segment of header b was
// durable when it was last recorded: every fsync of the segment that
// succeeds records, after it, the data end it covered. Zero means none was
// recorded. Replay treats damage at or past it in the last segment as a
// torn tail: after a power cut, the pages written since the last fsync may
// reach the disk in any order, so a hole of zeros can precede data there.
func syncedThrough(b []byte) int64 {
	return int64(binary.LittleEndian.Uint32(b[offSynced:]))
}

// markSynced records in s's header, after an fsync of s that covered its
// data up to end, that the data is durable to there. Mapped, it is a store
// into the mapping, written back with the page; written, a 4-byte write.
// Neither is durable until a later fsync, and until then the header says
// less than is durable, never more. A failed write is the next fsync's
// business: the header then only says less. A segment grown past 4 GiB (a
// record larger than the segment size) records less than it has, which
// only widens the region read as a possibly torn tail.
func markSynced(s *segment, end int64) {
	v := uint32(min(end, math.MaxUint32))
	if s.buf != nil {
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&s.buf[offSynced])), v)
		return
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	_ = writeAll(s.f, b[:], offSynced)
}

// checkSegmentHeader validates the header at the start of b for the segment
// named first. It returns a reason for damage, or ErrUnsupportedVersion.
func checkSegmentHeader(b []byte, first uint64) (reason string, err error) {
	switch {
	case len(b) < segmentHeaderSize:
		return "short segment header", nil
	case string(b[:8]) != segmentMagic:
		return "bad segment magic", nil
	case crc32.Checksum(b[:24], castagnoli) != binary.LittleEndian.Uint32(b[24:]):
		return "segment header checksum mismatch", nil
	case binary.LittleEndian.Uint32(b[8:]) != formatVersion:
		return "", fmt.Errorf("%w %d (this build reads version %d only)",
			ErrUnsupportedVersion, binary.LittleEndian.Uint32(b[8:]), formatVersion)
	case binary.LittleEndian.Uint32(b[12:]) != 0:
		return "non-zero reserved header bytes", nil
	case binary.LittleEndian.Uint64(b[16:]) != first:
		return fmt.Sprintf("header names first LSN %d, file name %d", binary.LittleEndian.Uint64(b[16:]), first), nil
	}
	return "", nil
}

// segInfo describes one segment file in the directory.
type segInfo struct {
	first uint64
	bytes int64 // header and frames written; excludes preallocated space
}

// listSegments returns the directory's segments in LSN order, with their file
// sizes, and removes leftover spare files.
func listSegments(fsys FS, dir string) ([]segInfo, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segInfo
	for _, e := range entries {
		name := e.Name()
		if slices.Contains(spareNames[:], name) {
			if err := fsys.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			continue
		}
		first, ok := parseSegmentName(name)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		segs = append(segs, segInfo{first: first, bytes: info.Size()})
	}
	slices.SortFunc(segs, func(a, b segInfo) int { return cmpUint(a.first, b.first) })
	return segs, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// segment is the file the flusher appends to.
type segment struct {
	first  uint64 // LSN in the name
	next   uint64 // LSN of the next frame to write here
	size   int64  // write offset: header plus frames
	zeroed int64  // end of the space written, with data or zeros (see zeroAhead)
	f      File
	m      Mapping // mapped mode: the segment's mapping, and buf its bytes
	buf    []byte
	// wrote is size for goroutines other than the writer's (written
	// mode): an fsync started after it was stored covers the data to it.
	wrote atomic.Int64
}

func (s *segment) empty() bool { return s.next == s.first }

// writeAll writes b at off, turning a short write into an error.
func writeAll(f File, b []byte, off int64) error {
	n, err := f.WriteAt(b, off)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// createSegment creates, preallocates and durably names a new segment file.
// Open uses it; rotation uses the spare pipeline instead.
func createSegment(fsys FS, dir string, first uint64, prealloc int64) (*segment, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, segmentName(first)), os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return nil, err
	}
	err = f.Preallocate(prealloc)
	if err == nil {
		err = writeAll(f, appendSegmentHeader(nil, first), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		_ = f.Close() // err says why the segment could not be created
		return nil, err
	}
	return &segment{first: first, next: first, size: segmentHeaderSize, zeroed: segmentHeaderSize, f: f}, nil
}

// spare is a preallocated file waiting to become the next segment, mapped
// if the log maps its segments.
type spare struct {
	path string
	f    File
	m    Mapping
	err  error
}

// pipeline prepares the next segment file ahead of time on its own goroutine,
// as etcd's file pipeline does, so rotation costs a header write, a rename
// and a directory sync instead of a create, a preallocation and an fsync.
type pipeline struct {
	fsys   FS
	dir    string
	size   int64
	mapped bool
	ready  chan spare
	stop   chan struct{}
	done   chan struct{}
}

func startPipeline(fsys FS, dir string, size int64, mapped bool) *pipeline {
	p := &pipeline{
		fsys:   fsys,
		dir:    dir,
		size:   size,
		mapped: mapped,
		ready:  make(chan spare),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go p.run()
	return p
}

func (p *pipeline) run() {
	defer close(p.done)
	for i := 0; ; i++ {
		s := p.create(spareNames[i%len(spareNames)], p.size)
		select {
		case p.ready <- s:
			if s.err != nil {
				return
			}
		case <-p.stop:
			if s.err == nil {
				// An unused spare: a leftover is removed by the next Open.
				if s.m != nil {
					_ = s.m.Unmap()
				}
				_ = s.f.Close()
				_ = p.fsys.Remove(s.path)
			}
			return
		}
	}
}

// create makes a spare of size bytes: preallocated, fsynced and, if the
// log maps its segments, mapped.
func (p *pipeline) create(name string, size int64) spare {
	path := filepath.Join(p.dir, name)
	f, err := p.fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return spare{err: err}
	}
	err = f.Preallocate(size)
	if err == nil {
		// Makes the allocation durable now, off the flusher's path.
		err = f.Sync()
	}
	var m Mapping
	if err == nil && p.mapped {
		if mp, ok := f.(Mapper); ok {
			m, err = mp.Map(size)
		} else {
			err = ErrNotMappable
		}
	}
	if err != nil {
		// The spare failed; err says why. A leftover is removed by the
		// next Open.
		_ = f.Close()
		_ = p.fsys.Remove(path)
		return spare{err: err}
	}
	return spare{path: path, f: f, m: m}
}

// take returns the next spare, waiting for it if need be.
func (p *pipeline) take() spare {
	select {
	case s := <-p.ready:
		return s
	case <-p.done:
		return spare{err: errors.New("wal: segment pipeline stopped")}
	}
}

// close stops the goroutine and removes an unused spare.
func (p *pipeline) close() {
	close(p.stop)
	<-p.done
}
