package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/token"
	"github.com/sesscache/sesscache/wal"
)

// Create stores a new session and returns it with its freshly generated ID.
// At Options.MaxSessions, MaxAnonymousSessions or MaxSessionsPerUser it
// evicts what those options say in the same atomic step. It returns
// ErrTooLarge, ErrFull, ErrInvalid, ErrReadOnly, ErrClosed or ctx's error,
// and then stores nothing.
func (e *Engine) Create(ctx context.Context, o CreateOptions) (s Session, err error) {
	defer e.observe(OpCreate, e.startTimer(), &err)
	if err := e.writable(); err != nil {
		return Session{}, err
	}
	if err := e.checkSizes(o.UserID, o.Label, o.Data); err != nil {
		return Session{}, err
	}
	if o.IdleTimeout < 0 || o.AbsoluteTimeout < 0 {
		return Session{}, fmt.Errorf("%w: negative timeout", ErrInvalid)
	}
	idle, abs := e.opts.IdleTimeout, e.opts.AbsoluteTimeout
	if o.IdleTimeout > 0 {
		idle = o.IdleTimeout
	}
	if o.AbsoluteTimeout > 0 {
		abs = o.AbsoluteTimeout
	}
	owned := o.UserID != ""
	if owned && e.opts.MaxSessionsPerUser > 0 {
		// One creation or login at a time per user, so that the cap counts
		// right; other users' creations are not held up.
		mu := e.users.writer(o.UserID)
		mu.Lock()
		defer mu.Unlock()
	}
	over := e.reserve(!owned)
	defer func() {
		if err != nil {
			e.unreserve(!owned)
		}
	}()
	for attempt := 0; ; attempt++ {
		now := e.now()
		stamp := e.nextStamp(now)
		k := shard.Key(token.New())
		h := shard.Hash(&k)
		m := shard.Meta{Version: 1, Created: stamp, Idle: int64(idle), Absolute: satAdd(stamp, int64(abs)), Hint: uint16(h)}
		if owned {
			m.AuthAt = stamp
		}
		if len(o.Fingerprint) > 0 {
			m.Flags |= shard.FlagBound
			m.Fingerprint = fingerprintHash(o.Fingerprint)
		}
		disk := e.diskKeyOf(&k, uint16(h))
		m.Digest = shard.Key(disk.Digest)
		r := shard.NewRec(&k, m, now, o.UserID, o.Label, o.Data)
		tx := new(txn).init(txnCreate, now)
		_, si := e.shardOf(h)
		tx.add(change{si: si, h: h, new: r, disk: disk, reserved: true})
		err := e.addEvictions(tx, o.UserID, over, k)
		if err == nil {
			err = e.commit(ctx, tx)
		}
		switch {
		case err == nil:
			return makeSession(e.tokenOf(k), r, now), nil
		case errors.Is(err, errStale) && attempt < maxAttempts:
			continue
		case errors.Is(err, errStale):
			return Session{}, fmt.Errorf("%w: gave up after %d attempts", ErrVersionConflict, attempt+1)
		}
		return Session{}, err
	}
}

// checkSizes checks a write's owner, label and data against their limits.
func (e *Engine) checkSizes(user, label string, data []byte) error {
	switch {
	case len(data) > e.opts.MaxDataSize:
		return fmt.Errorf("%w: data is %d bytes, limit %d", ErrTooLarge, len(data), e.opts.MaxDataSize)
	case len(user) > e.opts.MaxUserIDSize:
		return fmt.Errorf("%w: user ID is %d bytes, limit %d", ErrTooLarge, len(user), e.opts.MaxUserIDSize)
	case len(label) > e.opts.MaxLabelSize:
		return fmt.Errorf("%w: label is %d bytes, limit %d", ErrTooLarge, len(label), e.opts.MaxLabelSize)
	}
	return nil
}

// diskKeyOf returns the on-disk name of the session with raw ID k, or the
// zero Key for an in-memory engine, which needs none.
func (e *Engine) diskKeyOf(k *shard.Key, hint uint16) wal.Key {
	if e.jr == nil {
		return wal.Key{}
	}
	return wal.Key{Digest: digestOf(k), Hint: hint}
}

// diskKey returns the on-disk key of record r, whose in-memory key is hot
// (a raw ID) or cold (already a digest).
func (e *Engine) diskKey(r shard.Rec) wal.Key {
	if e.jr == nil {
		return wal.Key{}
	}
	return diskKey(r)
}

