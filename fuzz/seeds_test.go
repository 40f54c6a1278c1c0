package fuzz

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesscache/sesscache/snapshot"
	"github.com/sesscache/sesscache/token"
	"github.com/sesscache/sesscache/wal"
)

var writeSeeds = flag.Bool("seeds", false, "rewrite the generated seed corpora in testdata/fuzz")

// seed is one generated corpus entry: a file seed-<name> holding value.
type seed struct {
	name  string
	value any // []byte or string, the target's argument
}

// TestSeedsAreCurrent regenerates the seed corpora from the real writers
// and checks that the committed files under testdata/fuzz are what it
// makes, so that a change to a format cannot leave the targets fuzzing
// inputs of the old one. Run with -seeds to rewrite them. Files not named
// seed-* (regression inputs, crashers) are left alone, except FuzzEngine's
// past findings, which engineRegressions writes in the current program
// format under their regression-* names.
func TestSeedsAreCurrent(t *testing.T) {
	corpora := map[string][]seed{
		"FuzzWALReplay":    walSeeds(t),
		"FuzzSnapshotLoad": snapshotSeeds(t),
		"FuzzTokenParse":   tokenParseSeeds(),
		"FuzzTokenVerify":  tokenVerifySeeds(t),
		"FuzzEngine":       engineSeeds(),
	}
	for target, seeds := range corpora {
		dir := filepath.Join("testdata", "fuzz", target)
		want := map[string]bool{}
		for _, s := range seeds {
			want["seed-"+s.name] = true
			checkCorpusFile(t, dir, "seed-"+s.name, s.value)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "seed-") && !want[e.Name()] {
				path := filepath.Join(dir, e.Name())
				if *writeSeeds {
					if err := os.Remove(path); err != nil {
						t.Fatal(err)
					}
					continue
				}
				t.Errorf("%s is no longer generated; rewrite the seeds: go test ./fuzz -run TestSeedsAreCurrent -seeds", path)
			}
		}
	}
	for _, s := range engineRegressions() {
		checkCorpusFile(t, filepath.Join("testdata", "fuzz", "FuzzEngine"), "regression-"+s.name, s.value)
	}
}

// checkCorpusFile checks that dir/name holds value, or with -seeds writes it.
func checkCorpusFile(t *testing.T, dir, name string, value any) {
	t.Helper()
	path := filepath.Join(dir, name)
	content := corpusFile(value)
	if *writeSeeds {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("%s is missing or stale; rewrite the seeds: go test ./fuzz -run TestSeedsAreCurrent -seeds", path)
	}
}

// corpusFile encodes one argument as `go test -fuzz` stores it.
func corpusFile(v any) []byte {
	switch v := v.(type) {
	case []byte:
		return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", v)
	case string:
		return fmt.Appendf(nil, "go test fuzz v1\nstring(%q)\n", v)
	}
	panic(fmt.Sprintf("no corpus encoding for %T", v))
}

// seedRecords returns n records of every op, with field values around the
// codec's boundaries (fixint, negative ints, fixstr/str8/str16, bin16), LSNs
// from first. Every third Put is sealed as the engine seals it: its key ID
// set, its other fields zero and its data opaque.
func seedRecords(n int, first uint64) []wal.Record {
	rng := rand.New(rand.NewPCG(1, first))
	recs := make([]wal.Record, n)
	for i := range recs {
		var k wal.Key
		for j := range k.Digest {
			k.Digest[j] = byte(rng.Uint32())
		}
		k.Hint = []uint16{0, 0x7f, 0x80, 0xffff}[i%4]
		put := wal.Record{Op: wal.OpPut, Key: k, Version: []uint64{1, 127, 128, 1 << 40}[i%4],
			Created: 1767225600000000000 + int64(i), LastAccess: 1767225600000000000 + int64(2*i),
			Idle: int64(30 * time.Minute), Absolute: []int64{-1, 0, 1 << 62, 1767312000000000000}[i%4],
			UserID: []byte(strings.Repeat("u", []int{0, 5, 31, 32}[i%4])), SealKeyID: uint32(i % 2),
			Data: bytes.Repeat([]byte{byte(i)}, []int{0, 1, 40, 256}[i%4]), Fingerprint: []uint64{0, 1 << 63}[i%2],
			AuthAt: []int64{0, 1767225600000000000 + int64(i), -1, 1 << 62}[i%4],
			Label:  []byte(strings.Repeat("l", []int{0, 3, 31, 300}[i%4]))}
		if i%3 == 2 {
			put = wal.Record{Op: wal.OpPut, Key: k, SealKeyID: uint32(1 + i%2),
				Data: bytes.Repeat([]byte{byte(i), 0x5e}, 60+i)}
		}
		switch i % 5 {
		case 0, 1:
			recs[i] = put
		case 2:
			recs[i] = wal.Record{Op: wal.OpDelete, Key: k}
		case 3:
			recs[i] = wal.Record{Op: wal.OpTouch, Key: k, LastAccess: -5 + int64(i)}
		case 4:
			put.Data = put.Data[:min(len(put.Data), 8)]
			recs[i] = wal.Record{Op: wal.OpBatch, Ops: []wal.Record{{Op: wal.OpDelete, Key: k}, put}}
		}
		recs[i].LSN = first + uint64(i)
	}
	return recs
}

