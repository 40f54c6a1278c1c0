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
	"sync"
	"testing"

	"github.com/sesscache/sesscache/snapshot"
	"github.com/sesscache/sesscache/wal"
)

// Snapshot file layout, from snapshot's package comment (format constants).
const (
	snapHeaderSize  = 40
	snapTrailerSize = 32
	snapEntrySize   = 12
)

// FuzzSnapshotLoad loads arbitrary bytes as a snapshot file. snapshot.Load
// must
//
//   - not panic, and allocate at most allocBound(len(input));
//   - fail with a *CorruptError naming the file, or ErrUnsupportedVersion,
//     and then make no apply call;
//   - agree with a verifying Load (nil apply) on whether the file is good;
//   - on success hand apply only Puts of the snapshot's LSN, as many as it
//     reports, whose canonical encodings are exactly the payloads of the
//     file's frames.
func FuzzSnapshotLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys := newMemFS()
		path := filepath.Join("/snapshots", snapshotNameFor(b))
		fsys.put(path, b)
		opts := snapshot.Options{FS: fsys, Workers: 2, Logger: slog.New(slog.DiscardHandler)}

		var mu sync.Mutex
		var encs [][]byte
		var odd []string
		var info snapshot.Info
		var err error
		checkAllocs(t, "snapshot.Load", len(b), func() {
			info, err = snapshot.Load(path, opts, func(r *wal.Record) error {
				enc := wal.AppendRecord(nil, r)
				mu.Lock()
				defer mu.Unlock()
				encs = append(encs, enc)
				if r.Op != wal.OpPut {
					odd = append(odd, fmt.Sprintf("a %v record", r.Op))
				}
				if len(b) >= 24 && r.LSN != binary.LittleEndian.Uint64(b[16:]) {
					odd = append(odd, fmt.Sprintf("LSN %d", r.LSN))
				}
				return nil
			})
		})
		_, verr := snapshot.Load(path, opts, nil)
		if (err == nil) != (verr == nil) {
			t.Fatalf("Load says %v, a verifying Load says %v", err, verr)
		}
		// A well-formed header of another format version is never damage,
		// and nothing else is a version error.
		if v, other := snapshotOtherVersion(b); other != errors.Is(err, snapshot.ErrUnsupportedVersion) {
			t.Fatalf("the header is well-formed and of another format version (%d): %v; Load says %v", v, other, err)
		}
		if err != nil {
			var ce *snapshot.CorruptError
			switch {
			case errors.As(err, &ce) && ce.File == "":
				t.Fatalf("corruption error names no file: %v", err)
			case ce == nil && !errors.Is(err, snapshot.ErrUnsupportedVersion):
				t.Fatalf("Load failed with an error that is neither corruption nor a version: %v", err)
			case len(encs) > 0:
				t.Fatalf("Load failed (%v) after %d apply calls", err, len(encs))
			}
			return
		}
		if len(odd) > 0 {
			t.Fatalf("Load applied %s", odd[0])
		}
		switch {
		case info.LSN != binary.LittleEndian.Uint64(b[16:]):
			t.Fatalf("Info.LSN %d, header says %d", info.LSN, binary.LittleEndian.Uint64(b[16:]))
		case info.Sessions != uint64(len(encs)):
			t.Fatalf("Info.Sessions %d, applied %d", info.Sessions, len(encs))
		case info.Bytes != int64(len(b)):
			t.Fatalf("Info.Bytes %d, file has %d", info.Bytes, len(b))
		}
		want := snapshotPayloads(b)
		slices.SortFunc(encs, bytes.Compare)
		slices.SortFunc(want, bytes.Compare)
		if len(encs) != len(want) {
			t.Fatalf("applied %d records, the file holds %d frames", len(encs), len(want))
		}
		for i := range want {
			if !bytes.Equal(encs[i], want[i]) {
				t.Fatalf("an applied record re-encodes to\n %x\nwhich is not a payload in the file, such as\n %x", encs[i], want[i])
			}
		}
	})
}

// snapshotOtherVersion returns the format version in b's header and whether
// that header is well-formed (long enough for a snapshot, magic and
// checksum right) and of a version other than snapshotVersion (and not 0,
// which was never written and is damage).
func snapshotOtherVersion(b []byte) (uint32, bool) {
	if len(b) < snapHeaderSize+snapTrailerSize || string(b[:8]) != "SESSNAP\x00" ||
		crc32.Checksum(b[:32], crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(b[32:]) {
		return 0, false
	}
	v := binary.LittleEndian.Uint32(b[8:])
	return v, v != 0 && v != snapshotVersion
}

// snapshotNameFor names a snapshot after the LSN in its header, or LSN 1.
func snapshotNameFor(b []byte) string {
	lsn := uint64(1)
	if len(b) >= 24 {
		if v := binary.LittleEndian.Uint64(b[16:]); v != 0 {
			lsn = v
		}
	}
	return fmt.Sprintf("%016x.snap", lsn)
}

// snapshotPayloads returns the payloads of the frames between a valid
// snapshot's header and its chunk table, read front to back.
func snapshotPayloads(b []byte) [][]byte {
	chunks := binary.LittleEndian.Uint32(b[len(b)-snapTrailerSize+24:])
	tableAt := len(b) - snapTrailerSize - snapEntrySize*int(chunks)
	var out [][]byte
	for p := b[snapHeaderSize:tableAt]; len(p) > 0; {
		payload, n, err := wal.ReadFrame(p)
		if err != nil {
			return append(out, []byte("unreadable frame"))
		}
		out = append(out, payload)
		p = p[n:]
	}
	return out
}
