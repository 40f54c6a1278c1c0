package engine

import (
	"errors"
	"fmt"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/token"
	"github.com/sesscache/sesscache/wal"
)

// Create stores a new session and returns it with its freshly generated ID.
// It returns ErrTooLarge, ErrFull, ErrInvalid, ErrReadOnly or ErrClosed, and
// then stores nothing (but see ErrReadOnly).
func (e *Engine) Create(o CreateOptions) (Session, error) {
	if e.closed.Load() {
		return Session{}, ErrClosed
	}
	if err := e.checkSizes(o.UserID, o.Data); err != nil {
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
	if limit := int64(e.opts.MaxSessions); limit > 0 {
		if e.live.Add(1) > limit {
			e.live.Add(-1)
			return Session{}, ErrFull
		}
	} else {
		e.live.Add(1)
	}
	now := e.clock.nanos()
	p := e.pending()
	defer release(p)
	for {
		k := shard.Key(token.New())
		h := shard.Hash(&k)
		meta := shard.Meta{Version: 1, Created: now, Idle: int64(idle), Absolute: satAdd(now, int64(abs)), Hint: uint16(h)}
		if len(o.Fingerprint) > 0 {
			meta.Flags |= shard.FlagBound
			meta.Fingerprint = fingerprintHash(o.Fingerprint)
		}
		r := shard.NewRec(&k, meta, now, o.UserID, o.Data)
		if err := e.encodePut(p, r, wal.Key{Digest: digestOf(&k), Hint: uint16(h)}); err != nil {
			e.live.Add(-1)
			return Session{}, err
		}
		s, si := e.shardOf(h)
		s.Lock()
		if !s.Lookup(&k, h).IsZero() {
			// A 2^-128 event: draw again rather than overwrite.
			s.Unlock()
			continue
		}
		lsn, err := e.appendLocked(p)
		if err != nil {
			s.Unlock()
			e.live.Add(-1)
			return Session{}, err
		}
		s.Insert(h, r)
		if o.UserID != "" {
			e.users.add(o.UserID, k, si)
		}
		s.Unlock()
		e.stats.created.Add(1)
		if err := e.wait(lsn); err != nil {
			return Session{}, err
		}
		if o.UserID != "" && e.opts.MaxSessionsPerUser > 0 {
			if err := e.enforceUserCap(o.UserID, k); err != nil {
				return Session{}, err
			}
		}
		return makeSession(e.tokenOf(k), r, now), nil
	}
}

func (e *Engine) checkSizes(user string, data []byte) error {
	if len(data) > e.opts.MaxDataSize {
		return fmt.Errorf("%w: data is %d bytes, limit %d", ErrTooLarge, len(data), e.opts.MaxDataSize)
	}
	if len(user) > e.opts.MaxUserIDSize {
		return fmt.Errorf("%w: user ID is %d bytes, limit %d", ErrTooLarge, len(user), e.opts.MaxUserIDSize)
	}
	return nil
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
// fn is returned as is and nothing changes.
func (e *Engine) Update(id string, version uint64, fn func(Session) ([]byte, error)) (Session, error) {
	if e.closed.Load() {
		return Session{}, ErrClosed
	}
	k, h, err := e.parse(id)
	if err != nil {
		return Session{}, err
	}
	s, si := e.shardOf(h)
	p := e.pending()
	defer release(p)
	var key wal.Key
	for {
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
		if err := e.checkSizes("", data); err != nil {
			return Session{}, err
		}
		now := e.clock.nanos()
		m := r.Meta()
		m.Version++
		nr := r.With(&k, m, now, data)
		if p != nil && key == (wal.Key{}) {
			key = diskKey(r)
		}
		if err := e.encodePut(p, nr, key); err != nil {
			return Session{}, err
		}
		s.Lock()
		if !s.Current(r, h) {
			s.Unlock()
			if version != 0 {
				return Session{}, ErrVersionConflict
			}
			continue
		}
		if r.Deadline(r.LastAccess()) <= now {
			s.Unlock()
			return Session{}, e.missExpired(r)
		}
		lsn, err := e.appendLocked(p)
		if err != nil {
			s.Unlock()
			return Session{}, err
		}
		s.Replace(r, h, nr)
		s.Unlock()
		if err := e.wait(lsn); err != nil {
			return Session{}, err
		}
		return makeSession(id, nr, nr.LastAccess()), nil
	}
}

// Delete removes the session. It returns ErrNotFound if there is none, or
// ErrExpired if it had already expired (it is removed all the same).
func (e *Engine) Delete(id string) error {
	if e.closed.Load() {
		return ErrClosed
	}
	k, h, err := e.parse(id)
	if err != nil {
		return err
	}
	s, si := e.shardOf(h)
	r, err := e.findLive(s, si, &k, h)
	if errors.Is(err, ErrRotated) || errors.Is(err, ErrNotFound) && !errors.Is(err, ErrExpired) {
		return err
	}
	if r.IsZero() {
		// Expired: remove it all the same.
		if r = e.find(s, si, &k, h); r.IsZero() {
			return ErrNotFound
		}
	}
	p := e.pending()
	defer release(p)
	if err := encodeDelete(p, diskKey(r)); err != nil {
		return err
	}
	s.Lock()
	if !s.Current(r, h) {
		s.Unlock()
		return ErrNotFound
	}
	lsn, err := e.appendLocked(p)
	if err != nil {
		s.Unlock()
		return err
	}
	expired := r.Deadline(r.LastAccess()) <= e.clock.nanos()
	e.forget(si, r)
	s.Remove(r, h)
	s.Unlock()
	if expired {
		e.stats.expired.Add(1)
	} else {
		e.stats.deleted.Add(1)
	}
	if err := e.wait(lsn); err != nil {
		return err
	}
	if expired {
		return ErrExpired
	}
	return nil
}

// satAdd returns a+b, saturating instead of overflowing.
func satAdd(a, b int64) int64 {
	if s := a + b; (s > a) == (b > 0) {
		return s
	}
	if b > 0 {
		return 1<<63 - 1
	}
	return -1 << 63
}