// writeLog appends recs to a new log on an in-memory file system, rolling
// to a new segment after every rollEvery records (never if 0), and returns
// the segments in order, each cut after its last non-zero byte (but not
// inside its header): the preallocated space is left out.
func writeLog(t *testing.T, recs []wal.Record, rollEvery int) [][]byte {
	t.Helper()
	fsys := newMemFS()
	opts := wal.Options{Sync: wal.SyncNo, SegmentSize: 64 << 10, FS: fsys, Logger: slog.New(slog.DiscardHandler)}
	l, _, err := wal.Open(walDir, opts, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var p wal.Pending
	for i := range recs {
		if err := p.Encode(&recs[i]); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(&p); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if rollEvery > 0 && (i+1)%rollEvery == 0 && i+1 < len(recs) {
			if _, err := l.Roll(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := fsys.ReadDir(walDir)
	if err != nil {
		t.Fatal(err)
	}
	var segs [][]byte
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".wal") {
			b := fsys.get(filepath.Join(walDir, e.Name()))
			n := len(b)
			for n > walHeaderSize && b[n-1] == 0 {
				n--
			}
			segs = append(segs, b[:n])
		}
	}
	return segs
}

// frames returns the framed payloads of recs, with their own LSNs.
func frames(recs ...wal.Record) []byte {
	var b []byte
	for i := range recs {
		b = wal.AppendFrame(b, wal.AppendRecord(nil, &recs[i]))
	}
	return b
}

// segmentHeader returns a valid segment header for first, of the given
// format version.
func segmentHeader(first uint64, version uint32) []byte {
	b := []byte(walMagic)
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, first)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	return binary.LittleEndian.AppendUint32(b, 0)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// frameHeader is a frame header claiming length bytes, followed by junk.
func frameHeader(length uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, length)
	return append(b, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
}

func walSeeds(t *testing.T) []seed {
	recs := seedRecords(15, 1)
	one := writeLog(t, recs, 0)
	if len(one) != 1 {
		t.Fatalf("one segment expected, got %d", len(one))
	}
	seg := one[0]
	three := writeLog(t, recs, 5)
	if len(three) != 3 {
		t.Fatalf("three segments expected, got %d", len(three))
	}
	empty := writeLog(t, nil, 0)[0]
	head := segmentHeader(1, walVersion)
	// The last four bytes, the synced-through offset, change after the
	// header is written (outside its checksum); the rest is fixed.
	if fixed := walHeaderSize - 4; !bytes.Equal(head[:fixed], empty[:fixed]) || !bytes.Equal(head[:fixed], seg[:fixed]) {
		t.Fatalf("the log writes a header other than the format says:\n %x\n %x", empty, head)
	}
	firstFrames := len(cat(head, frames(recs[:7]...))) // end of the 7th frame
	rest := seg[firstFrames:]

	checksum := bytes.Clone(seg)
	checksum[firstFrames+12] ^= 0x40 // in the payload of the 8th frame

	gap := recs[:6:6]
	gap = append(gap, recs[7:]...) // record 7 missing: LSN 8 follows 6

	// A Delete whose hint, 0x80, is a uint16 instead of a uint8. The hint
	// follows the array header, the op and the 18-byte digest.
	payload := wal.AppendRecord(nil, &recs[2])
	if !bytes.Equal(payload[20:22], []byte{0xcc, 0x80}) {
		t.Fatalf("unexpected Delete encoding %x", payload)
	}
	nonCanonical := cat(payload[:20], []byte{0xcd, 0x00, 0x80}, payload[22:])

	nested := wal.Record{Op: wal.OpBatch, LSN: 1, Ops: []wal.Record{{Op: wal.OpBatch, Ops: []wal.Record{recs[2]}}}}
	badLast := bytes.Clone(three[2])
	badLast[24] ^= 1                  // header CRC
	newerMid := bytes.Clone(three[1]) // a well-formed header of the next version
	binary.LittleEndian.PutUint32(newerMid[8:], walVersion+1)
	binary.LittleEndian.PutUint32(newerMid[24:], crc32.Checksum(newerMid[:24], crc32.MakeTable(crc32.Castagnoli)))

	return []seed{
		{"empty-log", empty},
		{"empty-log-preallocated", cat(empty, make([]byte, 1024))},
		{"one-segment", seg},
		{"one-segment-preallocated", cat(seg, make([]byte, 512))},
		{"three-segments", cat(three...)},
		{"three-segments-last-header-damaged", cat(three[0], three[1], badLast)},
		{"three-segments-middle-version-4", cat(three[0], newerMid, three[2])},
		{"segments-out-of-order", cat(three[1], three[0], three[2])},
		{"torn-frame", seg[:len(seg)-7]},
		{"torn-header", seg[:20]},
		{"frame-length-4GiB-at-end", cat(seg, frameHeader(0xffffffff))},
		{"frame-length-4GiB-mid", cat(seg[:firstFrames], frameHeader(0xffffffff), rest)},
		{"frame-length-max", cat(seg, frameHeader(wal.MaxFrameSize))},
		{"frame-length-max-plus-one-mid", cat(seg[:firstFrames], frameHeader(wal.MaxFrameSize+1), rest)},
		{"checksum-mid", checksum},
		{"zero-hole", cat(seg[:firstFrames], make([]byte, 64), rest)},
		// The header says only the first 7 frames were fsynced: the same
		// hole is then a power cut's torn tail, not damage.
		{"zero-hole-past-synced", cat(head[:walHeaderSize-4], binary.LittleEndian.AppendUint32(nil, uint32(firstFrames)),
			seg[walHeaderSize:firstFrames], make([]byte, 64), rest)},
		{"lsn-gap", cat(head, frames(gap...))},
		{"non-canonical-record", cat(head, frames(recs[:2]...), wal.AppendFrame(nil, nonCanonical), frames(recs[3:5]...))},
		{"nested-batch", cat(head, frames(nested))},
		{"version-2", cat(segmentHeader(1, walVersion-1), frames(recs[:3]...))},
		{"version-4", cat(segmentHeader(1, walVersion+1), frames(recs[:3]...))},
		{"bad-magic", cat([]byte("SESSWAL\x01"), seg[8:])},
		{"first-lsn-5", cat(segmentHeader(5, walVersion), frames(seedRecords(3, 5)...))},
	}
}

// snapshotOf writes a snapshot of recs, in chunks fill indices, on an
// in-memory file system and returns the file.
func snapshotOf(t *testing.T, lsn uint64, recs []wal.Record, chunks int) []byte {
	t.Helper()
	fsys := newMemFS()
	opts := snapshot.Options{FS: fsys, Workers: 2, Logger: slog.New(slog.DiscardHandler)}
	per := (len(recs) + chunks - 1) / max(chunks, 1)
	info, err := snapshot.Write("/snapshots", lsn, start, chunks, func(c int, add func(*wal.Record) error) error {
		for i := c * per; i < min(len(recs), (c+1)*per); i++ {
			if err := add(&recs[i]); err != nil {
				return err
			}
		}
		return nil
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return fsys.get(info.Path)
}

// snapshotVersion is the snapshot format version the seeds are built in.
const snapshotVersion = 3

// buildSnapshot lays out a snapshot file by hand, following the format in
// snapshot's package comment, from chunks of payloads, so that a seed can
// hold records Write refuses to write. counts overrides a chunk's record
// count in the table when not negative.
func buildSnapshot(lsn uint64, chunks [][][]byte, counts ...int) []byte {
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	b := []byte("SESSNAP\x00")
	b = binary.LittleEndian.AppendUint32(b, snapshotVersion)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, lsn)
	b = binary.LittleEndian.AppendUint64(b, uint64(start.UnixNano()))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	b = binary.LittleEndian.AppendUint32(b, 0)
	var table []byte
	var total uint64
	for i, c := range chunks {
		var fr []byte
		for _, p := range c {
			fr = wal.AppendFrame(fr, p)
		}
		b = append(b, fr...)
		n := len(c)
		if i < len(counts) && counts[i] >= 0 {
			n = counts[i]
		}
		total += uint64(n)
		table = binary.LittleEndian.AppendUint32(table, uint32(len(fr)))
		table = binary.LittleEndian.AppendUint32(table, uint32(n))
		table = binary.LittleEndian.AppendUint32(table, crc32.Checksum(fr, castagnoli))
	}
	trailer := []byte("SNAPEND\x00")
	trailer = binary.LittleEndian.AppendUint64(trailer, total)
	trailer = binary.LittleEndian.AppendUint64(trailer, lsn)
	trailer = binary.LittleEndian.AppendUint32(trailer, uint32(len(chunks)))
	crc := crc32.Update(crc32.Checksum(table, castagnoli), castagnoli, trailer)
	trailer = binary.LittleEndian.AppendUint32(trailer, crc)
	return cat(b, table, trailer)
}

// refooter recomputes the footer CRC of a snapshot whose chunk table was
// edited, so that a seed reaches the checks behind it.
func refooter(b []byte) []byte {
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	b = bytes.Clone(b)
	chunks := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	tableAt := len(b) - snapTrailerSize - snapEntrySize*chunks
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[tableAt:len(b)-4], castagnoli))
	return b
}

// puts returns n Put records of LSN lsn.
func puts(n int, lsn uint64) []wal.Record {
	var out []wal.Record
	for _, r := range seedRecords(5*n, 1) {
		if r.Op == wal.OpPut && len(out) < n {
			r.LSN = lsn
			out = append(out, r)
		}
	}
	return out
}

func payloads(recs ...wal.Record) [][]byte {
	var out [][]byte
	for i := range recs {
		out = append(out, wal.AppendRecord(nil, &recs[i]))
	}
	return out
}

func snapshotSeeds(t *testing.T) []seed {
	const lsn = 0x40
	many := snapshotOf(t, lsn, puts(24, lsn), 4)
	if got := binary.LittleEndian.Uint32(many[len(many)-8:]); got < 4 {
		t.Fatalf("snapshot of 4 fill chunks has %d file chunks", got)
	}
	recs := puts(3, lsn)
	hand := buildSnapshot(lsn, [][][]byte{payloads(recs[:2]...), payloads(recs[2])})
	if !bytes.Equal(hand, snapshotOf(t, lsn, recs, 2)) {
		t.Fatal("buildSnapshot lays out a file other than snapshot.Write")
	}
	del := seedRecords(3, lsn)[2] // a Delete
	other := recs[0]
	other.LSN = lsn + 1
	// A Put whose hint, 0x7f, is a uint8 instead of a positive fixint.
	canonical := payloads(recs[1])[0]
	if canonical[20] != 0x7f {
		t.Fatalf("unexpected Put encoding %x", canonical)
	}
	nonCanonical := cat(canonical[:20], []byte{0xcc}, canonical[20:])

	chunk4G := bytes.Clone(many)
	tableAt := len(many) - snapTrailerSize - snapEntrySize*int(binary.LittleEndian.Uint32(many[len(many)-8:]))
	binary.LittleEndian.PutUint32(chunk4G[tableAt:], 0xffffffff)
	chunkMax := bytes.Clone(many)
	binary.LittleEndian.PutUint32(chunkMax[tableAt:], snapshot.MaxChunkSize)
	chunks4G := bytes.Clone(many)
	binary.LittleEndian.PutUint32(chunks4G[len(many)-8:], 0xffffffff)
	withVersion := func(v uint32) []byte {
		b := bytes.Clone(many)
		binary.LittleEndian.PutUint32(b[8:], v)
		binary.LittleEndian.PutUint32(b[32:], crc32.Checksum(b[:32], crc32.MakeTable(crc32.Castagnoli)))
		return b
	}

	return []seed{
		{"empty", snapshotOf(t, lsn, nil, 2)},
		{"one-record", snapshotOf(t, lsn, puts(1, lsn), 1)},
		{"many-records-4-chunks", many},
		{"hand-built", hand},
		{"truncated", many[:len(many)-10]},
		{"header-only", many[:snapHeaderSize]},
		{"chunk-length-4GiB", refooter(chunk4G)},
		{"chunk-length-max", refooter(chunkMax)},
		{"chunk-count-4G", chunks4G},
		{"newer-version", withVersion(snapshotVersion + 1)},
		{"older-version", withVersion(snapshotVersion - 1)},
		{"version-0", withVersion(0)},
		{"delete-record", buildSnapshot(lsn, [][][]byte{payloads(recs[0], del)})},
		{"record-of-another-lsn", buildSnapshot(lsn, [][][]byte{payloads(recs[1], other)})},
		{"count-mismatch", buildSnapshot(lsn, [][][]byte{payloads(recs...)}, 2)},
		{"empty-chunk", buildSnapshot(lsn, [][][]byte{payloads(recs[0]), nil})},
		{"non-canonical-record", buildSnapshot(lsn, [][][]byte{{payloads(recs[0])[0], nonCanonical}})},
	}
}

func tokenParseSeeds() []seed {
	id := token.ID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	s := id.String()
	return []seed{
		{"valid", s},
		{"zero", token.ID{}.String()},
		{"all-ones", token.ID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}.String()},
		{"padding-bits-set", s[:21] + "x"},
		{"short", s[:21]},
		{"long", s + "A"},
		{"padded", s + "=="},
		{"std-alphabet", strings.NewReplacer("-", "+", "_", "/").Replace("-_" + s[2:])},
		{"non-ascii", s[:20] + "é"},
		{"empty", ""},
	}
}

