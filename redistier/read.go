package redistier

import (
	"context"
	"errors"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// Find returns the session with the given ID, as engine.Engine.Find does:
// a bound session only with its fingerprint; an old ID within RotateGrace
// as a read-only, anonymous view (Session.Rotated); ErrMalformedToken,
// ErrNotFound or ErrExpired (which matches ErrNotFound) when there is none.
//
// A session this instance holds a current copy of is served from memory,
// with no network I/O and no allocation; the access is written to Redis
// behind, at most once per TouchLogInterval. Otherwise Find reads Redis
// (one round trip) and keeps a copy. It fails with ErrUnavailable rather
// than serve a copy that may have been revoked (see Options.ServeStale).
func (s *Store) Find(ctx context.Context, id string, fingerprint []byte) (engine.Session, error) {
	if s.degradedSince.Load() == 0 {
		if sess, err := s.local.Find(ctx, id, fingerprint); err == nil {
			return sess, nil
		}
	}
	return s.find(ctx, id, fingerprint)
}

// find is Find past the fast path: a miss, or invalidations lost.
func (s *Store) find(ctx context.Context, id string, fingerprint []byte) (engine.Session, error) {
	if d := s.degradedSince.Load(); d != 0 && s.staleOK(d) {
		if sess, err := s.local.Find(ctx, id, fingerprint); err == nil {
			return sess, nil
		}
	}
	if s.closed.Load() {
		return engine.Session{}, engine.ErrClosed
	}
	h, err := s.local.HandleOf(id)
	if err != nil {
		return engine.Session{}, err
	}
	return s.read(ctx, id, h, fingerprint, true)
}

// staleOK says whether copies may still be served, invalidations having
// been lost at d (unix ns).
func (s *Store) staleOK(d int64) bool {
	return time.Since(time.Unix(0, d)) < s.opts.ServeStale
}

// read reads the session under id from Redis, keeping a copy if it may.
// With bind, a bound session is returned only for its fingerprint, as Find
// does; without, it is returned whatever fp (a write's read). Concurrent
// reads of one ID share one round trip.
func (s *Store) read(ctx context.Context, id string, h engine.Handle, fp []byte, bind bool) (engine.Session, error) {
	sess, bound, err := s.shared(ctx, id, h)
	if err != nil {
		return engine.Session{}, err
	}
	if bind && !fits(bound, fp) {
		return engine.Session{}, engine.ErrNotFound
	}
	return sess, nil
}

// flight is one read of an ID that other readers of it wait for.
type flight struct {
	t     ticket // as the read began
	done  chan struct{}
	sess  engine.Session
	bound uint64
	err   error
}

// shared runs readOnce for id, or waits for the one under way, if that
// one began after the last change this instance knows of (an
// invalidation, or its own write, of the handle's stripe): a read that
// began before a Delete returned must not answer a Find that began after.
func (s *Store) shared(ctx context.Context, id string, h engine.Handle) (engine.Session, uint64, error) {
	for {
		t := s.begin(h)
		s.flightMu.Lock()
		f := s.flights[id]
		if f == nil || f.t != t {
			f = &flight{t: t, done: make(chan struct{})}
			s.flights[id] = f
			s.flightMu.Unlock()
			f.sess, f.bound, f.err = s.readOnce(ctx, id, h, t)
			s.flightMu.Lock()
			if s.flights[id] == f {
				delete(s.flights, id)
			}
			s.flightMu.Unlock()
			close(f.done)
			return f.sess, f.bound, f.err
		}
		s.flightMu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return engine.Session{}, 0, ctx.Err()
		}
		if f.err != nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) && ctx.Err() == nil {
			continue // the leader's request gave up, not ours
		}
		return f.sess, f.bound, f.err
	}
}

// readOnce is one round trip for id: the session (kept as a copy if it
// may be) and the fingerprint hash it is bound to, not yet checked.
func (s *Store) readOnce(ctx context.Context, id string, h engine.Handle, t ticket) (engine.Session, uint64, error) {
	s.stats.reads.Add(1)
	f, err := s.recs.get(ctx, h, s.local.Now(), true)
	if err != nil {
		return engine.Session{}, 0, s.redisErr(ctx, err)
	}
	switch f.kind {
	case "nf":
		s.forget(h)
		return engine.Session{}, 0, engine.ErrNotFound
	case "ex":
		s.forget(h)
		return engine.Session{}, 0, engine.ErrExpired
	case "g":
		return s.graceView(ctx, id, f.target)
	case "s":
	default:
		return engine.Session{}, 0, errReply
	}
	sess, err := s.keep(t, id, h, f.st, false)
	return sess, f.st.Fingerprint, err
}

// fits says whether a session bound to fingerprint hash bound (0: unbound)
// may be returned to a caller presenting fp.
func fits(bound uint64, fp []byte) bool {
	return bound == 0 || (len(fp) > 0 && engine.FingerprintHash(fp) == bound)
}

// graceView returns the read-only, anonymous view of the session an old
// ID was rotated to (its handle is target), under the old ID. It records
// no access and never learns, let alone returns, the new ID.
func (s *Store) graceView(ctx context.Context, id string, target engine.Handle) (engine.Session, uint64, error) {
	f, err := s.recs.get(ctx, target, s.local.Now(), false)
	if err != nil {
		return engine.Session{}, 0, s.redisErr(ctx, err)
	}
	if f.kind != "s" {
		return engine.Session{}, 0, engine.ErrNotFound
	}
	// The binding is the target's; the caller checks it, as the engine
	// checks a grace view's.
	v := engine.GraceView(id, f.st)
	if !s.alive(v) {
		return engine.Session{}, 0, engine.ErrExpired
	}
	return v, f.st.Fingerprint, nil
}
