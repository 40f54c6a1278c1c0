package redistier

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/redis/rueidis"

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
	rk, ak := s.keyOf(kindRecord, h), s.keyOf(kindAccess, h)
	now := s.local.Now()
	res := scriptGet.Exec(ctx, s.client, []string{rk, ak}, s.args(now, strconv.FormatInt(s.touchMS, 10)))
	kind, rest, err := parseReply(res)
	if err != nil {
		return engine.Session{}, 0, s.fail(ctx, err)
	}
	switch kind {
	case "nf":
		s.forget(h)
		return engine.Session{}, 0, engine.ErrNotFound
	case "ex":
		s.forget(h)
		return engine.Session{}, 0, engine.ErrExpired
	case "g":
		if len(rest) < 1 {
			return engine.Session{}, 0, errReply
		}
		target, _ := rest[0].ToString()
		return s.graceView(ctx, id, target)
	case "s":
	default:
		return engine.Session{}, 0, errReply
	}
	st, err := s.stateOf(rk, rest)
	if err != nil {
		return engine.Session{}, 0, err
	}
	sess, err := s.keep(t, id, h, st, false)
	return sess, st.Fingerprint, err
}

// fits says whether a session bound to fingerprint hash bound (0: unbound)
// may be returned to a caller presenting fp.
func fits(bound uint64, fp []byte) bool {
	return bound == 0 || (len(fp) > 0 && engine.FingerprintHash(fp) == bound)
}

// stateOf decodes a {version, lastAccess, blob} reply of the record rk.
func (s *Store) stateOf(rk string, rest []rueidis.RedisMessage) (engine.SessionState, error) {
	if len(rest) < 3 {
		return engine.SessionState{}, errReply
	}
	v, err1 := rest[0].ToString()
	la, err2 := rest[1].ToString()
	blob, err3 := rest[2].ToString()
	if err1 != nil || err2 != nil || err3 != nil {
		return engine.SessionState{}, errReply
	}
	st, err := s.seal.open(rk, []byte(blob))
	if err != nil {
		return engine.SessionState{}, err
	}
	if strconv.FormatUint(st.Version, 10) != v {
		return engine.SessionState{}, errRecord
	}
	lams, err := strconv.ParseInt(la, 10, 64)
	if err != nil {
		return engine.SessionState{}, errReply
	}
	st.LastAccess = time.UnixMilli(lams)
	return st, nil
}

// graceView returns the read-only, anonymous view of the session an old
// ID was rotated to (its handle is target), under the old ID. It records
// no access and never learns, let alone returns, the new ID.
func (s *Store) graceView(ctx context.Context, id, target string) (engine.Session, uint64, error) {
	var th engine.Handle
	if len(target) != 32 {
		return engine.Session{}, 0, errReply
	}
	if _, err := hex.Decode(th[:], []byte(target)); err != nil {
		return engine.Session{}, 0, errReply
	}
	rk, ak := s.keyOf(kindRecord, th), s.keyOf(kindAccess, th)
	res := scriptGet.Exec(ctx, s.client, []string{rk, ak}, s.args(s.local.Now(), "9223372036854775807"))
	kind, rest, err := parseReply(res)
	if err != nil {
		return engine.Session{}, 0, s.fail(ctx, err)
	}
	if kind != "s" {
		return engine.Session{}, 0, engine.ErrNotFound
	}
	st, err := s.stateOf(rk, rest)
	if err != nil {
		return engine.Session{}, 0, err
	}
	// The binding is the target's; the caller checks it, as the engine
	// checks a grace view's.
	v := engine.GraceView(id, st)
	if !s.alive(v) {
		return engine.Session{}, 0, engine.ErrExpired
	}
	return v, st.Fingerprint, nil
}

// args returns the scripts' common arguments followed by more.
func (s *Store) args(now time.Time, more ...string) []string {
	a := make([]string, 0, 3+len(more))
	a = append(a, s.prefix, strconv.FormatInt(ms(now), 10), strconv.FormatInt(s.slackMS, 10))
	return append(a, more...)
}

// errReply is a script reply of an unexpected form: a script of another
// version, or something else under the store's prefix.
var errReply = errors.New("redistier: unexpected reply from Redis")

// parseReply splits a script's reply into its first element and the rest.
func parseReply(res rueidis.RedisResult) (string, []rueidis.RedisMessage, error) {
	arr, err := res.ToArray()
	if err != nil {
		return "", nil, err
	}
	if len(arr) == 0 {
		return "", nil, errReply
	}
	k, err := arr[0].ToString()
	if err != nil {
		return "", nil, errReply
	}
	return k, arr[1:], nil
}

// handles parses the hex handles of a reply.
func handles(rest []rueidis.RedisMessage) []engine.Handle {
	out := make([]engine.Handle, 0, len(rest))
	for i := range rest {
		t, err := rest[i].ToString()
		if err != nil || len(t) != 32 {
			continue
		}
		var h engine.Handle
		if _, err := hex.Decode(h[:], []byte(t)); err == nil {
			out = append(out, h)
		}
	}
	return out
}
