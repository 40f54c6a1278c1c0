package engine

import (
	"context"
	"iter"
	"math/rand/v2"
	"time"

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
		return shard.Key{}, 0, ErrMalformedToken
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
// extends its idle deadline. A session bound to a fingerprint
// (CreateOptions.Fingerprint) is not found through Get: use GetBound. An
// old ID within RotateGrace returns a read-only, anonymous view
// (Session.Rotated). Get returns ErrMalformedToken, ErrNotFound, ErrExpired
// (which also matches ErrNotFound) or ErrClosed. It takes no lock and does
// not allocate.
func (e *Engine) Get(id string) (Session, error) { return e.get(id, nil, false) }

// GetBound is Get that also finds a session bound to fingerprint: a bound
// session is found only when fingerprint matches the one it was created
// with; a mismatch is reported as ErrNotFound, counted in
// Stats.BindingMismatches, and does not count as an access. An unbound
// session is found whatever the fingerprint.
func (e *Engine) GetBound(id string, fingerprint []byte) (Session, error) {
	return e.get(id, fingerprint, false)
}

// Find is GetBound with a context, for callers that take sessions through
// an interface whose other implementations do I/O (httpsession.Store); the
// engine's lookups never wait, so ctx is not consulted.
func (e *Engine) Find(_ context.Context, id string, fingerprint []byte) (Session, error) {
	return e.get(id, fingerprint, false)
}

// fingerprintHash is the 64-bit hash a bound session keeps of its
// fingerprint. It need not be secret: it only has to tell clients apart.
func fingerprintHash(fp []byte) uint64 { return xxhash.Sum64(fp) }

// get finds the session under id; fp is the caller's fingerprint, nil for
// Get. timed is set when the caller is get itself, timing the lookup.
//
// Get, GetBound and Find call get directly, and get times itself for the
// Recorder (calling itself with timed set), rather than going through a
// wrapper that does: with uniform keys over a million sessions, lookups
// made through one more call layer measured 30-40% slower (one processor,
// collector off: 600-650 against 450-490 ns). The call itself costs a few
// nanoseconds; why the layer costs so much more we have not found.
func (e *Engine) get(id string, fp []byte, timed bool) (Session, error) {
	if !timed && e.opts.Recorder != nil && rand.Uint32()%GetSampleEvery == 0 {
		start := time.Now()
		s, err := e.get(id, fp, true)
		e.opts.Recorder.ObserveGet(time.Since(start), err == nil)
		return s, err
	}
	if e.closed.Load() {
		return Session{}, ErrClosed
	}
	k, h, err := e.parse(id)
	if err != nil {
		e.stats.misses.add(1)
		return Session{}, err
	}
	s, si := e.shardOf(h)
	r := s.Lookup(&k, h)
	if r.IsZero() {
		if s.Colds() > 0 {
			r = e.promote(s, si, &k, h)
		}
		if r.IsZero() {
			e.stats.misses.add(1)
			return Session{}, ErrNotFound
		}
	}
	now := e.now()
	la := r.LastAccess()
	if r.Deadline(la) <= now || r.Flags()&(shard.FlagAlias|shard.FlagBound|shard.FlagCold) != 0 {
		return e.getSlow(id, r, now, fp)
	}
	if now-la >= min(e.touchGrain, r.Idle()>>6) {
		r.Touch(now)
		la = now
		if e.claimTouch && r.ClaimLog(now, e.touchSecs) {
			e.touched(r, now)
		}
	}
	e.stats.hits.add(1)
	return makeSession(id, r, la), nil
}

// touched logs, or reports to OnTouch, an access that moved r's last
// access a TouchLogInterval on.
func (e *Engine) touched(r shard.Rec, now int64) {
	if e.jr != nil {
		e.logTouch(r, now)
	}
	if e.opts.OnTouch != nil {
		e.opts.OnTouch(handleOf(r), time.Unix(0, now))
	}
}

// getSlow is get for a record that is expired, a rotation's grace entry,
// bound to a fingerprint, or keyed by a digest.
func (e *Engine) getSlow(id string, r shard.Rec, now int64, fp []byte) (Session, error) {
	switch {
	case r.Flags()&shard.FlagCold != 0:
		// The presented ID's raw bytes equal some recovered session's
		// digest: its on-disk name, which must never open it.
		e.stats.misses.add(1)
		return Session{}, ErrNotFound
	case r.Flags()&shard.FlagAlias != 0:
		return e.getAlias(id, r, now, fp)
	}
	if err := e.refuse(r, now, fp); err != nil {
		return Session{}, err
	}
	la := r.LastAccess()
	if now-la >= min(e.touchGrain, r.Idle()>>6) {
		r.Touch(now)
		la = now
		if e.claimTouch && r.ClaimLog(now, e.touchSecs) {
			e.touched(r, now)
		}
	}
	e.stats.hits.add(1)
	return makeSession(id, r, la), nil
}

// refuse returns the error for a record a lookup must not return: expired,
// or bound to a fingerprint the caller did not give.
func (e *Engine) refuse(r shard.Rec, now int64, fp []byte) error {
	if r.Deadline(r.LastAccess()) <= now {
		e.stats.misses.add(1)
		return ErrExpired
	}
	if r.Flags()&shard.FlagBound != 0 && (len(fp) == 0 || r.Fingerprint() != fingerprintHash(fp)) {
		e.stats.misses.add(1)
		e.stats.mismatches.Add(1)
		return ErrNotFound
	}
	return nil
}

// getAlias serves an old ID within RotateGrace: a read-only, anonymous
// view of the session it was rotated to, under the old ID, without
// recording an access. It never reveals the new ID.
func (e *Engine) getAlias(id string, a shard.Rec, now int64, fp []byte) (Session, error) {
	if a.Deadline(a.LastAccess()) <= now {
		e.stats.misses.add(1)
		return Session{}, ErrNotFound
	}
	k := shard.Key(a.Data())
	h := shard.Hash(&k)
	s, _ := e.shardOf(h)
	t := s.Lookup(&k, h)
	if t.IsZero() || t.Flags()&(shard.FlagAlias|shard.FlagCold) != 0 {
		e.stats.misses.add(1)
		return Session{}, ErrNotFound
	}
	if err := e.refuse(t, now, fp); err != nil {
		return Session{}, err
	}
	e.stats.hits.add(1)
	return Session{id: id, rec: t, la: t.LastAccess(), view: viewGrace}, nil
}

// find returns the record under raw ID k, promoting a recovered session that
// is still keyed by its digest; the zero Rec if there is none. A record
// keyed by a digest is never returned for a raw ID equal to that digest.
func (e *Engine) find(s *engShard, si int, k *shard.Key, h uint64) shard.Rec {
	r := s.Lookup(k, h)
	if r.IsZero() && s.Colds() > 0 {
		r = e.promote(s, si, k, h)
	}
	if !r.IsZero() && r.Flags()&shard.FlagCold != 0 {
		return shard.Rec{}
	}
	return r
}

// findLive finds the live session under k: present, not an alias, not past
// its deadline.
func (e *Engine) findLive(s *engShard, si int, k *shard.Key, h uint64) (shard.Rec, error) {
	r := e.find(s, si, k, h)
	if r.IsZero() {
		return shard.Rec{}, ErrNotFound
	}
	if r.Deadline(r.LastAccess()) <= e.now() {
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

// promote re-keys the recovered session whose digest matches raw ID k from
// its digest to k, now that a request has presented the ID, and returns it;
// the zero Rec if there is none. Its callers looked k up and missed first.
// It waits out a write pending on the session, whose record it would
// otherwise re-key from under it.
func (e *Engine) promote(s *engShard, si int, k *shard.Key, h uint64) shard.Rec {
	d := digestOf(k)
	dh := shard.Hash(&d)
	if s.Lookup(&d, dh).IsZero() {
		// Absent, or promoted by someone else since the caller's miss: the
		// re-key publishes k before it drops d, so look k up again.
		return s.Lookup(k, h)
	}
	s.Lock()
	defer s.Unlock()
	for {
		if r := s.Lookup(k, h); !r.IsZero() {
			return r
		}
		cold := s.Lookup(&d, dh)
		if cold.IsZero() || cold.Flags()&shard.FlagCold == 0 {
			return shard.Rec{}
		}
		if s.pending[d] == nil {
			m := cold.Meta()
			m.Flags &^= shard.FlagCold
			m.Digest = d
			hot := cold.With(k, m, cold.LastAccess(), cold.Data())
			s.Rekey(cold, dh, hot, h)
			if u := hot.UserID(); u != "" {
				e.users.move(u, d, *k, si)
			}
			return hot
		}
		s.resolved.Wait()
	}
}

// All returns an iterator over the live sessions, by handle, as otter's
// All does. It sees each shard as of one moment, shard by shard, and yields
// without holding any lock, so the loop body may call the engine. Sessions
// come without their token (ID is empty): use the Handle to end one with
// RevokeSession. A closed engine yields nothing.
func (e *Engine) All() iter.Seq2[Handle, Session] {
	return func(yield func(Handle, Session) bool) {
		var recs []shard.Rec
		for i := range e.shards {
			if e.closed.Load() {
				return
			}
			s := &e.shards[i]
			recs = recs[:0]
			s.Lock()
			s.Range(func(r shard.Rec) bool {
				recs = append(recs, r)
				return true
			})
			s.Unlock()
			now := e.now()
			for _, r := range recs {
				la := r.LastAccess()
				if r.Flags()&shard.FlagAlias != 0 || r.Deadline(la) <= now {
					continue
				}
				if !yield(handleOf(r), Session{rec: r, la: la, view: viewListed}) {
					return
				}
			}
		}
	}
}
