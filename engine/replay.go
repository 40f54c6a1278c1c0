package engine

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/wal"
)

// logReplay applies the records the log hands to Open, in log order, on
// several goroutines. Recovered sessions are cold: keyed by the digest they
// are stored under on disk, in the shard their hint names, until a request
// presents the ID (promote).
//
// The caller's goroutine decodes (in wal), opens sealed records and builds
// each new record; then one worker per processor (GOMAXPROCS, at most one per
// shard) stores it, each worker owning a fixed set of shards. Every session
// lives in one shard, so each session still sees its records in log order,
// which is all replay needs: records are whole states of one session, and
// the ops of a Batch (Rotate, RevokeUser) touch different sessions, whose
// order relative to one another the final state does not depend on.
//
// Where the log skipped damage (Options.SkipDamaged), every session known so
// far is marked suspect, in order with the records: a later record for it
// (a Put, or a Touch, which a Get of a live session logs) clears the mark,
// and whatever is still marked at the end is dropped (dropDead), since the
// skipped records may have deleted it.
//
// The shards are in bulk mode throughout (their heaps ordered once at the
// end), and the workers are gone when finish returns.
type logReplay struct {
	e        *Engine
	batches  [][]replayOp      // being filled, one per worker
	queues   []chan []replayOp // to the workers
	free     sync.Pool         // of *[]replayOp, emptied batches
	wg       sync.WaitGroup
	rejected int        // sealed records skipped because they did not open
	slab     shard.Slab // where the decoding goroutine builds records
}

// replayOp is one record's change to one session, ready to store.
type replayOp struct {
	op  wal.Op
	si  int       // shard index
	h   uint64    // hash of key
	key shard.Key // the on-disk key (a digest)
	rec shard.Rec // OpPut: the new record, not yet published
	la  int64     // OpTouch: the access time
}

// opSuspect is a replayOp that marks every session in a worker's shards
// suspect; it is not a log op.
const opSuspect wal.Op = 0

// replayBatchLen is how many ops a worker is handed at once: enough that
// the channel's cost per op is small, few enough that workers start early.
const replayBatchLen = 512

func (e *Engine) newLogReplay() *logReplay {
	r := &logReplay{e: e}
	for i := range e.shards {
		e.shards[i].Lock()
		e.shards[i].BeginBulk(0)
		e.shards[i].Unlock()
	}
	workers := min(runtime.GOMAXPROCS(0), len(e.shards))
	if workers < 2 {
		return r // apply stores inline
	}
	r.batches = make([][]replayOp, workers)
	r.queues = make([]chan []replayOp, workers)
	for w := range workers {
		q := make(chan []replayOp, 4)
		r.queues[w] = q
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for b := range q {
				for i := range b {
					if b[i].op == opSuspect {
						e.suspectShards(w, workers)
					} else {
						e.store(&b[i])
					}
					b[i] = replayOp{}
				}
				b = b[:0]
				r.free.Put(&b)
			}
		}()
	}
	return r
}

