package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// replayResult is what Open needs from replay besides the ReplayInfo.
type replayResult struct {
	info    ReplayInfo
	lastLSN uint64    // last LSN found in the log; 0 if none
	segs    []segInfo // segment files left in the directory
	tail    *segment  // the last segment, open read-write at its clean end; nil if none
}

type replayer struct {
	fsys   FS
	dir    string
	opts   Options
	logger *slog.Logger
	from   uint64
	apply  func(*Record) error

	buf    []byte // one whole segment; records alias it
	rec    Record
	info   ReplayInfo
	expect uint64 // the LSN the next record must carry; 0 before the first segment
	gapOK  bool   // the previous segment was cut short by SkipDamaged
}

// replay reads the segments in LSN order, applying records above from.
// Segments whose records all lie at or below from are not opened.
func replay(fsys FS, dir string, opts Options, logger *slog.Logger, from uint64, apply func(*Record) error) (res replayResult, err error) {
	r := &replayer{fsys: fsys, dir: dir, opts: opts, logger: logger, from: from, apply: apply}
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return res, fmt.Errorf("wal: %w", err)
	}
	kept := make([]segInfo, 0, len(segs))
	for i := range segs {
		s := segs[i]
		last := i == len(segs)-1
		if !last && segs[i+1].first-1 <= from {
			r.expect, r.gapOK = segs[i+1].first, false
			kept = append(kept, s)
			continue
		}
		var limit uint64 // records here must stay below the next segment's first
		if !last {
			limit = segs[i+1].first
		}
		tail, removed, err := r.segment(&s, last, limit)
		if err != nil {
			return replayResult{info: r.info}, err
		}
		if !removed {
			kept = append(kept, s)
		}
		res.tail = tail
	}
	if r.expect > 0 {
		res.lastLSN = r.expect - 1
	}
	r.info.LastLSN = res.lastLSN
	res.info, res.segs = r.info, kept
	return res, nil
}

// segment replays one segment file, updating s.bytes to its valid length.
// For the last segment it returns the file, still open, or removed if the
// file was deleted because not even its header survived.
func (r *replayer) segment(s *segInfo, last bool, limit uint64) (tail *segment, removed bool, err error) {
	name := segmentName(s.first)
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := r.fsys.OpenFile(filepath.Join(r.dir, name), flag, 0)
	if err != nil {
		return nil, false, fmt.Errorf("wal: %w", err)
	}
	defer func() {
		if tail == nil {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("wal: %w", cerr)
			}
		}
	}()
	b, err := r.read(f)
	if err != nil {
		return nil, false, fmt.Errorf("wal: read %s: %w", name, err)
	}
	r.info.Segments++

	switch {
	case r.expect == 0 && s.first > r.from+1:
		return nil, false, &CorruptError{File: name, Reason: fmt.Sprintf(
			"log starts at LSN %d but replay needs LSN %d", s.first, r.from+1)}
	case r.expect != 0 && s.first != r.expect && !(r.gapOK && s.first > r.expect):
		return nil, false, &CorruptError{File: name, Reason: fmt.Sprintf(
			"segment starts at LSN %d, previous segment ends before LSN %d", s.first, r.expect)}
	}
	r.expect, r.gapOK = s.first, false

	reason, err := checkSegmentHeader(b, s.first)
	if err != nil {
		return nil, false, fmt.Errorf("wal: %s: %w", name, err)
	}
	if reason != "" {
		return nil, last, r.badHeader(f, name, b, last, reason)
	}

	off := segmentHeaderSize
	end, err := r.frames(f, name, b, last, limit, &off)
	if err != nil {
		return nil, false, err
	}
	s.bytes = int64(end)
	r.info.Bytes += int64(end)
	if !last {
		return nil, false, nil
	}
	return &segment{first: s.first, next: r.expect, size: int64(end), f: f}, false, nil
}

// frames replays the frames from *off and returns where the clean data ends.
func (r *replayer) frames(f File, name string, b []byte, last bool, limit uint64, off *int) (int, error) {
	for {
		payload, n, ferr := ReadFrame(b[*off:])
		if ferr == nil {
			bad, err := r.record(payload, limit)
			if err != nil {
				return 0, fmt.Errorf("wal: replay %s at offset %d: %w", name, *off, err)
			}
			if bad != nil {
				return *off, r.damage(f, name, b, *off, last, bad.Reason, bad.Err)
			}
			*off += n
			continue
		}
		if nonzeroEnd(b[*off:]) == 0 {
			return *off, nil // the end marker and zero-filled space
		}
		if last && !validFrameAfter(b, *off) {
			return *off, r.torn(f, name, b, *off)
		}
		reason := ferr.Error()
		if ferr == ErrEndMarker {
			reason = "end marker before more data"
		}
		return *off, r.damage(f, name, b, *off, last, reason, ferr)
	}
}

