package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/wal"
)

// Every write (Create, Update, Delete, Rotate, the revocations and the
// evictions the caps make) is a txn of one or more changes, each to one
// session, and goes through commit, which is the only place that writes the
// log and the shards:
//
//  1. encode the txn's log record (a Batch if it has several changes)
//     outside any lock;
//  2. lock every shard it touches, in ascending order;
//  3. check that nothing it read has changed (else errStale: the caller
//     reads again and builds a new txn), that no other logged write is
//     still pending on its keys and that no revocation fences its owners
//     (else wait for them, then errStale);
//  4. append the record to the log, so the log's order for each session
//     is the order memory sees;
//  5. apply the changes to the shards and the user index, either at once
//     (in memory, SyncNo), or, once the log holds the record as the policy
//     says, after marking its keys pending and waiting unlocked.
//
// Deferring step 5 is what makes a failed write invisible: memory never
// holds a state the log may not have. Meanwhile readers see the state
// before the write, and writers to the same session wait for it. A
// snapshot copying a shard takes its pending writes as applied: its
// publication waits for the log to hold them (BeforePublish), so it never
// holds a write that fails.
//
// So a multi-session write is one log record, applied all or nothing by
// recovery, and the rules (order, atomicity, read-only after a failure,
// counting) live here once.

// change is one session's part in a txn.
type change struct {
	si    int
	h     uint64    // hash of the key of the record it changes
	old   shard.Rec // the record replaced or removed; zero for an insert
	new   shard.Rec // the record stored; zero for a removal
	alias shard.Rec // a rotation's grace entry, stored under old's key once old is gone
	disk  wal.Key   // the session's name on disk
	cause EventKind // why a removal happens

	reserved bool // an insert whose place Create counted already
	mustLive bool // a replacement refused with ErrExpired once old is past its deadline
	anyOld   bool // a removal of whatever session is current under old's key
}

func (c *change) key() shard.Key {
	if !c.old.IsZero() {
		return c.old.Key()
	}
	return c.new.Key()
}

// txnOp is what a txn does as a whole, for counting and events.
type txnOp uint8

const (
	txnCreate txnOp = iota + 1
	txnUpdate
	txnRotate
	txnRemove // every change a removal, each with its cause
)

// txn is one write: its changes and how to commit them. It lives on its
// writer's stack: up to three changes inline, more (a revocation) in a
// slice of their own.
type txn struct {
	op     txnOp
	n      int // changes in inline
	inline [3]change
	more   []change // all the changes, once there are more than inline holds
	// durable makes the write wait for an fsync whatever the policy.
	durable bool
	// exempt is the user whose revocation fence this txn belongs to.
	exempt string
	// at is the engine's clock when the txn was built, for events.
	at int64
}

// init readies a txn. Only a write whose apply waits for the log puts a
// copy of it where others see it (pending).
func (tx *txn) init(op txnOp, at int64) *txn {
	tx.op, tx.at = op, at
	return tx
}

func (tx *txn) add(c change) {
	switch {
	case tx.more != nil:
		tx.more = append(tx.more, c)
	case tx.n < len(tx.inline):
		tx.inline[tx.n] = c
		tx.n++
	default:
		tx.more = append(append(make([]change, 0, 2*tx.n), tx.inline[:tx.n]...), c)
	}
}

// list returns the changes.
func (tx *txn) list() []change {
	if tx.more != nil {
		return tx.more
	}
	return tx.inline[:tx.n]
}

// logged reports whether the txn has anything for the log: a rotation's
// grace entry never reaches it, nor does the removal of one.
func (tx *txn) logged() bool {
	for i := range tx.list() {
		c := &tx.list()[i]
		if c.old.IsZero() || c.old.Flags()&shard.FlagAlias == 0 {
			return true
		}
	}
	return false
}

// maxAttempts bounds the retries of a write whose reads keep going stale
// under concurrent writers. Each stale attempt means another write to the
// same session succeeded; a write that loses this many times in a row gives
// up with ErrVersionConflict rather than spin.
const maxAttempts = 1000

