package engine

import (
	"github.com/cespare/xxhash/v2"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/token"
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
	// The ID's first token.Len characters are the canonical text of k, so
	// hashing them equals shard.Hash(k); reading the text, not k, lets the
	// CPU start the hash, and the table probe it leads to, while the
	// decoding that produced k is still finishing.
	return shard.Key(k), shard.HashText(id[:token.Len]), nil
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
