package engine

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/token"
	"github.com/sesscache/sesscache/wal"
)

// parse turns a presented ID into its key and hash, rejecting anything this
// store could not have issued before any lookup.
func (e *Engine) parse(id string) (shard.Key, uint64, error) {
	var k token.ID
	var err error
	if e.signer != nil {
		k, err = e.signer.Verify(id)
	} else {
		k, err = token.Parse(id)
	}
	if err != nil {
		return shard.Key{}, 0, err
	}
	sk := shard.Key(k)
	return sk, shard.Hash(&sk), nil
}

// tokenOf returns the token a client presents for raw ID k.
func (e *Engine) tokenOf(k shard.Key) string {
	if e.signer != nil {
		return e.signer.Sign(token.ID(k))
	}
	return token.ID(k).String()
}

// Get returns the session with the given ID and records the access, which
// extends its idle deadline. It does not check a fingerprint binding (see
// GetBound). It returns ErrMalformedToken, ErrNotFound, ErrExpired (which
// also matches ErrNotFound) or ErrClosed.
func (e *Engine) Get(id string) (Session, error) { return e.get(id, 0, 0) }

// GetBound is Get for a session that may be bound to a client fingerprint
// (CreateOptions.Fingerprint): a bound session is found only when
// fingerprint matches; a mismatch is reported as ErrNotFound, counted in
// Stats.BindingMismatches, and does not count as an access. An unbound
// session is found whatever the fingerprint.
func (e *Engine) GetBound(id string, fingerprint []byte) (Session, error) {
	return e.get(id, shard.FlagBound, fingerprintHash(fingerprint))
}

// fingerprintHash is the 64-bit hash a bound session keeps of its
// fingerprint. It need not be secret: it only has to tell clients apart.
func fingerprintHash(fp []byte) uint64 { return xxhash.Sum64(fp) }

// get is Get, checking a binding when check has FlagBound.
func (e *Engine) get(id string, check uint8, fp uint64) (Session, error) {
	if e.closed.Load() {
		return Session{}, ErrClosed
	}
	k, h, err := e.parse(id)
	if err != nil {
		return Session{}, err
	}
	s, si := e.shardOf(h)
	r := s.Lookup(&k, h)
	if r.IsZero() && s.Colds() > 0 {
		r = e.promote(s, si, &k, h)
	}
	if r.IsZero() {
		e.stats.misses.Add(1)
		return Session{}, ErrNotFound
	}
	now := e.clock.nanos()
	la := r.LastAccess()
	if r.Deadline(la) <= now || r.Flags()&(shard.FlagAlias|check) != 0 {
		if err := e.refuse(r, now, fp); err != nil {
			return Session{}, err
		}
		if r.Flags()&shard.FlagAlias != 0 {
			return e.getAlias(r, now, check, fp)
		}
	}
	if now > la {
		r.Touch(now)
		la = now
		if e.jr != nil && r.ClaimLog(now, e.jr.touchSecs) {
			e.logTouch(r, now)
		}
	}
	e.stats.hits.inc()
	return makeSession(id, r, la), nil
}

// refuse returns the error for a record Get must not return: expired, or
// bound to another fingerprint.
func (e *Engine) refuse(r shard.Rec, now int64, fp uint64) error {
	if r.Deadline(r.LastAccess()) <= now {
		return e.missExpired(r)
	}
	if r.Flags()&shard.FlagBound != 0 && r.Fingerprint() != fp {
		e.stats.misses.Add(1)
		e.stats.mismatches.Add(1)
		return ErrNotFound
	}
	return nil
}

// getAlias resolves the forwarding entry a rotation left under an old ID
// to the session's new ID, without recording an access.
func (e *Engine) getAlias(r shard.Rec, now int64, check uint8, fp uint64) (Session, error) {
	k := shard.Key(r.Data())
	h := shard.Hash(&k)
	s, _ := e.shardOf(h)
	t := s.Lookup(&k, h)
	if t.IsZero() || t.Flags()&shard.FlagAlias != 0 {
		e.stats.misses.Add(1)
		return Session{}, ErrNotFound
	}
	if t.Flags()&check == 0 {
		fp = t.Fingerprint() // no binding to check
	}
	if err := e.refuse(t, now, fp); err != nil {
		return Session{}, err
	}
	e.stats.hits.inc()
	return Session{id: e.tokenOf(k), rec: t, la: t.LastAccess(), rotated: true}, nil
}