// commit makes tx's changes, durable as the policy says, or none of them.
// It returns errStale if a record tx changes is no longer what tx was built
// from, ErrExpired for a mustLive change whose session expired meanwhile,
// ErrReadOnly (wrapping the cause) if the log refused or failed the write,
// ErrClosed, or ctx's error if ctx ended before the write was logged. Once
// logged, a write is waited for whatever ctx says: it cannot be taken back.
func (e *Engine) commit(ctx context.Context, tx *txn) error {
	var p *wal.Pending
	if e.jr != nil && tx.logged() {
		p = e.pending()
		defer release(p)
		if err := e.encode(p, tx); err != nil {
			return err
		}
	}
	var buf [4]int
	idx := buf[:0]
	for i := range tx.list() {
		idx = append(idx, tx.list()[i].si)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	if err := ctx.Err(); err != nil {
		return err
	}

	e.lockShards(idx)
	if si, k, fence, busy := e.blocker(tx); busy {
		e.unlockShards(idx)
		return e.waitOut(ctx, si, k, fence)
	}
	if err := e.validate(tx); err != nil {
		e.unlockShards(idx)
		return err
	}
	if err := e.writable(); err != nil {
		e.unlockShards(idx)
		return err
	}
	var lsn uint64
	if p != nil {
		var err error
		if lsn, err = e.jr.log.Append(p); err != nil {
			e.unlockShards(idx)
			return e.writeFailed(err)
		}
	}
	if deferred := e.deferApply || tx.durable; lsn == 0 || !deferred {
		e.apply(tx)
		e.unlockShards(idx)
		if lsn != 0 {
			// SyncNo: the write was acknowledged when the log took it; this
			// only slows writers down when the disk falls behind. A failure
			// surfaces as ErrReadOnly on the next write.
			_ = e.jr.log.Wait(lsn)
		}
		e.committed(tx)
		return nil
	}
	// Others see the pending write, through its keys: a copy of it, so that
	// the txn itself can stay on the stack.
	shared := &txn{op: tx.op, more: slices.Clone(tx.list())}
	for i := range tx.list() {
		c := &tx.list()[i]
		e.shards[c.si].pending[c.key()] = shared
	}
	e.unlockShards(idx)
	err := e.wait(lsn, tx.durable)
	e.lockShards(idx)
	if err == nil {
		e.apply(tx)
	}
	for i := range tx.list() {
		c := &tx.list()[i]
		delete(e.shards[c.si].pending, c.key())
	}
	for _, i := range idx {
		e.shards[i].resolved.Broadcast()
	}
	e.unlockShards(idx)
	if err != nil {
		return err
	}
	e.committed(tx)
	return nil
}

// lockShards locks the shards with the given indices, which are sorted and
// distinct: always in ascending order, so that writers never deadlock.
func (e *Engine) lockShards(idx []int) {
	for _, i := range idx {
		e.shards[i].Lock()
	}
}

func (e *Engine) unlockShards(idx []int) {
	for _, i := range slices.Backward(idx) {
		e.shards[i].Unlock()
	}
}

// blocker finds what tx must wait for: a logged write still pending on one
// of its keys (shard si, key k), or a revocation fencing one of the owners
// it touches. Caller holds tx's shard locks.
func (e *Engine) blocker(tx *txn) (si int, k shard.Key, fence <-chan struct{}, busy bool) {
	for i := range tx.list() {
		c := &tx.list()[i]
		if _, ok := e.shards[c.si].pending[c.key()]; ok {
			return c.si, c.key(), nil, true
		}
	}
	if e.users.fenced.Load() == 0 {
		return 0, shard.Key{}, nil, false
	}
	for i := range tx.list() {
		c := &tx.list()[i]
		for _, r := range [2]shard.Rec{c.old, c.new} {
			if r.IsZero() {
				continue
			}
			if u := r.UserID(); u != "" && u != tx.exempt {
				if ch := e.users.fenceOf(u); ch != nil {
					return 0, shard.Key{}, ch, true
				}
			}
		}
	}
	return 0, shard.Key{}, nil, false
}

// waitOut waits until what blocker found is gone, then returns errStale:
// the caller reads again, since the write it waited for changed things.
func (e *Engine) waitOut(ctx context.Context, si int, k shard.Key, fence <-chan struct{}) error {
	if fence != nil {
		select {
		case <-fence:
			return errStale
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s := &e.shards[si]
	s.Lock()
	for s.pending[k] != nil {
		s.resolved.Wait()
	}
	s.Unlock()
	return errStale
}

// validate checks, under tx's shard locks, that every record tx read is
// still current, and takes the current record for each anyOld removal.
func (e *Engine) validate(tx *txn) error {
	now := e.now()
	for i := range tx.list() {
		c := &tx.list()[i]
		s := &e.shards[c.si]
		switch {
		case c.anyOld:
			k := c.old.Key()
			cur := s.Lookup(&k, c.h)
			if cur.IsZero() || cur.Flags()&shard.FlagAlias != 0 {
				return errStale
			}
			c.old = cur
		case !c.old.IsZero():
			if !s.Current(c.old, c.h) {
				return errStale
			}
			if c.mustLive && c.old.Deadline(c.old.LastAccess()) <= now {
				return ErrExpired
			}
		default:
			k := c.new.Key()
			if !s.Lookup(&k, c.h).IsZero() {
				return errStale // a new ID drawn twice: a 2^-128 event
			}
		}
	}
	return nil
}

// apply makes tx's changes in the shards and the books. Inserts go first,
// so that a reader following a rotation never finds neither ID. Caller
// holds tx's shard locks.
func (e *Engine) apply(tx *txn) {
	for i := range tx.list() {
		c := &tx.list()[i]
		if c.old.IsZero() {
			e.shards[c.si].Insert(c.h, c.new)
			e.remember(c.si, c.new, c.reserved)
		}
	}
	for i := range tx.list() {
		c := &tx.list()[i]
		s := &e.shards[c.si]
		switch {
		case c.old.IsZero():
		case !c.new.IsZero():
			s.Replace(c.old, c.h, c.new)
		default:
			e.forget(c.si, c.old)
			s.Remove(c.old, c.h)
			if !c.alias.IsZero() {
				s.Insert(c.h, c.alias)
			}
		}
	}
}

// remember enters a record just stored in shard si into the engine's books.
// Caller holds the shard's lock.
func (e *Engine) remember(si int, r shard.Rec, reserved bool) {
	if r.Flags()&shard.FlagAlias != 0 {
		return
	}
	u := r.UserID()
	if !reserved {
		e.live.Add(1)
		if u == "" {
			e.anon.Add(1)
		}
	}
	if u != "" {
		e.users.add(u, r.Key(), si)
	}
	e.noteDeadline(r.Deadline(r.LastAccess()))
}

// forget takes a record about to leave shard si out of the engine's books.
// Caller holds the shard's lock.
func (e *Engine) forget(si int, r shard.Rec) {
	if r.Flags()&shard.FlagAlias != 0 {
		return
	}
	e.live.Add(-1)
	if u := r.UserID(); u != "" {
		e.users.remove(u, r.Key())
	} else {
		e.anon.Add(-1)
	}
}

// committed counts tx and reports its events, with no lock held.
func (e *Engine) committed(tx *txn) {
	switch tx.op {
	case txnCreate:
		e.stats.created.Add(1)
	case txnUpdate:
		e.stats.updated.Add(1)
	case txnRotate:
		e.stats.rotated.Add(1)
	}
	var rotatedFrom shard.Rec
	for i := range tx.list() {
		c := &tx.list()[i]
		if c.new.IsZero() {
			if tx.op == txnRotate && c.cause == 0 {
				rotatedFrom = c.old
				continue
			}
			e.count(c.cause)
		}
	}
	if e.opts.OnEvent == nil {
		return
	}
	// Removals first: a Create that evicts reads "evicted, then created".
	at := time.Unix(0, tx.at)
	for i := range tx.list() {
		if c := &tx.list()[i]; c.new.IsZero() && c.cause != 0 {
			e.opts.OnEvent(Event{Kind: c.cause, Handle: handleOf(c.old), UserID: c.old.UserID(), Time: at})
		}
	}
	for i := range tx.list() {
		c := &tx.list()[i]
		switch {
		case c.old.IsZero() && tx.op == txnCreate:
			e.opts.OnEvent(Event{Kind: EventCreated, Handle: handleOf(c.new), UserID: c.new.UserID(), Time: at})
		case c.old.IsZero() && tx.op == txnRotate:
			e.opts.OnEvent(Event{Kind: EventRotated, Handle: handleOf(c.new), Previous: handleOf(rotatedFrom),
				UserID: c.new.UserID(), Time: at})
		}
	}
}

// count counts one session removed for the given cause.
func (e *Engine) count(cause EventKind) {
	switch cause {
	case EventDeleted:
		e.stats.deleted.Add(1)
	case EventRevoked:
		e.stats.revoked.Add(1)
	case EventEvicted:
		e.stats.evicted.Add(1)
		if e.opts.Recorder != nil {
			e.opts.Recorder.ObserveEviction()
		}
	case EventExpired:
		e.stats.expired.Add(1)
	}
}

// encode encodes tx's log record into p: a Put for each change that stores
// a session and a Delete for each that removes one, in a Batch if there are
// several.
func (e *Engine) encode(p *wal.Pending, tx *txn) error {
	var recs [3]wal.Record
	ops := recs[:0]
	var bufs [3]*[]byte
	sealed := bufs[:0]
	defer func() {
		for _, b := range sealed {
			e.sealer.release(b)
		}
	}()
	for i := range tx.list() {
		c := &tx.list()[i]
		switch {
		case !c.new.IsZero():
			ops = append(ops, putRecord(c.new, c.disk))
			if b := e.sealer.sealRecord(&ops[len(ops)-1]); b != nil {
				sealed = append(sealed, b)
			}
		case c.old.Flags()&shard.FlagAlias == 0:
			ops = append(ops, wal.Record{Op: wal.OpDelete, Key: c.disk})
		}
	}
	if len(ops) == 1 {
		return e.encodeErr(p.Encode(&ops[0]))
	}
	return e.encodeErr(p.Encode(&wal.Record{Op: wal.OpBatch, Ops: ops}))
}

// encodeErr turns the log's refusal of a record into the engine's error.
func (e *Engine) encodeErr(err error) error {
	if errors.Is(err, wal.ErrTooLarge) {
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return err
}
