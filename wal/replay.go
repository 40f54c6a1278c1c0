package wal

import (
	"fmt"
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

	sr     segmentReader // its buffer is kept from segment to segment; records alias it
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
	if x := opts.ExpectSegment; x > 0 && (len(segs) == 0 || segs[len(segs)-1].first < x) {
		reason := fmt.Sprintf("the log was written up to segment %s, which is not there", segmentName(x))
		if !opts.SkipDamaged {
			return res, &CorruptError{File: segmentName(x), Reason: reason, Err: ErrMissingSegment}
		}
		r.info.SkippedSegments++
		r.info.MissingSegments = true
		logger.Warn("wal: "+reason+"; going on without it", slog.String("file", segmentName(x)))
		if opts.OnSkip != nil {
			defer opts.OnSkip(segmentName(x)) // after what is there: nothing follows it
		}
	}
	if segs, err = r.trimHeadlessTail(segs); err != nil {
		return replayResult{info: r.info}, err
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

// trimHeadlessTail removes the run of segments at the end of the log that
// hold nothing: no valid header and no valid frame. A power cut leaves them
// when segments were named durably but their contents were not (a mapped
// segment's header is in the page cache until the segment's first fsync):
// they carry no record, and are torn creations, like a last segment cut
// short as it was made. Only the tail is trimmed: a headless segment with
// data after it is damage.
func (r *replayer) trimHeadlessTail(segs []segInfo) ([]segInfo, error) {
	for len(segs) > 1 {
		s := segs[len(segs)-1]
		name := segmentName(s.first)
		path := filepath.Join(r.dir, name)
		f, err := r.fsys.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("wal: %w", err)
		}
		empty, end, err := r.headlessAndEmpty(f, s.first)
		_ = f.Close() // read-only
		if err != nil {
			return nil, fmt.Errorf("wal: read %s: %w", name, err)
		}
		if !empty {
			return segs, nil
		}
		if err := r.fsys.Remove(path); err != nil {
			return nil, fmt.Errorf("wal: remove torn segment: %w", err)
		}
		r.info.TornBytes += end
		r.logger.Warn("wal: removed a segment that a crash left without its header or any record",
			slog.String("file", name), slog.Int64("bytes", end))
		segs = segs[:len(segs)-1]
	}
	return segs, nil
}

// headlessAndEmpty reports whether the segment open in f, named first, has
// no valid header and no valid frame, and where its non-zero bytes end.
func (r *replayer) headlessAndEmpty(f File, first uint64) (bool, int64, error) {
	sr := &r.sr
	if err := sr.reset(f); err != nil {
		return false, 0, err
	}
	header, err := sr.at(0, segmentHeaderSize)
	if err != nil {
		return false, 0, err
	}
	if reason, err := checkSegmentHeader(header, first); err != nil || reason == "" {
		return false, 0, nil // a header, or another version: not ours to trim
	}
	end, err := sr.dataEnd(0)
	if err != nil {
		return false, 0, err
	}
	valid, err := sr.validFrameAfter(0, end)
	return !valid, end, err
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
	sr := &r.sr
	err = sr.reset(f)
	var header []byte
	if err == nil {
		header, err = sr.at(0, segmentHeaderSize)
	}
	if err != nil {
		return nil, false, fmt.Errorf("wal: read %s: %w", name, err)
	}
	r.info.Segments++

	switch {
	case r.expect == 0 && s.first > r.from+1:
		return nil, false, &CorruptError{File: name, Reason: fmt.Sprintf(
			"log starts at LSN %d but replay needs LSN %d", s.first, r.from+1)}
	case r.expect != 0 && s.first != r.expect && (!r.gapOK || s.first < r.expect):
		return nil, false, &CorruptError{File: name, Reason: fmt.Sprintf(
			"segment starts at LSN %d, previous segment ends before LSN %d", s.first, r.expect)}
	}
	r.expect, r.gapOK = s.first, false

	reason, err := checkSegmentHeader(header, s.first)
	if err != nil {
		return nil, false, fmt.Errorf("wal: %s: %w", name, err)
	}
	if reason != "" {
		return nil, last, r.badHeader(name, last, reason)
	}

	sr.off = segmentHeaderSize
	end, err := r.frames(name, last, limit, syncedThrough(header))
	if err != nil {
		return nil, false, err
	}
	s.bytes = end
	r.info.Bytes += end
	if !last {
		return nil, false, nil
	}
	return &segment{first: s.first, next: r.expect, size: end, f: f}, false, nil
}

// frames replays the frames from the reader's cursor on and returns where
// the clean data ends. In the last segment, damage before its synced-through
// offset (see syncedThrough) is damage; at or past it, and anywhere when no
// valid frame follows, it is a torn tail: pages written since the last
// fsync reach the disk in any order when the power fails, so a hole can lie
// before data that did reach it.
func (r *replayer) frames(name string, last bool, limit uint64, synced int64) (int64, error) {
	sr := &r.sr
	for {
		payload, n, ferr, err := sr.frame()
		if err != nil {
			return 0, fmt.Errorf("wal: read %s: %w", name, err)
		}
		off := sr.off
		if ferr == nil {
			bad, err := r.record(payload, limit)
			if err != nil {
				return 0, fmt.Errorf("wal: replay %s at offset %d: %w", name, off, err)
			}
			if bad != nil {
				return off, r.damage(name, off, last, bad.Reason, bad.Err)
			}
			sr.off += int64(n)
			continue
		}
		end, err := sr.dataEnd(off)
		if err != nil {
			return 0, fmt.Errorf("wal: read %s: %w", name, err)
		}
		if end == off {
			return off, nil // the end marker and zero-filled space
		}
		if last {
			if off >= synced {
				return off, r.torn(name, off, end)
			}
			valid, err := sr.validFrameAfter(off, end)
			if err != nil {
				return 0, fmt.Errorf("wal: read %s: %w", name, err)
			}
			if !valid {
				return off, r.torn(name, off, end)
			}
		}
		reason := ferr.Error()
		if ferr == ErrEndMarker {
			reason = "end marker before more data"
		}
		return off, r.damage(name, off, last, reason, ferr)
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

// torn truncates a torn write at off, so that appends and later recoveries
// see a clean end; its non-zero bytes end at end.
func (r *replayer) torn(name string, off, end int64) error {
	f := r.sr.f
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("wal: truncate torn tail of %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: truncate torn tail of %s: %w", name, err)
	}
	r.info.TornBytes += end - off
	r.logger.Warn("wal: truncated a torn write at the end of the log",
		slog.String("file", name), slog.Int64("offset", off), slog.Int64("bytes", end-off))
	return nil
}

// badHeader handles a segment whose header is unreadable. In the last
// segment with no valid frame after it, it is a segment whose creation was
// cut short: removed as torn.
func (r *replayer) badHeader(name string, last bool, reason string) error {
	path := filepath.Join(r.dir, name)
	if last {
		end, err := r.sr.dataEnd(0)
		var valid bool
		if err == nil {
			valid, err = r.sr.validFrameAfter(0, end)
		}
		if err != nil {
			return fmt.Errorf("wal: read %s: %w", name, err)
		}
		if !valid {
			if err := r.fsys.Remove(path); err != nil {
				return fmt.Errorf("wal: remove torn segment: %w", err)
			}
			r.info.TornBytes += end
			r.logger.Warn("wal: removed a segment torn during creation",
				slog.String("file", name), slog.Int64("bytes", end))
			return nil
		}
	}
	if err := r.damage(name, 0, false, reason, nil); err != nil || !last {
		return err
	}
	// A last segment without a header cannot be appended to.
	if err := r.preserve(name, 0); err != nil {
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
func (r *replayer) damage(name string, off int64, last bool, reason string, cause error) error {
	ce := &CorruptError{File: name, Offset: off, Reason: reason, Err: cause}
	if !r.opts.SkipDamaged {
		return ce
	}
	r.info.SkippedSegments++
	r.info.DamagedSegments = append(r.info.DamagedSegments, name)
	r.gapOK = true
	if r.opts.OnSkip != nil {
		r.opts.OnSkip(name)
	}
	r.logger.Warn("wal: skipping the rest of a damaged segment",
		slog.String("file", name), slog.Int64("offset", off), slog.String("reason", reason))
	if !last {
		return nil
	}
	if err := r.preserve(name, off); err != nil {
		return err
	}
	f := r.sr.f
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("wal: truncate damaged %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: truncate damaged %s: %w", name, err)
	}
	return nil
}

// preserve saves the segment's bytes from off to the end of its non-zero
// data as "<segment>.damaged" before they are cut.
func (r *replayer) preserve(name string, off int64) error {
	end, err := r.sr.dataEnd(off)
	if err != nil {
		return fmt.Errorf("wal: read %s: %w", name, err)
	}
	path := filepath.Join(r.dir, name+".damaged")
	f, err := r.fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return fmt.Errorf("wal: save damaged bytes: %w", err)
	}
	err = r.sr.copyTo(f, off, end)
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