func tokenVerifySeeds(t *testing.T) []seed {
	id := token.ID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	a, b, c := mustSigner(t, keyA).Sign(id), mustSigner(t, keyB).Sign(id), mustSigner(t, keyC).Sign(id)
	return []seed{
		{"signed-by-signing-key", a},
		{"signed-by-verifying-key", b},
		{"signed-by-another-key", c},
		{"tag-altered", a[:token.SignedLen-1] + "B"},
		{"tag-padding-bits", a[:token.SignedLen-1] + string(a[token.SignedLen-1]+1)},
		{"no-dot", a[:token.Len] + "~" + a[token.Len+1:]},
		{"id-only", id.String()},
		{"tag-of-another-id", token.ID{1}.String() + a[token.Len:]},
		{"empty", ""},
	}
}

// engineProgram builds a FuzzEngine input.
type engineProgram []byte

// newProgram starts a program with its two configuration bytes.
func newProgram(a, b byte) engineProgram { return engineProgram{a, b} }

func (p engineProgram) op(op int, args ...byte) engineProgram {
	return append(append(p, byte(op)), args...)
}

// create adds a Create: a from createArg, a data length and a label index.
func (p engineProgram) create(a byte, n, label int) engineProgram {
	return p.op(opCreate, a, byte(n), byte(label))
}

