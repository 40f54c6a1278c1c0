package redistier

import (
	"context"
	"fmt"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// maxAttempts bounds the retries of a write whose compare-and-swap lost to
// another writer, as the engine's do (each lost attempt means another
// write won, so writers as a whole make progress; ctx bounds the wait).
const maxAttempts = 1000

// limits are the engine's defaults for sizes, applied before a write goes
// to Redis.
func (s *Store) checkSizes(user, label string, data []byte) error {
	maxData, maxUser, maxLabel := s.opts.Local.MaxDataSize, s.opts.Local.MaxUserIDSize, s.opts.Local.MaxLabelSize
	if maxData == 0 {
		maxData = 64 << 10
	}
	if maxUser == 0 {
		maxUser = 256
	}
	if maxLabel == 0 {
		maxLabel = 256
	}
	switch {
	case len(data) > maxData:
		return fmt.Errorf("redistier: %w: data is %d bytes, limit %d", engine.ErrTooLarge, len(data), maxData)
	case len(user) > maxUser:
		return fmt.Errorf("redistier: %w: user ID is %d bytes, limit %d", engine.ErrTooLarge, len(user), maxUser)
	case len(label) > maxLabel:
		return fmt.Errorf("redistier: %w: label is %d bytes, limit %d", engine.ErrTooLarge, len(label), maxLabel)
	}
	return nil
}

// Create stores a new session in Redis and returns it with its fresh ID;
// this instance keeps a copy. An owned session's ID is minted so that it
// shares its owner's hash slot. With MaxSessionsPerUser, the owner's
// sessions that authenticated longest ago beyond the cap end in the same
// atomic step. It returns ErrTooLarge, ErrInvalid, ErrUnavailable or ctx's
// error, and then stores nothing.
func (s *Store) Create(ctx context.Context, o engine.CreateOptions) (engine.Session, error) {
	if s.closed.Load() {
		return engine.Session{}, engine.ErrClosed
	}
	if err := s.checkSizes(o.UserID, o.Label, o.Data); err != nil {
		return engine.Session{}, err
	}
	if o.IdleTimeout < 0 || o.AbsoluteTimeout < 0 {
		return engine.Session{}, fmt.Errorf("redistier: %w: negative timeout", engine.ErrInvalid)
	}
	idle, abs := s.opts.Local.IdleTimeout, s.opts.Local.AbsoluteTimeout
	if o.IdleTimeout > 0 {
		idle = o.IdleTimeout
	}
	if o.AbsoluteTimeout > 0 {
		abs = o.AbsoluteTimeout
	}
	bucket := -1
	if o.UserID != "" {
		bucket = int(s.ownerHash(o.UserID)[0])
	}
	for range maxAttempts {
		now := s.stamp(s.local.Now())
		st := engine.SessionState{Version: 1, UserID: o.UserID, Label: o.Label, Data: o.Data,
			CreatedAt: now, LastAccess: now, IdleTimeout: idle, AbsoluteExpiry: now.Add(abs)}
		if o.UserID != "" {
			st.AuthenticatedAt = now
		}
		if len(o.Fingerprint) > 0 {
			st.Fingerprint = engine.FingerprintHash(o.Fingerprint)
		}
		id, h := s.mint(bucket)
		t := s.begin(h)
		v, err := s.recs.create(ctx, h, &st, now)
		if err != nil {
			return engine.Session{}, s.redisErr(ctx, err)
		}
		switch v.kind {
		case "ok":
			s.stats.writes.Add(1)
			for _, e := range v.ended {
				s.forget(e)
			}
			return s.keep(t, id, h, st, true)
		case "dup":
			continue
		default:
			return engine.Session{}, errReply
		}
	}
	return engine.Session{}, fmt.Errorf("redistier: %w: gave up after %d attempts", engine.ErrVersionConflict, maxAttempts)
}

// current returns the session under id for a write: this instance's copy
// if it holds a live one (and !remote), else Redis's.
func (s *Store) current(ctx context.Context, id string, h engine.Handle, remote bool) (engine.Session, error) {
	if !remote && s.degradedSince.Load() == 0 {
		if sess, err := s.local.Find(ctx, id, nil); err == nil {
			return sess, nil
		}
	}
	sess, err := s.read(ctx, id, h, nil, false)
	if err == nil && sess.Rotated() {
		return engine.Session{}, engine.ErrRotated
	}
	return sess, err
}

// Update replaces a session's data with what fn returns for the current
// session, bumping its version, as engine.Engine.Update does: with version
// 0 it retries fn against the newer session when another write wins; with
// a version it applies only at that version and returns
// ErrVersionConflict otherwise. The compare-and-swap runs in Redis, so it
// holds across instances. fn runs without any lock or connection held.
// It returns ErrRotated for an old ID within RotateGrace.
func (s *Store) Update(ctx context.Context, id string, version uint64, fn func(engine.Session) ([]byte, error)) (engine.Session, error) {
	return s.write(ctx, id, version, func(cur engine.Session, st *engine.SessionState) error {
		data, err := fn(cur)
		if err != nil {
			return err
		}
		if err := s.checkSizes("", "", data); err != nil {
			return err
		}
		st.Data = data
		return nil
	})
}

// SetDeadline sets the session's absolute expiry to t, which may shorten
// or lengthen its life, and records an access. It returns Update's
// errors; a t not after the store's clock returns ErrInvalid.
func (s *Store) SetDeadline(ctx context.Context, id string, t time.Time) (engine.Session, error) {
	if !t.After(s.local.Now()) {
		if s.closed.Load() {
			return engine.Session{}, engine.ErrClosed
		}
		return engine.Session{}, fmt.Errorf("redistier: %w: deadline not in the future", engine.ErrInvalid)
	}
	return s.write(ctx, id, 0, func(_ engine.Session, st *engine.SessionState) error {
		st.AbsoluteExpiry = t
		return nil
	})
}

// write is Update and SetDeadline: change edits the state of the current
// session, then a compare-and-swap on its version stores it.
func (s *Store) write(ctx context.Context, id string, version uint64, change func(engine.Session, *engine.SessionState) error) (engine.Session, error) {
	if s.closed.Load() {
		return engine.Session{}, engine.ErrClosed
	}
	h, err := s.local.HandleOf(id)
	if err != nil {
		return engine.Session{}, err
	}
	remote := false
	for range maxAttempts {
		cur, err := s.current(ctx, id, h, remote)
		if err != nil {
			return engine.Session{}, err
		}
		if version != 0 && cur.Version() != version {
			if !remote && cur.Version() < version {
				remote = true // this copy may be behind: ask Redis
				continue
			}
			return engine.Session{}, engine.ErrVersionConflict
		}
		st := cur.State()
		if err := change(cur, &st); err != nil {
			return engine.Session{}, err
		}
		now := s.local.Now()
		st.Version++
		st.LastAccess = now
		t := s.begin(h)
		v, err := s.recs.update(ctx, h, cur.Version(), &st, now)
		if err != nil {
			s.forgetID(h, id) // applied or not: this copy is unverified
			return engine.Session{}, s.redisErr(ctx, err)
		}
		switch v.kind {
		case "ok":
			s.stats.writes.Add(1)
			return s.keep(t, id, h, st, true)
		case "cf":
			s.forgetID(h, id)
			if version != 0 {
				return engine.Session{}, engine.ErrVersionConflict
			}
			remote = true
		case "nf":
			s.forgetID(h, id)
			return engine.Session{}, engine.ErrNotFound
		case "ex":
			s.forgetID(h, id)
			return engine.Session{}, engine.ErrExpired
		case "rot":
			return engine.Session{}, engine.ErrRotated
		default:
			return engine.Session{}, errReply
		}
	}
	return engine.Session{}, fmt.Errorf("redistier: %w: gave up after %d attempts", engine.ErrVersionConflict, maxAttempts)
}

// Delete ends the session: a logout. It returns nil whether or not there
// was a live session under id; given an old ID within RotateGrace, it ends
// that ID's read-only access only. When it returns, this instance refuses
// id; other instances do once Redis's invalidation reaches them.
func (s *Store) Delete(ctx context.Context, id string) error {
	if s.closed.Load() {
		return engine.ErrClosed
	}
	h, err := s.local.HandleOf(id)
	if err != nil {
		return err
	}
	err = s.recs.del(ctx, h, s.local.Now())
	s.forgetID(h, id)
	if err != nil {
		return s.redisErr(ctx, err)
	}
	s.stats.writes.Add(1)
	return nil
}

// Rotate moves a session to a fresh ID, as RotateWith with no options.
func (s *Store) Rotate(ctx context.Context, id string) (engine.Session, error) {
	return s.RotateWith(ctx, id, engine.RotateOptions{})
}

// RotateWith moves a session to a fresh ID and returns it under that ID,
// as engine.Engine.RotateWith does: same data, creation time and
// deadlines, version bumped; with a UserID it is a login (the owner
// changes, AuthenticatedAt becomes now, MaxSessionsPerUser applies); with
// Privileged or a UserID the old ID ends at once, otherwise it stays
// readable (read-only, anonymous) for RotateGrace. This instance refuses
// the old ID when it returns.
//
// A rotation within one hash slot is one script. A login moves an
// anonymous session (or another owner's) into its new owner's slot in two
// steps: the new record is stored first, unreachable (its ID is known to
// no one yet), and the compare-and-swap that ends the old record commits
// the move; if that fails, the new record is deleted again. A crash
// between the two leaves the old session as it was and an orphan that
// expires unused.
func (s *Store) RotateWith(ctx context.Context, id string, o engine.RotateOptions) (engine.Session, error) {
	if s.closed.Load() {
		return engine.Session{}, engine.ErrClosed
	}
	if err := s.checkSizes(o.UserID, o.Label, nil); err != nil {
		return engine.Session{}, err
	}
	h, err := s.local.HandleOf(id)
	if err != nil {
		return engine.Session{}, err
	}
	privileged := o.Privileged || o.UserID != ""
	remote := false
	for range maxAttempts {
		cur, err := s.current(ctx, id, h, remote)
		if err != nil {
			return engine.Session{}, err
		}
		st := cur.State()
		oldOwner := st.UserID
		now := s.local.Now()
		if o.UserID != "" {
			st.UserID = o.UserID
			st.AuthenticatedAt = s.stamp(now)
		}
		if o.Label != "" {
			st.Label = o.Label
		}
		st.Version++
		if st.LastAccess.Before(now) {
			st.LastAccess = now
		}
		bucket := int(h[0])
		if st.UserID != "" {
			bucket = int(s.ownerHash(st.UserID)[0])
		}
		nid, nh := s.mint(bucket)
		capacity := 0
		if st.UserID != oldOwner {
			capacity = s.cap
		}
		t := s.begin(nh)
		if bucket == int(h[0]) {
			grace := int64(0)
			if !privileged {
				grace = s.graceMS
			}
			v, err := s.recs.rotate(ctx, h, nh, cur.Version(), &st, grace, capacity, now)
			if err != nil {
				s.forgetID(h, id)
				return engine.Session{}, s.redisErr(ctx, err)
			}
			switch v.kind {
			case "ok":
				s.stats.writes.Add(1)
				for _, e := range v.ended {
					s.forget(e)
				}
				s.forgetID(h, id)
				return s.keep(t, nid, nh, st, true)
			case "cf", "dup":
				s.forgetID(h, id)
				remote = true
				continue
			default:
				s.forgetID(h, id)
				return engine.Session{}, writeErr(v.kind)
			}
		}
		// A login into another slot: place the new record, then retire the
		// old one if it is still at the version read.
		v, err := s.recs.place(ctx, nh, &st, capacity, now)
		if err != nil {
			s.undo(nh)
			return engine.Session{}, s.redisErr(ctx, err)
		}
		if v.kind == "dup" {
			continue
		}
		if v.kind != "ok" {
			return engine.Session{}, errReply
		}
		for _, e := range v.ended {
			s.forget(e)
		}
		v, err = s.recs.retire(ctx, h, cur.Version(), now)
		s.forgetID(h, id)
		if err != nil {
			s.undo(nh)
			return engine.Session{}, s.redisErr(ctx, err)
		}
		switch v.kind {
		case "ok":
			s.stats.writes.Add(1)
			return s.keep(t, nid, nh, st, true)
		case "cf":
			s.undo(nh)
			remote = true
		default:
			s.undo(nh)
			return engine.Session{}, writeErr(v.kind)
		}
	}
	return engine.Session{}, fmt.Errorf("redistier: %w: gave up after %d attempts", engine.ErrVersionConflict, maxAttempts)
}

// undo deletes the record a cross-slot login placed and could not commit.
// Best effort: if Redis does not answer, the orphan expires unused.
func (s *Store) undo(nh engine.Handle) {
	s.stats.undos.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ConnTimeout)
	defer cancel()
	s.recs.del(ctx, nh, s.local.Now()) //nolint:errcheck
	s.forget(nh)
}

// writeErr maps a write script's verdict to the engine's error.
func writeErr(kind string) error {
	switch kind {
	case "nf":
		return engine.ErrNotFound
	case "ex":
		return engine.ErrExpired
	case "rot":
		return engine.ErrRotated
	}
	return errReply
}

// stamp returns now, or just after the last time stamp returned, so that
// the creation and authentication times one instance gives are distinct
// and ordered, as the engine's are.
func (s *Store) stamp(now time.Time) time.Time {
	for {
		last := s.lastStamp.Load()
		n := max(now.UnixNano(), last+1)
		if s.lastStamp.CompareAndSwap(last, n) {
			return time.Unix(0, n)
		}
	}
}