// record decodes, checks and applies one payload. It reports damage as a
// *CorruptError for the caller to place, and apply's error as err.
func (r *replayer) record(payload []byte, limit uint64) (bad *CorruptError, err error) {
	if err := DecodeRecord(payload, &r.rec); err != nil {
		return &CorruptError{Reason: "undecodable record", Err: err}, nil
	}
	lsn := r.rec.LSN
	if lsn != r.expect || (limit != 0 && lsn >= limit) {
		return &CorruptError{Reason: fmt.Sprintf("record has LSN %d, want %d", lsn, r.expect)}, nil
	}
	if lsn > r.from {
		if err := r.apply(&r.rec); err != nil {
			return nil, err
		}
		r.info.Records++
	}
	r.expect++
	return nil, nil
}

func (r *replayer) read(f File) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if int64(cap(r.buf)) < size {
		r.buf = make([]byte, size)
	}
	n, err := f.ReadAt(r.buf[:size], 0)
	if err == io.EOF {
		err = nil
	}
	return r.buf[:n], err
}

// torn truncates a torn write at off, so that appends and later recoveries
// see a clean end.
func (r *replayer) torn(f File, name string, b []byte, off int) error {
	n := nonzeroEnd(b[off:])
	if err := f.Truncate(int64(off)); err != nil {
		return fmt.Errorf("wal: truncate torn tail of %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: truncate torn tail of %s: %w", name, err)
	}
	r.info.TornBytes += int64(n)
	r.logger.Warn("wal: truncated a torn write at the end of the log",
		slog.String("file", name), slog.Int("offset", off), slog.Int("bytes", n))
	return nil
}

// badHeader handles a segment whose header is unreadable. In the last
// segment with no valid frame after it, it is a segment whose creation was
// cut short: removed as torn.
func (r *replayer) badHeader(f File, name string, b []byte, last bool, reason string) error {
	path := filepath.Join(r.dir, name)
	if last && !validFrameAfter(b, 0) {
		if err := r.fsys.Remove(path); err != nil {
			return fmt.Errorf("wal: remove torn segment: %w", err)
		}
		n := nonzeroEnd(b)
		r.info.TornBytes += int64(n)
		r.logger.Warn("wal: removed a segment torn during creation",
			slog.String("file", name), slog.Int("bytes", n))
		return nil
	}
	if err := r.damage(f, name, b, 0, false, reason, nil); err != nil || !last {
		return err
	}
	// A last segment without a header cannot be appended to.
	if err := r.preserve(name, b); err != nil {
		return err
	}
	if err := r.fsys.Remove(path); err != nil {
		return fmt.Errorf("wal: remove damaged segment: %w", err)
	}
	return r.fsys.SyncDir(r.dir)
}

// damage reports damage at off, or with SkipDamaged logs it, counts it and
// skips the rest of the segment. A damaged last segment is then cut at the
// damage, after its damaged bytes are saved, so appends can follow.
func (r *replayer) damage(f File, name string, b []byte, off int, last bool, reason string, cause error) error {
	ce := &CorruptError{File: name, Offset: int64(off), Reason: reason, Err: cause}
	if !r.opts.SkipDamaged {
		return ce
	}
	r.info.SkippedSegments++
	r.gapOK = true
	r.logger.Warn("wal: skipping the rest of a damaged segment",
		slog.String("file", name), slog.Int("offset", off), slog.String("reason", reason))
	if !last {
		return nil
	}
	if err := r.preserve(name, b[off:]); err != nil {
		return err
	}
	if err := f.Truncate(int64(off)); err != nil {
		return fmt.Errorf("wal: truncate damaged %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: truncate damaged %s: %w", name, err)
	}
	return nil
}

// preserve saves damaged bytes as "<segment>.damaged" before they are cut.
func (r *replayer) preserve(name string, b []byte) error {
	b = b[:nonzeroEnd(b)]
	path := filepath.Join(r.dir, name+".damaged")
	f, err := r.fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return fmt.Errorf("wal: save damaged bytes: %w", err)
	}
	err = writeAll(f, b, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: save damaged bytes: %w", err)
	}
	return nil
}

// nonzeroEnd returns the length of b without its trailing zero bytes.
func nonzeroEnd(b []byte) int {
	n := len(b)
	for n >= 8 && binary.LittleEndian.Uint64(b[n-8:]) == 0 {
		n -= 8
	}
	for n > 0 && b[n-1] == 0 {
		n--
	}
	return n
}

// validFrameAfter reports whether a frame with a matching CRC starts anywhere
// after off. That tells a torn tail (nothing valid follows) from damage in
// the middle of the log.
func validFrameAfter(b []byte, off int) bool {
	end := nonzeroEnd(b)
	for o := off + 1; o < end && o+HeaderSize < len(b); o++ {
		length := binary.LittleEndian.Uint32(b[o:])
		if length == 0 || length > MaxFrameSize || int64(length) > int64(len(b)-o-HeaderSize) {
			continue
		}
		payload := b[o+HeaderSize : o+HeaderSize+int(length)]
		if crc32.Checksum(payload, castagnoli) == binary.LittleEndian.Uint32(b[o+4:]) {
			return true
		}
	}
	return false
}