// createArg packs Create's first argument byte (see run.create).
func createArg(user, idle, abs, fp int) byte { return byte(user + 5*idle + 20*abs + 80*fp) }

// rotateArg packs RotateWith's options (see run.rotate); 0 is a plain Rotate.
func rotateArg(owner int, privileged bool, label int) byte {
	return byte(owner + 5*b2i(privileged) + 10*label)
}

// Configuration bits (see the program format in engine_test.go).
const (
	cGrace       = 1
	cCap1        = 1 << 1
	cCap2        = 2 << 1
	cSnapOnClose = 8
	cJanitor     = 16
	cSigned      = 32
	cEncrypted   = 64
	cMemFS       = 128

	cMax2     = 1
	cMax3     = 2
	cMax6     = 3
	cAnon1    = 1 << 2
	cAnon2    = 2 << 2
	cEverySec = 1 << 4
	cAlways   = 2 << 4
	cTouch3   = 64
	cOneShard = 128
)

// Argument values, by index in the tables of engine_test.go.
const (
	u1, u2, u3, uLong = 1, 2, 3, 4
	nobody            = 4       // in revokeUsers
	sec, minute, hour = 1, 2, 3 // idles
	abs2s, abs90s     = 1, 2    // absolutes
	fp1, fp2          = 1, 2
	lPhone, lFirefox  = 1, 2
	lLong             = 3
	a1ms, a400ms, a1s = 0, 1, 2 // advances
	a2s, a61s, aIdle  = 3, 4, 5
	a1h, a25h         = 6, 7
	dPast, dNow       = 0, 1 // deadlines
	d1ns, d2s, d90s   = 2, 3, 4
	d1h, d30h         = 5, 6
	malformed         = 15 // a target
	unknown           = 14
	hZero, hUnknown   = 7, 6 // handle targets
)

