package fuzz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sesscache/sesscache/wal"
)

// Segment header layout and format version, from wal's package comment
// (format constants).
const (
	walMagic      = "SESSWAL\x00"
	walHeaderSize = 32
	walVersion    = 3
)

// walSegment is one segment file: its name and contents.
type walSegment struct {
	name string
	data []byte
}

// FuzzWALReplay replays arbitrary bytes as a log: first as one segment, then
// cut before every segment magic into several. With and without
// SkipDamaged, wal.Open must
//
//   - not panic, and allocate at most allocBound(len(input));
//   - succeed, or fail with a *CorruptError or the unsupported-version error;
//   - hand apply only records whose canonical encoding is the payload of the
//     frame they came from, in file order and LSN order;
//   - on success, report what it applied, and leave a log that takes an
//     append and replays to the same records plus that append, with no torn
//     bytes left to repair.
func FuzzWALReplay(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		one := []walSegment{{name: segmentNameFor(b, 1), data: b}}
		checkReplay(t, one, len(b))
		if segs := splitSegments(b); len(segs) > 1 {
			checkReplay(t, segs, len(b))
		}
	})
}

// otherVersion reports whether seg starts with a well-formed segment header
// (magic and checksum right) of a format version other than walVersion.
func otherVersion(seg []byte) bool {
	return len(seg) >= walHeaderSize && string(seg[:8]) == walMagic &&
		crc32.Checksum(seg[:24], crc32.MakeTable(crc32.Castagnoli)) == binary.LittleEndian.Uint32(seg[24:]) &&
		binary.LittleEndian.Uint32(seg[8:]) != walVersion
}

// segmentName is the file name of the segment whose first LSN is first.
func segmentName(first uint64) string { return fmt.Sprintf("%016x.wal", first) }

// segmentNameFor names a segment after the first LSN in its header, so that a
// header that is otherwise valid is not rejected for its name, or after def
// when the header has no usable LSN.
func segmentNameFor(b []byte, def uint64) string {
	first := def
	if len(b) >= 24 {
		if v := binary.LittleEndian.Uint64(b[16:]); v != 0 {
			first = v
		}
	}
	return segmentName(first)
}

// splitSegments cuts b before each segment magic after its start, and
// returns the pieces in name order, the order replay reads them in. Pieces
// whose name another piece took already are dropped.
func splitSegments(b []byte) []walSegment {
	var segs []walSegment
	seen := map[string]bool{}
	for len(b) > 0 {
		n := bytes.Index(b[1:], []byte(walMagic)) + 1
		if n == 0 {
			n = len(b)
		}
		name := segmentNameFor(b[:n], uint64(len(segs)+1))
		if !seen[name] {
			seen[name] = true
			segs = append(segs, walSegment{name: name, data: b[:n]})
		}
		b = b[n:]
	}
	slices.SortFunc(segs, func(a, b walSegment) int { return strings.Compare(a.name, b.name) })
	return segs
}

// framePayloads returns the payloads of the frames a reader walking the
// segment from its header on would read, up to the first bad frame.
func framePayloads(seg []byte) [][]byte {
	var out [][]byte
	if len(seg) < walHeaderSize {
		return nil
	}
	for b := seg[walHeaderSize:]; ; {
		payload, n, err := wal.ReadFrame(b)
		if err != nil {
			return out
		}
		out = append(out, payload)
		b = b[n:]
	}
}

// replayed is what one wal.Open handed to apply.
type replayed struct {
	encs [][]byte // wal.AppendRecord of each record
	lsns []uint64
}

func (r *replayed) apply(rec *wal.Record) error {
	r.encs = append(r.encs, wal.AppendRecord(nil, rec))
	r.lsns = append(r.lsns, rec.LSN)
	return nil
}

const walDir = "/wal"

func walOptions(fsys wal.FS, skip bool) wal.Options {
	return wal.Options{
		Sync:        wal.SyncNo,
		SegmentSize: 4 << 10,
		SkipDamaged: skip,
		FS:          fsys,
		Logger:      slog.New(slog.DiscardHandler),
	}
}

