package snapshot

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sesscache/sesscache/wal"
)

// lookaheadBytes is how much encoded output a fill that is not yet being
// written may buffer before its add calls block. Large enough that fills of a
// few thousand sessions (a shard, say) encode in parallel, small enough that
// a slow disk cannot make Write hold the whole snapshot in memory.
const lookaheadBytes = 4 << 20

// errAborted is what add, and the goroutines of a Write, return once another
// part of the same Write has failed; Write itself returns the first error.
var errAborted = errors.New("snapshot: write aborted")

// errAddAfterFill is returned by an add function called after its fill call
// returned.
var errAddAfterFill = errors.New("snapshot: add called after its fill returned")

// chunk is a file chunk being encoded or waiting to be written.
type chunk struct {
	b       []byte // frames
	records uint32
	crc     uint32 // of b, set when the chunk is sealed
}

// writer runs one Write: fill workers encode chunks, and one goroutine
// (drain) writes them in index order. Fill index i sends its sealed chunks,
// then nil, on slots[i%len(slots)]. A worker takes a token before it takes a
// fill index and drain gives it back once that index is written, so at most
// len(slots) indices are in flight, always consecutive from the one being
// written: each ring slot carries one index at a time, and the lowest index
// always has a worker, so nothing waits on itself.
type writer struct {
	f      wal.File
	lsn    uint64
	chunks int
	fill   func(int, func(*wal.Record) error) error
	target int

	next   atomic.Int64  // next fill index to hand out
	tokens chan struct{} // capacity len(slots)
	slots  []chan *chunk // capacity about lookaheadBytes of chunks each
	pool   sync.Pool     // *chunk with room for target bytes

	// Owned by drain until the errgroup is done.
	off      int64
	table    []entry
	sessions uint64
}

func newWriter(f wal.File, lsn uint64, chunks int, fill func(int, func(*wal.Record) error) error, opts Options) *writer {
	target := opts.target()
	inFlight := 2 * max(1, min(opts.workers(), chunks))
	w := &writer{
		f:      f,
		lsn:    lsn,
		chunks: chunks,
		fill:   fill,
		target: target,
		tokens: make(chan struct{}, inFlight),
		slots:  make([]chan *chunk, inFlight),
	}
	for i := range w.slots {
		w.slots[i] = make(chan *chunk, slotCapacity(opts))
	}
	w.pool.New = func() any { return &chunk{b: make([]byte, 0, target)} }
	return w
}

// slotCapacity is how many sealed chunks a fill index may queue before drain
// gets to it.
func slotCapacity(opts Options) int {
	return max(1, opts.lookaheadBytes()/opts.target())
}