func (e *Engine) missExpired(r shard.Rec) error {
	e.stats.misses.Add(1)
	if r.Flags()&shard.FlagAlias != 0 {
		return ErrNotFound
	}
	e.stats.expired.Add(1)
	return ErrExpired
}

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

// find returns the record under raw ID k, promoting a recovered session that
// is still keyed by its digest; the zero Rec if there is none.
func (e *Engine) find(s *shard.Shard, si int, k *shard.Key, h uint64) shard.Rec {
	r := s.Lookup(k, h)
	if r.IsZero() && s.Colds() > 0 {
		r = e.promote(s, si, k, h)
	}
	return r
}

// findLive finds the live session under k: present, not an alias, not past
// its deadline.
func (e *Engine) findLive(s *shard.Shard, si int, k *shard.Key, h uint64) (shard.Rec, error) {
	r := e.find(s, si, k, h)
	if r.IsZero() {
		return shard.Rec{}, ErrNotFound
	}
	if r.Deadline(r.LastAccess()) <= e.clock.nanos() {
		if r.Flags()&shard.FlagAlias != 0 {
			return shard.Rec{}, ErrNotFound
		}
		return shard.Rec{}, ErrExpired
	}
	if r.Flags()&shard.FlagAlias != 0 {
		return shard.Rec{}, ErrRotated
	}
	return r, nil
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

// RevokeUser deletes every session owned by user that existed when it was
// called, including any rotated meanwhile, and returns how many it deleted.
// The deletions are logged as one record, so recovery applies all or none.
// Sessions the user creates while it runs may survive.
func (e *Engine) RevokeUser(user string) (int, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	if user == "" {
		return 0, fmt.Errorf("%w: empty user ID", ErrInvalid)
	}
	start := e.clock.nanos()
	total := 0
	p := e.pending()
	defer release(p)
	type doomed struct {
		r  shard.Rec
		si int
		h  uint64
	}
	for {
		var victims []doomed
		var dels []wal.Record
		var idx []int
		moved := false
		for _, uk := range e.users.list(user) {
			h := shard.Hash(&uk.key)
			r := e.shards[uk.shard].Lookup(&uk.key, h)
			if r.IsZero() {
				// Deleted, or rotated to a key the next listing holds.
				moved = true
				continue
			}
			if r.UserID() != user || r.Created() > start {
				continue
			}
			victims = append(victims, doomed{r, uk.shard, h})
			idx = append(idx, uk.shard)
			if p != nil {
				dels = append(dels, wal.Record{Op: wal.OpDelete, Key: diskKey(r)})
			}
		}
		if len(victims) > 0 {
			if p != nil {
				if err := p.Encode(&wal.Record{Op: wal.OpBatch, Ops: dels}); err != nil {
					return total, err
				}
			}
			unlock := e.lockShards(idx...)
			changed := false
			for _, v := range victims {
				if !e.shards[v.si].Current(v.r, v.h) {
					changed = true
					break
				}
			}
			if changed {
				unlock()
				continue
			}
			lsn, err := e.appendLocked(p)
			if err != nil {
				unlock()
				return total, err
			}
			for _, v := range victims {
				e.forget(v.si, v.r)
				e.shards[v.si].Remove(v.r, v.h)
			}
			unlock()
			e.stats.deleted.Add(uint64(len(victims)))
			total += len(victims)
			if err := e.wait(lsn); err != nil {
				return total, err
			}
		}
		if !moved {
			return total, nil
		}
	}
}

// Range calls fn for each live session until fn returns false. It sees each
// shard as of one moment, shard by shard, and calls fn without holding any
// lock, so fn may call the engine.
func (e *Engine) Range(fn func(Session) bool) error {
	if e.closed.Load() {
		return ErrClosed
	}
	var recs []shard.Rec
	for i := range e.shards {
		s := &e.shards[i].Shard
		recs = recs[:0]
		s.Lock()
		s.Range(func(r shard.Rec) bool {
			recs = append(recs, r)
			return true
		})
		s.Unlock()
		now := e.clock.nanos()
		for _, r := range recs {
			la := r.LastAccess()
			if r.Flags()&shard.FlagAlias != 0 || r.Deadline(la) <= now {
				continue
			}
			id := ""
			if r.Flags()&shard.FlagCold == 0 {
				id = e.tokenOf(r.Key())
			}
			if !fn(makeSession(id, r, la)) {
				return nil
			}
		}
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