func checkReplay(t *testing.T, segs []walSegment, n int) {
	t.Helper()
	for _, skip := range []bool{false, true} {
		fsys := newMemFS()
		if err := fsys.MkdirAll(walDir, 0o700); err != nil {
			t.Fatal(err)
		}
		want := make([][][]byte, len(segs))
		for i, s := range segs {
			fsys.put(filepath.Join(walDir, s.name), s.data)
			want[i] = framePayloads(s.data)
		}
		mode := fmt.Sprintf("%d segment(s), SkipDamaged %v", len(segs), skip)

		var got replayed
		var l *wal.Log
		var info wal.ReplayInfo
		var err error
		checkAllocs(t, "wal.Open ("+mode+")", n, func() {
			l, info, err = wal.Open(walDir, walOptions(fsys, skip), 0, got.apply)
			if err == nil {
				// Append one record so the reopen below shows where the log
				// continues; Close flushes it.
				err = appendOne(l, info)
				if cerr := l.Close(); err == nil && cerr != nil {
					err = fmt.Errorf("close: %w", cerr)
				}
				if err != nil {
					t.Fatalf("%s: log opened but %v", mode, err)
				}
			}
		})
		checkApplied(t, mode, &got, want, skip)
		// A segment header of another format version is never damage:
		// replay neither reads past it nor skips it, whatever SkipDamaged.
		var others []int
		for i, s := range segs {
			if otherVersion(s.data) {
				others = append(others, i)
			}
		}
		switch {
		case err == nil && len(others) > 0:
			t.Fatalf("%s: Open succeeded past segment %d, whose header is of format version %d",
				mode, others[0], binary.LittleEndian.Uint32(segs[others[0]].data[8:]))
		case len(others) > 0 && others[0] == 0 && segs[0].name == segmentName(1) && !errors.Is(err, wal.ErrUnsupportedVersion):
			t.Fatalf("%s: the first segment's header is of format version %d; Open says %v, want %v",
				mode, binary.LittleEndian.Uint32(segs[0].data[8:]), err, wal.ErrUnsupportedVersion)
		case len(others) == 0 && errors.Is(err, wal.ErrUnsupportedVersion):
			t.Fatalf("%s: no segment header is of another format version, but Open says %v", mode, err)
		}
		if err != nil {
			if !errors.Is(err, wal.ErrCorrupt) && !errors.Is(err, wal.ErrUnsupportedVersion) {
				t.Fatalf("%s: Open failed with an error that is neither corruption nor a version: %v", mode, err)
			}
			var ce *wal.CorruptError
			if errors.As(err, &ce) && ce.File == "" {
				t.Fatalf("%s: corruption error names no file: %v", mode, err)
			}
			continue
		}
		if info.Records != uint64(len(got.encs)) {
			t.Fatalf("%s: ReplayInfo.Records %d, applied %d", mode, info.Records, len(got.encs))
		}
		// LastLSN is the last record's LSN, or one below the first LSN of
		// the last segment replay accepted. Only SkipDamaged accepts a
		// segment that starts past the LSN it expects (after skipping the
		// rest of a damaged one), so only then can it exceed the last
		// record applied.
		var lastApplied uint64
		if k := len(got.lsns); k > 0 {
			lastApplied = got.lsns[k-1]
		}
		if info.LastLSN < lastApplied || (!skip && info.LastLSN != lastApplied) {
			t.Fatalf("%s: ReplayInfo.LastLSN %d, last applied %d", mode, info.LastLSN, lastApplied)
		}

		// Whatever the first Open repaired, the log it left replays cleanly
		// to the same records and the one appended.
		var again replayed
		var info2 wal.ReplayInfo
		checkAllocs(t, "wal.Open again ("+mode+")", n, func() {
			l, info2, err = wal.Open(walDir, walOptions(fsys, skip), 0, again.apply)
			if err == nil {
				err = l.Close()
			}
		})
		if err != nil {
			t.Fatalf("%s: reopening the log Open left fails: %v", mode, err)
		}
		if info2.TornBytes != 0 || (!skip && info2.SkippedSegments != 0) {
			t.Fatalf("%s: reopened log still needs repair: %+v", mode, info2)
		}
		last := appendedRecord(info.LastLSN + 1)
		wantAgain := append(got.encs[:len(got.encs):len(got.encs)], wal.AppendRecord(nil, &last))
		if len(again.encs) != len(wantAgain) {
			t.Fatalf("%s: reopened log replays %d records, want %d", mode, len(again.encs), len(wantAgain))
		}
		for i := range wantAgain {
			if !bytes.Equal(again.encs[i], wantAgain[i]) {
				t.Fatalf("%s: reopened log's record %d is\n %x\nwant\n %x", mode, i, again.encs[i], wantAgain[i])
			}
		}
	}
}

// checkApplied checks that the applied records, in order, are the payloads
// of frames of the segments, in order: a run from the start of each segment
// (a damaged segment stops early, and SkipDamaged moves on to the next).
func checkApplied(t *testing.T, mode string, got *replayed, want [][][]byte, skip bool) {
	t.Helper()
	s, i := 0, 0
	for k, enc := range got.encs {
		for s < len(want) && (i >= len(want[s]) || !bytes.Equal(want[s][i], enc)) {
			s, i = s+1, 0
		}
		if s == len(want) {
			t.Fatalf("%s: applied record %d re-encodes to\n %x\nwhich is not the next frame of any segment", mode, k, enc)
		}
		i++
		if k > 0 {
			prev, lsn := got.lsns[k-1], got.lsns[k]
			if (!skip && lsn != prev+1) || lsn <= prev {
				t.Fatalf("%s: applied LSN %d after %d", mode, lsn, prev)
			}
		} else if !skip && got.lsns[0] != 1 {
			t.Fatalf("%s: first applied LSN %d, want 1", mode, got.lsns[0])
		}
	}
}

// appendedRecord is the record appendOne appends, with its LSN.
func appendedRecord(lsn uint64) wal.Record {
	return wal.Record{Op: wal.OpPut, Key: wal.Key{Digest: [16]byte{0xfe}, Hint: 7}, Version: 1,
		Created: 1, LastAccess: 1, Idle: 1, Absolute: 2, Data: []byte("appended"), LSN: lsn}
}

// appendOne appends appendedRecord to a log just opened, and checks that it
// continues right after the replay.
func appendOne(l *wal.Log, info wal.ReplayInfo) error {
	var p wal.Pending
	r := appendedRecord(0)
	if err := p.Encode(&r); err != nil {
		return err
	}
	lsn, err := l.Append(&p)
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if lsn != info.LastLSN+1 {
		return fmt.Errorf("append got LSN %d after a replay that ended at %d", lsn, info.LastLSN)
	}
	return nil
}
