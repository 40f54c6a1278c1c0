package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/token"
)

// Rotate moves a session to a fresh ID and returns it under that ID: same
// owner, data, creation time and deadlines, version bumped. The old ID stops
// working at once, or, with Options.RotateGrace, serves reads only, as an
// anonymous view, for that long. After a change of privilege use RotateWith
// with Privileged or a UserID, which end the old ID at once whatever the
// grace.
func (e *Engine) Rotate(ctx context.Context, id string) (Session, error) {
	return e.RotateWith(ctx, id, RotateOptions{})
}

// RotateWith is Rotate that may also authenticate the session as a user
// (a login), mark the rotation as a change of privilege, or relabel the
// session, all in one atomic, logged step. With Options.MaxSessionsPerUser,
// a login that takes the user past the cap evicts the user's session that
// authenticated longest ago, in the same step.
func (e *Engine) RotateWith(ctx context.Context, id string, o RotateOptions) (sess Session, err error) {
	defer e.observe(OpRotate, e.startTimer(), &err)
	if err := e.writable(); err != nil {
		return Session{}, err
	}
	if err := e.checkSizes(o.UserID, o.Label, nil); err != nil {
		return Session{}, err
	}
	k, h, err := e.parse(id)
	if err != nil {
		return Session{}, err
	}
	privileged := o.Privileged || o.UserID != ""
	if o.UserID != "" && e.opts.MaxSessionsPerUser > 0 {
		mu := e.users.writer(o.UserID)
		mu.Lock()
		defer mu.Unlock()
	}
	s1, i1 := e.shardOf(h)
	for attempt := 0; ; attempt++ {
		r, err := e.findLive(s1, i1, &k, h)
		if err != nil {
			return Session{}, err
		}
		now := e.now()
		nk := shard.Key(token.New())
		nh := shard.Hash(&nk)
		_, i2 := e.shardOf(nh)
		m := r.Meta()
		m.Version++
		m.Hint = uint16(nh)
		disk := e.diskKeyOf(&nk, uint16(nh))
		m.Digest = shard.Key(disk.Digest)
		owner, label := r.UserID(), r.Label()
		if o.UserID != "" {
			owner = o.UserID
			m.AuthAt = e.nextStamp(now)
		}
		if o.Label != "" {
			label = o.Label
		}
		nr := shard.NewRec(&nk, m, max(now, r.LastAccess()), owner, label, r.Data())
		var alias shard.Rec
		if g := int64(e.opts.RotateGrace); g > 0 && !privileged {
			// The old ID leads to the new session, read-only, until the
			// grace period ends; the janitor reaps the entry then.
			alias = shard.NewRec(&k, shard.Meta{Created: now, Idle: g, Absolute: satAdd(now, g),
				Flags: shard.FlagAlias, Hint: uint16(h)}, now, "", "", nk[:])
		}
		tx := new(txn).init(txnRotate, now)
		tx.add(change{si: i1, h: h, old: r, alias: alias, disk: e.diskKey(r)})
		tx.add(change{si: i2, h: nh, new: nr, disk: disk})
		err = nil
		if owner != r.UserID() {
			err = e.addEvictions(tx, owner, overage{}, nk)
		}
		if err == nil {
			err = e.commit(ctx, tx)
		}
		switch {
		case err == nil:
			return makeSession(e.tokenOf(nk), nr, nr.LastAccess()), nil
		case !errors.Is(err, errStale):
			return Session{}, err
		case attempt >= maxAttempts:
			return Session{}, fmt.Errorf("%w: gave up after %d attempts", ErrVersionConflict, attempt+1)
		}
	}
}