// writeFile writes the header, every chunk and the footer, and returns the
// file's size.
func (w *writer) writeFile(created time.Time, workers int) (int64, error) {
	hdr := appendHeader(nil, header{lsn: w.lsn, created: unixNano(created)})
	if err := w.writeAt(hdr, 0); err != nil {
		return 0, err
	}
	w.off = headerSize
	g, ctx := errgroup.WithContext(context.Background())
	g.Go(func() error { return w.drain(ctx) })
	for range min(workers, w.chunks) {
		g.Go(func() error { return w.work(ctx) })
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	footer := appendFooter(nil, w.table, trailer{sessions: w.sessions, lsn: w.lsn, chunks: uint32(len(w.table))})
	if err := w.writeAt(footer, w.off); err != nil {
		return 0, err
	}
	return w.off + int64(len(footer)), nil
}

func (w *writer) writeAt(b []byte, off int64) error {
	n, err := w.f.WriteAt(b, off)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	return nil
}

// drain writes the chunks of each fill index in turn.
func (w *writer) drain(ctx context.Context) error {
	for i := range w.chunks {
		slot := w.slots[i%len(w.slots)]
		for {
			var c *chunk
			select {
			case c = <-slot:
			case <-ctx.Done():
				return errAborted
			}
			if c == nil {
				break
			}
			if uint64(len(w.table)) == math.MaxUint32 {
				return errors.New("snapshot: too many chunks")
			}
			if err := w.writeAt(c.b, w.off); err != nil {
				return err
			}
			w.table = append(w.table, entry{length: uint32(len(c.b)), records: c.records, crc: c.crc})
			w.sessions += uint64(c.records)
			w.off += int64(len(c.b))
			w.putChunk(c)
		}
		<-w.tokens
	}
	return nil
}

func (w *writer) getChunk() *chunk { return w.pool.Get().(*chunk) }

func (w *writer) putChunk(c *chunk) {
	if cap(c.b) > w.target {
		return // grown for one large record: let it go rather than pool it
	}
	c.b, c.records, c.crc = c.b[:0], 0, 0
	w.pool.Put(c)
}

// work runs fill calls until every index is taken or the Write fails.
func (w *writer) work(ctx context.Context) error {
	e := &encoder{w: w, ctx: ctx}
	e.addFunc = e.add
	for {
		select {
		case w.tokens <- struct{}{}:
		case <-ctx.Done():
			return errAborted
		}
		i := int(w.next.Add(1) - 1)
		if i >= w.chunks {
			<-w.tokens
			return nil
		}
		if err := e.run(i); err != nil {
			return err
		}
	}
}

// encoder turns one worker's add calls into sealed chunks. Not safe for
// concurrent use: it belongs to one fill call at a time.
type encoder struct {
	w       *writer
	ctx     context.Context
	addFunc func(*wal.Record) error // e.add, made once per worker

	slot    chan *chunk
	cur     *chunk
	payload []byte // scratch for one record's payload
	err     error  // first add failure of the current fill call
	done    bool   // the current fill call has returned
}

// run makes fill call i and sends its chunks, then the end marker.
func (e *encoder) run(i int) error {
	e.slot, e.err, e.done = e.w.slots[i%len(e.w.slots)], nil, false
	err := e.w.fill(i, e.addFunc)
	e.done = true
	if err == nil {
		err = e.err
	}
	if err == nil && e.cur != nil {
		err = e.seal()
	}
	if err == nil {
		err = e.send(nil)
	}
	if err != nil {
		if errors.Is(err, errAborted) {
			return errAborted
		}
		return fmt.Errorf("snapshot: chunk %d: %w", i, err)
	}
	return nil
}

func (e *encoder) add(r *wal.Record) error {
	switch {
	case e.done:
		return errAddAfterFill
	case e.err != nil:
		return e.err
	case e.ctx.Err() != nil:
		// Another part of the Write failed: stop this fill now rather
		// than at its next full chunk.
		e.err = errAborted
		return e.err
	case r == nil || r.Op != wal.OpPut:
		e.err = fmt.Errorf("%w: a snapshot holds puts only", wal.ErrInvalidRecord)
		return e.err
	case len(r.Data)+len(r.UserID) > wal.MaxFrameSize:
		// Refused before encoding so that a huge record does not grow the
		// scratch buffer first.
		e.err = fmt.Errorf("%w: %d bytes of data", wal.ErrTooLarge, len(r.Data)+len(r.UserID))
		return e.err
	}
	rec := *r
	rec.LSN, rec.Ops = e.w.lsn, nil
	e.payload = wal.AppendRecord(e.payload[:0], &rec)
	if len(e.payload) > wal.MaxFrameSize {
		e.err = fmt.Errorf("%w: %d-byte payload, limit %d", wal.ErrTooLarge, len(e.payload), wal.MaxFrameSize)
		e.payload = nil
		return e.err
	}
	if e.cur != nil && len(e.cur.b)+wal.HeaderSize+len(e.payload) > e.w.target {
		if err := e.seal(); err != nil {
			e.err = err
			return err
		}
	}
	if e.cur == nil {
		e.cur = e.w.getChunk()
	}
	e.cur.b = wal.AppendFrame(e.cur.b, e.payload)
	e.cur.records++
	if cap(e.payload) > e.w.target {
		e.payload = nil // one large record must not pin its buffer for the rest of the Write
	}
	return nil
}

// seal checksums the current chunk and hands it to drain.
func (e *encoder) seal() error {
	c := e.cur
	e.cur = nil
	c.crc = crc32.Checksum(c.b, castagnoli)
	return e.send(c)
}

func (e *encoder) send(c *chunk) error {
	select {
	case e.slot <- c:
		return nil
	case <-e.ctx.Done():
		return errAborted
	}
}