// Update replaces a session's data with what fn returns for the current
// session, bumping its version and recording an access. With version 0 it
// always applies; otherwise it applies only if the session is still at that
// version and returns ErrVersionConflict if not.
//
// fn runs without any lock held, so it may be slow or call the engine; if
// another write lands between reading the session and storing fn's result,
// Update calls fn again with the newer session (or, given a version, returns
// ErrVersionConflict). fn must not modify the data it is given. An error from
// fn is returned as is and nothing changes. Update returns ErrRotated for an
// old ID within RotateGrace.
func (e *Engine) Update(ctx context.Context, id string, version uint64, fn func(Session) ([]byte, error)) (sess Session, err error) {
	defer e.observe(OpUpdate, e.startTimer(), &err)
	if err := e.writable(); err != nil {
		return Session{}, err
	}
	k, h, err := e.parse(id)
	if err != nil {
		return Session{}, err
	}
	s, si := e.shardOf(h)
	var disk wal.Key
	for attempt := 0; ; attempt++ {
		r, err := e.findLive(s, si, &k, h)
		if err != nil {
			return Session{}, err
		}
		if version != 0 && r.Version() != version {
			return Session{}, ErrVersionConflict
		}
		data, err := fn(makeSession(id, r, r.LastAccess()))
		if err != nil {
			return Session{}, err
		}
		if err := e.checkSizes("", "", data); err != nil {
			return Session{}, err
		}
		now := e.now()
		m := r.Meta()
		m.Version++
		rk := r.Key()
		nr := r.With(&rk, m, now, data)
		if attempt == 0 {
			disk = e.diskKey(r)
		}
		tx := new(txn).init(txnUpdate, now)
		tx.add(change{si: si, h: h, old: r, new: nr, disk: disk, mustLive: true})
		err = e.commit(ctx, tx)
		switch {
		case err == nil:
			return makeSession(id, nr, nr.LastAccess()), nil
		case errors.Is(err, ErrExpired):
			e.stats.misses.add(1)
			return Session{}, err
		case !errors.Is(err, errStale):
			return Session{}, err
		case version != 0:
			return Session{}, ErrVersionConflict
		case attempt >= maxAttempts:
			return Session{}, fmt.Errorf("%w: gave up after %d attempts", ErrVersionConflict, attempt+1)
		}
	}
}

// Delete ends the session: a logout. It returns nil whether or not there
// was a live session under id (deleting what is gone succeeds, as scs's
// stores do); only a malformed token, a closed or read-only engine, or
// ctx's error fail it. Given an old ID within RotateGrace, it ends that
// old ID's read-only access and leaves the session under its new ID alone.
// The deletion is fsynced before Delete returns, whatever the sync policy.
func (e *Engine) Delete(ctx context.Context, id string) (err error) {
	defer e.observe(OpDelete, e.startTimer(), &err)
	if err := e.writable(); err != nil {
		return err
	}
	k, h, err := e.parse(id)
	if err != nil {
		return err
	}
	s, si := e.shardOf(h)
	for attempt := 0; attempt <= maxAttempts; attempt++ {
		r := e.find(s, si, &k, h)
		if r.IsZero() {
			return nil
		}
		if r.Flags()&shard.FlagAlias != 0 {
			e.dropAlias(s, r, h)
			return nil
		}
		cause := EventDeleted
		now := e.now()
		if r.Deadline(r.LastAccess()) <= now {
			cause = EventExpired
		}
		tx := new(txn).init(txnRemove, now)
		tx.durable = true
		tx.add(change{si: si, h: h, old: r, disk: e.diskKey(r), cause: cause})
		if err := e.commit(ctx, tx); !errors.Is(err, errStale) {
			return err
		}
	}
	return fmt.Errorf("%w: gave up after %d attempts", ErrVersionConflict, maxAttempts+1)
}

// dropAlias removes a rotation's grace entry, which is not logged.
func (e *Engine) dropAlias(s *engShard, r shard.Rec, h uint64) {
	s.Lock()
	if s.Current(r, h) {
		s.Remove(r, h)
	}
	s.Unlock()
}

// SetDeadline sets the session's absolute expiry to t, which may shorten or
// lengthen its life, as scs's SetDeadline does, and records an access. It
// returns Update's errors; a t not after the engine's clock returns
// ErrInvalid (use Delete to end a session).
func (e *Engine) SetDeadline(ctx context.Context, id string, t time.Time) (sess Session, err error) {
	defer e.observe(OpUpdate, e.startTimer(), &err)
	if err := e.writable(); err != nil {
		return Session{}, err
	}
	k, h, err := e.parse(id)
	if err != nil {
		return Session{}, err
	}
	if t.UnixNano() <= e.now() {
		return Session{}, fmt.Errorf("%w: deadline not in the future", ErrInvalid)
	}
	s, si := e.shardOf(h)
	for attempt := 0; ; attempt++ {
		r, err := e.findLive(s, si, &k, h)
		if err != nil {
			return Session{}, err
		}
		now := e.now()
		m := r.Meta()
		m.Version++
		m.Absolute = t.UnixNano()
		rk := r.Key()
		nr := r.With(&rk, m, now, r.Data())
		tx := new(txn).init(txnUpdate, now)
		tx.add(change{si: si, h: h, old: r, new: nr, disk: e.diskKey(r), mustLive: true})
		err = e.commit(ctx, tx)
		switch {
		case err == nil:
			return makeSession(id, nr, nr.LastAccess()), nil
		case !errors.Is(err, errStale):
			return Session{}, err
		case attempt >= maxAttempts:
			return Session{}, fmt.Errorf("%w: gave up after %d attempts", ErrVersionConflict, attempt+1)
		}
	}
}
