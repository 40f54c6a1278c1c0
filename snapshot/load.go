package snapshot

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sesscache/sesscache/wal"
)

// Load verifies the whole snapshot at path and only then (unless
// opts.OnePass) calls apply for
// each record, from up to opts.Workers goroutines at once, and returns the
// snapshot's Info. apply must be safe for concurrent use; the records of one
// file chunk arrive in file order from one goroutine. The Record passed to
// apply, and its slices, alias a buffer that is reused after apply returns:
// apply copies what it keeps. Every record is a Put whose LSN is the
// snapshot's.
//
// A damaged file returns an error wrapping ErrCorrupt (a *CorruptError that
// names the file and offset) and makes no apply call; a newer format returns
// an error wrapping ErrUnsupportedVersion. If apply returns an error, Load
// stops calling it (calls already under way on other goroutines finish) and
// returns that error wrapped. Should the file change between the verifying
// pass and the applying one, the second pass still checks every frame and
// count and returns an error, but after some apply calls. A nil apply only
// verifies (one pass).
//
// Load holds about Workers × the largest chunk (256 KiB as Write makes them)
// plus 20 bytes per chunk for the table, whatever the file's size.
func Load(path string, opts Options, apply func(*wal.Record) error) (Info, error) {
	var batch func([]wal.Record) error
	if apply != nil {
		batch = func(recs []wal.Record) error {
			for i := range recs {
				if err := apply(&recs[i]); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return LoadBatches(path, opts, batch)
}

// LoadBatches is Load that hands apply the records of one file chunk at a
// time, in file order (up to a few thousand, as Write cuts chunks), once
// the chunk is checked: a caller that stores them under locks takes each
// lock once per run rather than once per record. The records and their
// slices alias buffers reused after apply returns.
func LoadBatches(path string, opts Options, apply func([]wal.Record) error) (Info, error) {
	start := time.Now()
	f, err := opts.fs().OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: open: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: a failed close loses nothing
	l := &loader{f: f, file: filepath.Base(path)}
	if err := l.readFooter(); err != nil {
		return Info{}, err
	}
	l.onePass = opts.OnePass && apply != nil
	if !l.onePass {
		if err := l.scan(opts.workers(), nil); err != nil {
			return Info{}, err
		}
	}
	if apply != nil {
		if err := l.scan(opts.workers(), apply); err != nil {
			return Info{}, err
		}
	}
	return Info{
		Path:     path,
		LSN:      l.hdr.lsn,
		Created:  fromUnixNano(l.hdr.created),
		Sessions: l.sessions,
		Bytes:    l.size,
		Duration: time.Since(start),
	}, nil
}

// loader reads one snapshot file.
type loader struct {
	f        wal.File
	file     string // base name, for errors
	size     int64
	hdr      header
	sessions uint64
	table    []entry
	offsets  []int64 // file offset of each chunk
	onePass  bool    // apply while checking (Options.OnePass)
	stop     atomic.Bool
}

func (l *loader) corrupt(off int64, reason string, cause error) error {
	return &CorruptError{File: l.file, Offset: off, Reason: reason, Err: cause}
}

// readAt fills b from off; a file that ends early is damage.
func (l *loader) readAt(b []byte, off int64, what string) error {
	n, err := l.f.ReadAt(b, off)
	switch {
	case n == len(b):
		return nil
	case err == nil || errors.Is(err, io.EOF):
		return l.corrupt(off, what+" extends past the end of the file", nil)
	}
	return fmt.Errorf("snapshot: read %s: %w", l.file, err)
}

// readFooter reads and checks the header, the trailer and the chunk table.
// Every size is checked against the file's before anything is sized from it.
func (l *loader) readFooter() error {
	size, err := l.f.Size()
	if err != nil {
		return fmt.Errorf("snapshot: size of %s: %w", l.file, err)
	}
	l.size = size
	if size < headerSize+trailerSize {
		return l.corrupt(size, fmt.Sprintf("%d-byte file is too short for a snapshot", size), nil)
	}
	var hb [headerSize]byte
	if err := l.readAt(hb[:], 0, "header"); err != nil {
		return err
	}
	h, reason, err := parseHeader(hb[:])
	switch {
	case err != nil:
		return fmt.Errorf("snapshot: %s: %w", l.file, err)
	case reason != "":
		return l.corrupt(0, reason, nil)
	}
	if lsn, ok := parseName(l.file); ok && lsn != h.lsn {
		return l.corrupt(16, "header LSN disagrees with the file name", nil)
	}
	l.hdr = h

	var tb [trailerSize]byte
	trailerAt := size - trailerSize
	if err := l.readAt(tb[:], trailerAt, "trailer"); err != nil {
		return err
	}
	t, ok := parseTrailer(tb[:])
	if !ok {
		return l.corrupt(trailerAt, "bad trailer magic", nil)
	}
	tableLen := int64(t.chunks) * entrySize
	if tableLen > trailerAt-headerSize {
		return l.corrupt(trailerAt, fmt.Sprintf("chunk table of %d entries does not fit the file", t.chunks), nil)
	}
	tableAt := trailerAt - tableLen
	footer := make([]byte, tableLen+trailerSize)
	if err := l.readAt(footer, tableAt, "chunk table"); err != nil {
		return err
	}
	table, ok := parseTable(footer)
	switch {
	case !ok:
		return l.corrupt(tableAt, "footer checksum mismatch", nil)
	case t.lsn != h.lsn:
		return l.corrupt(trailerAt+16, "trailer LSN disagrees with the header", nil)
	}
	return l.checkTable(table, t.sessions, tableAt)
}

// checkTable checks that the chunks exactly fill the space between the
// header and the table and that their counts add up to sessions.
func (l *loader) checkTable(table []entry, sessions uint64, tableAt int64) error {
	l.offsets = make([]int64, len(table))
	off := int64(headerSize)
	var records uint64
	for i, e := range table {
		at := tableAt + int64(i)*entrySize
		switch {
		case e.length == 0 || e.length > MaxChunkSize:
			return l.corrupt(at, fmt.Sprintf("chunk %d has length %d", i, e.length), nil)
		case e.records == 0:
			return l.corrupt(at, fmt.Sprintf("chunk %d holds no records", i), nil)
		case int64(e.length) > tableAt-off:
			return l.corrupt(at, fmt.Sprintf("chunk %d runs into the chunk table", i), nil)
		}
		l.offsets[i] = off
		off += int64(e.length)
		records += uint64(e.records)
	}
	switch {
	case off != tableAt:
		return l.corrupt(off, fmt.Sprintf("%d bytes between the last chunk and the chunk table", tableAt-off), nil)
	case records != sessions:
		return l.corrupt(tableAt, fmt.Sprintf("chunks hold %d records, trailer says %d", records, sessions), nil)
	}
	l.table, l.sessions = table, sessions
	return nil
}

// scan checks every chunk on up to workers goroutines, and passes their
// records to apply if it is not nil.
func (l *loader) scan(workers int, apply func([]wal.Record) error) error {
	n := len(l.table)
	if n == 0 {
		return nil
	}
	l.stop.Store(false)
	var next atomic.Int64
	g, ctx := errgroup.WithContext(context.Background())
	for range min(workers, n) {
		g.Go(func() error {
			var buf []byte
			var recs []wal.Record
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= n {
					return nil
				}
				var err error
				if buf, recs, err = l.chunk(k, buf, recs, apply); err != nil {
					l.stop.Store(true)
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// chunk reads chunk k into buf, growing it as needed, and checks it; then
// decodes its records in order into recs, checks each, and passes them all
// to apply.
func (l *loader) chunk(k int, buf []byte, recs []wal.Record, apply func([]wal.Record) error) ([]byte, []wal.Record, error) {
	e, off := l.table[k], l.offsets[k]
	if cap(buf) < int(e.length) {
		// Chunks run up to the writer's target, each a little different:
		// rounding up lets one buffer serve them all.
		const round = 64 << 10
		buf = make([]byte, (int(e.length)+round-1)&^(round-1))
	}
	buf = buf[:e.length]
	if err := l.readAt(buf, off, "chunk"); err != nil {
		return buf, recs, err
	}
	// The applying pass of two skips the chunk CRC: the verifying pass
	// checked it, and the frame CRCs and counts, still checked, catch a file
	// that changed in between. It saves one of four CRC passes over the data.
	if (apply == nil || l.onePass) && crc32.Checksum(buf, castagnoli) != e.crc {
		return buf, recs, l.corrupt(off, fmt.Sprintf("chunk %d checksum mismatch", k), nil)
	}
	recs = recs[:0]
	var count uint32
	for p, pos := buf, off; len(p) > 0; {
		payload, size, err := wal.ReadFrame(p)
		if err != nil {
			return buf, recs, l.corrupt(pos, "bad frame", err)
		}
		if apply != nil || len(recs) == 0 {
			recs = append(recs, wal.Record{})
		}
		rec := &recs[len(recs)-1]
		if err := wal.DecodeRecord(payload, rec); err != nil {
			return buf, recs, l.corrupt(pos, "bad record", err)
		}
		switch {
		case rec.Op != wal.OpPut:
			return buf, recs, l.corrupt(pos, "holds a "+rec.Op.String()+" record", nil)
		case rec.LSN != l.hdr.lsn:
			return buf, recs, l.corrupt(pos, "record LSN disagrees with the header", nil)
		}
		count++
		p, pos = p[size:], pos+int64(size)
	}
	if count != e.records {
		return buf, recs, l.corrupt(off, fmt.Sprintf("chunk %d holds %d records, table says %d", k, count, e.records), nil)
	}
	if apply != nil {
		if l.stop.Load() {
			return buf, recs, nil // another goroutine failed; the errgroup has its error
		}
		if err := apply(recs); err != nil {
			l.stop.Store(true) // before the errgroup hears of it: stop the others now
			return buf, recs, fmt.Errorf("snapshot: apply: %w", err)
		}
	}
	return buf, recs, nil
}