func engineSeeds() []seed {
	basic := newProgram(0, 0).
		create(createArg(u1, 0, 0, 0), 10, lPhone).op(opGet, 0).op(opUpdate, 0, 1, 20).op(opGet, 0).
		op(opUpdate, 0, 3, 5).op(opUpdate, 0, 4, 5).op(opUpdate, 0, 0, 70).op(opSetDeadline, 0, d1h).op(opGet, 0).
		op(opDelete, 0).op(opGet, 0).op(opGet, malformed).op(opGet, unknown).op(opDelete, 0).op(opDelete, malformed).
		create(createArg(0, 0, 0, fp1), 3, 0).op(opGet, 1).op(opGetBound, 1, fp1).op(opGetBound, 1+16, fp2).
		op(opGetBound, 1, 0).create(createArg(uLong, 0, 0, 0), 1, 0).create(createArg(u1, 0, 0, 0), 1, lLong).
		create(createArg(0, 0, 0, 0), 70, 0).op(opUserSessions, u1).op(opSnapshot)
	expiry := newProgram(0, 0).
		create(createArg(0, sec, 0, 0), 3, 0).create(createArg(u2, minute, abs2s, 0), 4, lFirefox).
		op(opAdvance, a400ms).op(opGet, 0).op(opAdvance, a1s).op(opGet, 0).op(opGet, 1).
		op(opAdvance, a2s).op(opGet, 1).op(opUpdate, 1, 0, 1).op(opSetDeadline, 1, d1h).op(opRotate, 1, 0).
		op(opDelete, 0).op(opUserSessions, u2).op(opAdvance, aIdle).op(opGetAll).
		create(createArg(u3, hour, 0, 0), 5, 0).op(opSetDeadline, 2, dPast).op(opSetDeadline, 2, dNow).
		op(opSetDeadline, 2, d2s).op(opAdvance, a1s).op(opGet, 2).op(opSetDeadline, 2, d30h).op(opAdvance, a25h).
		op(opGet, 2).op(opSetDeadline, 2, d2s).op(opAdvance, a2s).op(opGet, 2).op(opSetDeadline, 2, d1h).
		op(opSetDeadline, malformed, dPast).op(opSetDeadline, unknown, dPast)
	rotate := newProgram(cGrace, 0).
		create(createArg(u1, 0, 0, fp1), 8, lPhone).op(opRotate, 0, 0).op(opGet, 0).op(opGetBound, 0, fp1).
		op(opGetBound, 0, fp2).op(opUpdate, 0, 0, 3).op(opSetDeadline, 0, d1h).op(opRotate, 0, 0).op(opDelete, 0).
		op(opGetBound, 0, fp1).op(opRotate, 1, 0).op(opGetBound, 1, fp1).op(opGetBound, 0, fp1).
		create(createArg(0, 0, 0, 0), 4, lFirefox).op(opRotate, 3, 0).op(opUpdate, 4, 0, 9).op(opGet, 3).
		op(opRotate, 4, rotateArg(0, true, 0)).op(opGet, 4).op(opGet, 3).op(opRotate, 5, rotateArg(u2, false, lPhone)).
		op(opGet, 5).op(opUserSessions, u2).op(opRotate, 6, rotateArg(0, false, lLong)).
		op(opRotate, 6, rotateArg(uLong, false, 0)).op(opRotate, 6, 0).op(opGet, 6).
		op(opAdvance, a61s).op(opGet, 6).op(opGet, 7).op(opDelete, 6).op(opRotate, malformed, 0)
	revoke := newProgram(cCap2, 0).
		create(createArg(u1, 0, 0, 0), 1, lPhone).create(createArg(u1, sec, 0, 0), 2, lFirefox).
		op(opAdvance, a2s).create(createArg(u1, 0, 0, 0), 3, 0).create(createArg(u2, 0, 0, 0), 4, 0).
		create(createArg(0, 0, 0, 0), 5, 0).op(opRotate, 4, rotateArg(u1, false, lPhone)).op(opUserSessions, u1).
		op(opRevokeOthers, u1, 5).op(opUserSessions, u1).op(opRevokeSession, u2, 5).op(opRevokeSession, u1, 3).
		op(opRevokeSession, u2, 3).op(opRevokeSession, u1, hUnknown).op(opRevokeOthers, u2, hZero).
		op(opRevokeUser, 1).op(opRevokeUser, 0).op(opRevokeUser, nobody).op(opRevokeOthers, 0, 0).
		op(opRevokeSession, 0, 0).create(createArg(u3, 0, 0, 0), 1, 0).create(createArg(u3, 0, 0, 0), 1, 0).
		op(opRotate, 6, rotateArg(u3, true, 0)).create(createArg(u3, 0, 0, 0), 1, 0).op(opUserSessions, u3).
		op(opGetAll)
	maxSessions := newProgram(0, cMax3).
		create(createArg(0, 0, 0, 0), 1, 0).create(createArg(0, 0, 0, 0), 2, 0).create(createArg(u1, 0, 0, 0), 3, 0).
		create(createArg(u2, 0, 0, 0), 4, 0).create(createArg(u3, 0, 0, 0), 5, 0).create(createArg(u1, 0, 0, 0), 6, 0).
		create(createArg(0, 0, 0, 0), 7, 0).op(opDelete, 2).create(createArg(0, sec, 0, 0), 8, 0).
		op(opAdvance, a2s).create(createArg(u2, 0, 0, 0), 9, 0).op(opRevokeUser, u1).op(opReopen).
		create(createArg(0, 0, 0, 0), 10, 0).create(createArg(0, 0, 0, 0), 11, 0).op(opGetAll)
	maxAnon := newProgram(cCap1, cAnon1|cMax6).
		create(createArg(0, 0, 0, 0), 1, 0).create(createArg(0, 0, 0, 0), 2, 0).op(opRotate, 1, rotateArg(u1, false, 0)).
		create(createArg(0, 0, 0, 0), 3, 0).op(opRotate, 3, rotateArg(u1, false, lPhone)).
		create(createArg(0, sec, 0, 0), 4, 0).op(opAdvance, a1s).create(createArg(0, 0, 0, 0), 5, 0).
		create(createArg(u2, 0, 0, 0), 6, 0).op(opUserSessions, u1).op(opGetAll)
	reopen := newProgram(0, cEverySec).
		create(createArg(u1, minute, 0, 0), 5, lPhone).create(createArg(0, 0, 0, 0), 6, 0).
		op(opAdvance, a1s).op(opGet, 0).op(opAdvance, a400ms).op(opGet, 0).op(opSnapshot).op(opSnapshot).
		op(opUpdate, 1, 1, 7).op(opAdvance, a2s).op(opGet, 0).op(opReopen).op(opUserSessions, u1).op(opGetAll).
		op(opRevokeOthers, u1, hZero).op(opAdvance, a61s).op(opReopen).op(opGet, 1).op(opSnapshot).op(opReopen).
		op(opRotate, 1, rotateArg(u2, false, 0)).op(opReopen).op(opRevokeSession, u2, 2)
	fingerprint := newProgram(0, 0).
		create(createArg(0, 0, 0, fp1), 5, 0).op(opGetBound, 0, fp2).op(opGetBound, 0, fp1).
		op(opReopen).op(opGetBound, 0, fp2).op(opGetBound, 0, 0).op(opGet, 0).op(opGetBound, 0+16, fp1).
		op(opRotate, 0, rotateArg(u1, false, 0)).op(opReopen).op(opGet, 1).op(opGetBound, 1, fp1)
	everything := newProgram(cSigned|cEncrypted|cMemFS|cSnapOnClose|cGrace|cCap2, cAlways|cOneShard|cTouch3|cMax6).
		create(createArg(u1, 0, 0, fp2), 9, lPhone).create(createArg(u1, 0, 0, 0), 9, 0).
		create(createArg(u1, 0, 0, 0), 9, lFirefox).op(opRotate, 2, 0).op(opGet, 2).op(opSnapshot).
		op(opAdvance, a1ms).op(opUpdate, 1, 2, 30).op(opReopen).op(opGetAll).op(opAdvance, a2s).op(opGet, 1).
		op(opAdvance, a2s).op(opGet, 1).op(opRevokeUser, u2).op(opReopen).op(opGet, malformed).op(opGet, unknown).
		op(opAdvance, a25h).op(opReopen).op(opGetAll)
	janitorOn := newProgram(cJanitor|cGrace, cEverySec|cAnon2).
		create(createArg(u1, sec, 0, 0), 2, 0).create(createArg(u1, 0, 0, 0), 2, 0).
		op(opRotate, 1, 0).op(opAdvance, a2s).op(opGet, 0).op(opGet, 1).op(opDelete, 0).
		create(createArg(0, sec, 0, 0), 1, 0).create(createArg(0, sec, 0, 0), 1, 0).op(opAdvance, a2s).
		create(createArg(0, 0, 0, 0), 1, 0).op(opAdvance, a61s).op(opGet, 1).op(opRevokeUser, u1).op(opReopen).
		op(opGetAll)
	// Sessions whose deadline passed in the second before Open: recovery
	// may keep them (expired) or not.
	lastSecond := newProgram(cGrace, cOneShard).
		op(opAdvance, a1ms).create(createArg(0, sec, 0, 0), 8, 0).create(createArg(u1, sec, 0, 0), 9, 0).
		op(opAdvance, a1ms).create(createArg(0, sec, 0, 0), 10, 0).op(opAdvance, a1s).op(opReopen).
		op(opUserSessions, u1).op(opGet, 0).op(opDelete, 1).op(opUpdate, 2, 0, 3).op(opRevokeUser, u1).
		op(opReopen).op(opGetAll).op(opAdvance, a1s).op(opReopen).op(opGetAll)
	// The janitor reaps without logging: a reopen soon after brings the
	// session back from the log, expired.
	reaped := newProgram(cJanitor|cSnapOnClose, cMax2).
		create(createArg(0, sec, 0, 0), 4, 0).create(createArg(u1, sec, 0, 0), 4, 0).op(opAdvance, a1s).
		op(opAdvance, a1ms).op(opPause).op(opGetAll).op(opGetAll).op(opReopen).op(opGetAll).
		create(createArg(0, 0, 0, 0), 5, 0).create(createArg(0, 0, 0, 0), 6, 0).create(createArg(u1, 0, 0, 0), 7, 0).
		op(opAdvance, a25h).op(opPause).op(opDelete, 2).op(opReopen).op(opGetAll)
	// Reaped (not logged), then back from the log at Open, expired in the
	// second before it: the janitor goes by whole seconds, and a later
	// deadline (SetDeadline) leaves a session's place in its heap early,
	// while recovery from a snapshot files it by its deadline.
	reapedBack := newProgram(cJanitor, 0).
		op(opAdvance, a400ms).create(createArg(0, hour, abs2s, 0), 4, 0).op(opAdvance, a400ms).
		op(opAdvance, a400ms).op(opSetDeadline, 0, d2s).op(opSnapshot).op(opAdvance, a2s).op(opPause).
		op(opAdvance, a1ms).
		op(opReopen).op(opGet, 0).op(opPause).op(opDelete, 0).op(opReopen).op(opGet, 0)
	// Touches are logged once a second has passed (three with cTouch3);
	// a restart restores the last logged one.
	touches := newProgram(0, cTouch3|cAlways).
		create(createArg(u1, minute, 0, 0), 4, 0).op(opAdvance, a400ms).op(opGet, 0).op(opAdvance, a1s).
		op(opGet, 0).op(opAdvance, a2s).op(opGet, 0).op(opAdvance, a1s).op(opGet, 0).op(opAdvance, a400ms).
		op(opGet, 0).op(opReopen).op(opGet, 0).op(opAdvance, a2s).op(opGet, 0).op(opAdvance, a1s).op(opGet, 0).
		op(opSnapshot).op(opAdvance, a61s).op(opReopen).op(opGet, 0)
	// MaxSessions and MaxAnonymousSessions with expired sessions not yet
	// reaped, which still count.
	capsExpired := newProgram(0, cMax3|cAnon2).
		create(createArg(0, sec, 0, 0), 1, 0).create(createArg(0, 0, 0, 0), 2, 0).op(opAdvance, a2s).
		create(createArg(u1, 0, 0, 0), 3, 0).create(createArg(0, 0, 0, 0), 4, 0).create(createArg(u2, 0, 0, 0), 5, 0).
		create(createArg(u3, 0, 0, 0), 6, 0).create(createArg(0, 0, 0, 0), 7, 0).op(opRotate, 2, rotateArg(u1, false, 0)).
		op(opGetAll).op(opSnapshot).op(opReopen).create(createArg(0, 0, 0, 0), 8, 0).op(opGetAll)
	// A snapshot holds only live sessions; the log behind it goes.
	snapshotExpired := newProgram(cSnapOnClose, cEverySec).
		create(createArg(0, sec, 0, 0), 1, 0).create(createArg(u2, 0, abs2s, 0), 2, lPhone).
		create(createArg(u2, hour, 0, fp2), 3, 0).op(opAdvance, a2s).op(opSnapshot).op(opReopen).op(opGetAll).
		op(opUserSessions, u2).op(opSetDeadline, 2, d2s).op(opAdvance, a1s).op(opReopen).op(opAdvance, a1s).
		op(opReopen).op(opGetBound, 2, fp2)
	return []seed{
		{"recovery-last-second", []byte(lastSecond)},
		{"reaped-then-reopened", []byte(reaped)},
		{"reaped-back-at-open", []byte(reapedBack)},
		{"touch-logging", []byte(touches)},
		{"caps-with-expired-sessions", []byte(capsExpired)},
		{"snapshot-of-live-sessions", []byte(snapshotExpired)},
		{"basic", []byte(basic)},
		{"expiry-and-deadlines", []byte(expiry)},
		{"rotate-grace-and-login", []byte(rotate)},
		{"revoke-and-cap", []byte(revoke)},
		{"max-sessions", []byte(maxSessions)},
		{"max-anonymous-sessions", []byte(maxAnon)},
		{"snapshot-reopen", []byte(reopen)},
		{"fingerprint-reopen", []byte(fingerprint)},
		{"signed-encrypted-memfs", []byte(everything)},
		{"janitor", []byte(janitorOn)},
		{"too-many-ops", slices.Repeat([]byte{opGetAll}, 2*maxOps)},
	}
}

