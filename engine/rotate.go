package engine

import (
	"slices"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/token"
	"github.com/sesscache/sesscache/wal"
)

// Rotate moves a session to a fresh ID and returns it under that ID: same
// owner, data, creation time and deadlines, version bumped. The old ID stops
// working at once (or after Options.RotateGrace, read-only). Call it after
// any change of privilege, so an ID an attacker planted or saw before is
// worthless after.
func (e *Engine) Rotate(id string) (Session, error) { return e.RotateWith(id, RotateOptions{}) }

// RotateOptions changes a session as it moves to a fresh ID.
type RotateOptions struct {
	// UserID, if not empty, makes it the session's owner: the login of an
	// anonymous session, or a switch of user, in one atomic, logged step.
	UserID string
}

// RotateWith is Rotate that may also change the session's owner.
func (e *Engine) RotateWith(id string, o RotateOptions) (Session, error) {
	if e.closed.Load() {
		return Session{}, ErrClosed
	}
	if err := e.checkSizes(o.UserID, nil); err != nil {
		return Session{}, err
	}
	k, h, err := e.parse(id)
	if err != nil {
		return Session{}, err
	}
	s1, i1 := e.shardOf(h)
	p := e.pending()
	defer release(p)
	for {
		r, err := e.findLive(s1, i1, &k, h)
		if err != nil {
			return Session{}, err
		}
		nk := shard.Key(token.New())
		nh := shard.Hash(&nk)
		s2, i2 := e.shardOf(nh)
		m := r.Meta()
		m.Version++
		m.Hint = uint16(nh)
		now := e.clock.nanos()
		owner := r.UserID()
		if o.UserID != "" {
			owner = o.UserID
		}
		nr := shard.NewRec(&nk, m, max(now, r.LastAccess()), owner, r.Data())
		if p != nil {
			put := putRecord(nr, wal.Key{Digest: digestOf(&nk), Hint: uint16(nh)})
			buf := e.sealer.sealRecord(&put)
			err := p.Encode(&wal.Record{Op: wal.OpBatch, Ops: []wal.Record{{Op: wal.OpDelete, Key: diskKey(r)}, put}})
			e.sealer.release(buf)
			if err != nil {
				return Session{}, err
			}
		}
		unlock := e.lockShards(i1, i2)
		if !s1.Current(r, h) || !s2.Lookup(&nk, nh).IsZero() {
			unlock()
			continue
		}
		lsn, err := e.appendLocked(p)
		if err != nil {
			unlock()
			return Session{}, err
		}
		s1.Remove(r, h)
		s2.Insert(nh, nr)
		if u := r.UserID(); u != "" {
			e.users.remove(u, k)
		}
		if owner != "" {
			e.users.add(owner, nk, i2)
		}
		if g := int64(e.opts.RotateGrace); g > 0 {
			// The old ID forwards to the new one, read-only, until the grace
			// period ends; the janitor reaps the forwarding entry then.
			s1.Insert(h, shard.NewRec(&k, shard.Meta{Created: now, Idle: g, Absolute: satAdd(now, g),
				Flags: shard.FlagAlias, Hint: uint16(h)}, now, "", nk[:]))
		}
		unlock()
		e.stats.deleted.Add(1)
		if err := e.wait(lsn); err != nil {
			return Session{}, err
		}
		if owner != r.UserID() && e.opts.MaxSessionsPerUser > 0 {
			if err := e.enforceUserCap(owner, nk); err != nil {
				return Session{}, err
			}
		}
		return makeSession(e.tokenOf(nk), nr, nr.LastAccess()), nil
	}
}

// lockShards locks the given shards in ascending order, each once, and
// returns the function that unlocks them.
func (e *Engine) lockShards(idx ...int) func() {
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		e.shards[i].Lock()
	}
	return func() {
		for _, i := range slices.Backward(idx) {
			e.shards[i].Unlock()
		}
	}
}