// apply is the callback wal.Open replays the log through.
func (r *logReplay) apply(rec *wal.Record) error {
	switch rec.Op {
	case wal.OpPut:
		e := r.e
		var err error
		if e.openScratch, err = e.sealer.openRecord(rec, e.openScratch); err != nil {
			if errors.Is(err, errSealBroken) && e.opts.SkipDamaged {
				// Edited or damaged on disk: what it held is unknown, like
				// skipped records.
				r.rejected++
				e.opts.Logger.Warn("sesscache: skipping a sealed record that does not open", "err", err)
				r.suspectAll()
				return nil
			}
			return err
		}
		op := replayOp{op: wal.OpPut, key: shard.Key(rec.Key.Digest)}
		op.rec = e.recoveredRec(&r.slab, rec, &op.key)
		r.send(rec.Key, op)
	case wal.OpDelete:
		r.send(rec.Key, replayOp{op: wal.OpDelete, key: shard.Key(rec.Key.Digest)})
	case wal.OpTouch:
		r.send(rec.Key, replayOp{op: wal.OpTouch, key: shard.Key(rec.Key.Digest), la: rec.LastAccess})
	case wal.OpBatch:
		for i := range rec.Ops {
			if err := r.apply(&rec.Ops[i]); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: unknown op %v", wal.ErrCorrupt, rec.Op)
	}
	return nil
}

// send hands op to the worker owning its shard, or stores it at once when
// there are no workers.
func (r *logReplay) send(k wal.Key, op replayOp) {
	_, op.si = r.e.shardOf(uint64(k.Hint))
	op.h = shard.Hash(&op.key)
	if r.queues == nil {
		r.e.store(&op)
		return
	}
	r.enqueue(op.si%len(r.queues), op)
}

func (r *logReplay) enqueue(w int, op replayOp) {
	b := r.batches[w]
	if b == nil {
		if p, _ := r.free.Get().(*[]replayOp); p != nil {
			b = *p
		} else {
			b = make([]replayOp, 0, replayBatchLen)
		}
	}
	b = append(b, op)
	if len(b) == replayBatchLen {
		r.queues[w] <- b
		b = nil
	}
	r.batches[w] = b
}

// suspectAll marks every session recovered so far suspect, in order with
// the ops already sent: each worker marks its own shards when it reaches
// this point in its queue.
func (r *logReplay) suspectAll() {
	if r.queues == nil {
		r.e.suspectShards(0, 1)
		return
	}
	for w := range r.queues {
		r.enqueue(w, replayOp{op: opSuspect})
	}
}

// suspectShards marks suspect every session in the shards that worker w of
// n owns.
func (e *Engine) suspectShards(w, n int) {
	for i := w; i < len(e.shards); i += n {
		s := &e.shards[i]
		s.Lock()
		s.Range(func(r shard.Rec) bool {
			r.SetSuspect(true)
			return true
		})
		s.Unlock()
	}
}

// finish hands the workers what is left, waits for them to end, and orders
// the heaps. It is called once, whether or not the replay succeeded.
func (r *logReplay) finish() {
	for w, q := range r.queues {
		if len(r.batches[w]) > 0 {
			q <- r.batches[w]
		}
		close(q)
	}
	r.wg.Wait()
	r.e.endBulk()
}

// endBulk orders every shard's heap after a bulk load, on a goroutine per
// processor.
func (e *Engine) endBulk() {
	var wg sync.WaitGroup
	n := min(runtime.GOMAXPROCS(0), len(e.shards))
	for w := range n {
		wg.Go(func() {
			for i := w; i < len(e.shards); i += n {
				e.shards[i].Lock()
				e.shards[i].EndBulk()
				e.shards[i].Unlock()
			}
		})
	}
	wg.Wait()
}

// recoveredRec builds, in slab, the record a recovered Put stores under
// on-disk key d.
func (e *Engine) recoveredRec(slab *shard.Slab, rec *wal.Record, d *shard.Key) shard.Rec {
	m := shard.Meta{
		Version:  rec.Version,
		Created:  rec.Created,
		Idle:     rec.Idle,
		Absolute: rec.Absolute,
		Flags:    shard.FlagCold,
		Hint:     rec.Key.Hint,
		AuthAt:   rec.AuthAt,
	}
	if rec.Fingerprint != 0 {
		m.Flags |= shard.FlagBound
		m.Fingerprint = rec.Fingerprint
	}
	return slab.NewRec(d, m, rec.LastAccess, unsafeString(rec.UserID), unsafeString(rec.Label), rec.Data)
}

// unsafeString views b as a string for as long as b is unchanged: NewRec
// copies what it is given, so the decoder's buffer need not be copied twice.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// store applies one replayed op to its shard.
func (e *Engine) store(op *replayOp) {
	s := &e.shards[op.si].engShard
	s.Lock()
	old := s.Lookup(&op.key, op.h)
	switch op.op {
	case wal.OpPut:
		e.storeRecovered(s, op.si, old, op.h, op.rec)
	case wal.OpDelete:
		if !old.IsZero() {
			e.forget(op.si, old)
			s.Remove(old, op.h)
		}
	case wal.OpTouch:
		if !old.IsZero() {
			// A touch is logged by a lookup that found the session live:
			// proof of life past any damage skipped before it.
			old.SetSuspect(false)
			if op.la > old.LastAccess() {
				old.Touch(op.la)
			}
		}
	}
	s.Unlock()
}

// storeRecovered stores recovered record r, which replaces old unless old
// is zero. The last access never goes back: a touch logged before the Put
// may carry a later time than the Put itself. Caller holds s's lock.
func (e *Engine) storeRecovered(s *engShard, si int, old shard.Rec, h uint64, r shard.Rec) {
	if old.IsZero() {
		s.Insert(h, r)
		e.live.Add(1)
		if u := r.UserID(); u != "" {
			e.users.add(u, r.Key(), si)
		} else {
			e.anon.Add(1)
		}
		return
	}
	if la := old.LastAccess(); la > r.LastAccess() {
		r.Touch(la)
	}
	if old.UserID() != r.UserID() {
		// Never in a healthy log (owners change only with the ID), but a
		// record must not leave the index or the counts wrong.
		e.forget(si, old)
		s.Remove(old, h)
		e.storeRecovered(s, si, shard.Rec{}, h, r)
		return
	}
	s.Replace(old, h, r)
}

// storeRun stores recovered records, all of the shard hint picks, under
// one taking of its lock.
func (e *Engine) storeRun(hint uint64, recs []shard.Rec) {
	s, si := e.shardOf(hint)
	s.Lock()
	defer s.Unlock()
	for _, r := range recs {
		k := r.Key()
		h := shard.Hash(&k)
		e.storeRecovered(s, si, s.Lookup(&k, h), h, r)
	}
}
