package redistier

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/sesscache/sesscache/engine"
)

// RevokeUser ends every session of user: "log out everywhere". All of an
// owner's sessions live in the owner's hash slot, so this is one script:
// every session the user held when it ran is gone when it returns,
// whatever runs meanwhile on any instance. This instance refuses them at
// once; the others, once Redis's invalidations reach them. It returns how
// many sessions it ended.
func (s *Store) RevokeUser(ctx context.Context, user string) (int, error) {
	ended, err := s.revoke(ctx, user, "all", engine.Handle{})
	return len(ended), err
}

// RevokeOthers ends every session of user but the one whose handle is
// keep: "log out my other devices". It works as RevokeUser does.
func (s *Store) RevokeOthers(ctx context.Context, user string, keep engine.Handle) (int, error) {
	ended, err := s.revoke(ctx, user, "others", keep)
	return len(ended), err
}

// RevokeSession ends the session of user whose handle is h, as listed by
// UserSessions. It returns ErrNotFound if user has no such live session,
// so a handle cannot end another user's session.
func (s *Store) RevokeSession(ctx context.Context, user string, h engine.Handle) error {
	ended, err := s.revoke(ctx, user, "one", h)
	if err == nil && len(ended) == 0 {
		return engine.ErrNotFound
	}
	return err
}

func (s *Store) revoke(ctx context.Context, user, mode string, h engine.Handle) ([]engine.Handle, error) {
	if s.closed.Load() {
		return nil, engine.ErrClosed
	}
	if user == "" {
		return nil, fmt.Errorf("redistier: %w: empty user ID", engine.ErrInvalid)
	}
	ended, err := s.recs.revoke(ctx, s.ownerHash(user), mode, h, s.local.Now())
	if err != nil {
		return nil, s.redisErr(ctx, err)
	}
	for _, e := range ended {
		s.forget(e)
	}
	s.stats.writes.Add(1)
	return ended, nil
}

// UserSessions returns the live sessions of user, oldest first, each with
// its Handle, CreatedAt, LastAccess, AuthenticatedAt and Label and never
// its token (ID is empty), as engine.Engine.UserSessions does. One round
// trip.
func (s *Store) UserSessions(ctx context.Context, user string) ([]engine.Session, error) {
	if s.closed.Load() {
		return nil, engine.ErrClosed
	}
	all, err := s.recs.list(ctx, s.ownerHash(user), s.local.Now())
	if err != nil {
		return nil, s.redisErr(ctx, err)
	}
	out := make([]engine.Session, 0, len(all))
	for _, l := range all {
		if l.st.UserID != user {
			continue // an owner-hash collision; not this user's
		}
		out = append(out, engine.ListedView(l.h, l.st))
	}
	slices.SortFunc(out, func(a, b engine.Session) int { return cmp.Compare(a.CreatedAt().UnixNano(), b.CreatedAt().UnixNano()) })
	return out, nil
}