// engineRegressions are the inputs of FuzzEngine's past findings (see
// RESULTS.md), written in the current program format. TestSeedsAreCurrent
// keeps them as regression-<name>.
func engineRegressions() []seed {
	// Create bound, reopen, GetBound with another fingerprint.
	binding := newProgram(0, 0).create(createArg(0, 0, 0, fp1), 5, 0).op(opReopen).op(opGetBound, 0, fp2)
	// A session whose deadline passed in the second before Open.
	lastSecond := newProgram(cGrace|cEncrypted, 0).
		op(opAdvance, a1ms).create(createArg(0, sec, 3, 0), 48, 0).
		op(opAdvance, a1ms).create(createArg(u2, hour, abs90s, 0), 48, 0).
		op(opRevokeUser, u3).op(opRevokeUser, u2).op(opAdvance, a1s).op(opReopen).op(opDelete, 0)
	// MaxSessionsPerUser 2, one of the user's sessions expired.
	userCap := newProgram(cCap2, 0).
		create(createArg(u1, 0, 0, 0), 1, 0).create(createArg(u1, sec, 0, 0), 2, 0).op(opAdvance, a2s).
		create(createArg(u1, 0, 0, 0), 3, 0)
	// With encryption at rest, sealing a Put whose buffer has less than
	// the GCM tag's 16 bytes to spare panics (engine/seal.go, sealRecord):
	// an anonymous Create with 48 bytes of data on a fresh engine.
	sealing := newProgram(cEncrypted, 0).create(createArg(0, 0, 0, 0), 48, 0)
	return []seed{
		{"sealing-panics-without-room-for-the-tag", []byte(sealing)},
		{"fingerprint-binding-lost-on-restart", []byte(binding)},
		{"recovery-keeps-sessions-expired-this-second", []byte(lastSecond)},
		{"user-cap-counts-expired-sessions", []byte(userCap)},
	}
}
