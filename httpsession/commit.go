package httpsession

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// Commit saves the changes of the session in ctx now and returns the token
// the client must present from now on, which differs from the one it
// presented after a login or renewal, and the session's absolute expiry.
// It has scs's shape and serves code outside HTTP (see Load), but works
// inside Handler too, where it also puts the cookie into the response's
// headers if they are still open, and spares the handler from having
// Options.ErrorFunc answer a failure: it returns the error instead, such as
// engine.ErrTooLarge for a session grown past the store's limit,
// ErrStaleCookie, ErrRateLimited or a value that could not be encoded. The
// changes are spent either way: a failed commit is not retried. Later
// changes are committed as usual.
//
// A request without a session, or whose session was destroyed, gets an
// empty token and zero expiry. A stale session (see ErrStaleCookie) gets
// the ID it presented, never the one it was rotated to.
func (m *Manager) Commit(ctx context.Context) (token string, expiry time.Time, err error) {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	err = st.commitLocked(ctx, false)
	if st.sess.IsZero() {
		return "", time.Time{}, err
	}
	return st.sess.ID(), st.sess.AbsoluteExpiry(), err
}

// commit applies the request's pending changes and, while the response's
// headers are still open, puts the cookie they call for into them. start
// marks the headers as going out now (the first write of the response).
func (st *state) commit(ctx context.Context, start bool) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.commitLocked(ctx, start)
}

func (st *state) commitLocked(ctx context.Context, start bool) error {
	open := !st.started
	if start {
		st.started = true
	}
	err := st.saveLocked(ctx, open)
	if open && st.cookie != cookieKeep && st.w.rw != nil {
		st.setCookieLocked(st.w.rw.Header())
		st.cookie = cookieKeep
	}
	return err
}

// saveLocked writes the request's delta to the store: into a new session if
// there is none (only while the cookie can still be sent), merged into the
// newest version of the existing one otherwise. The delta is spent whatever
// happens, so each failure is reported once.
func (st *state) saveLocked(ctx context.Context, open bool) error {
	if err := st.putErr; err != nil {
		st.putErr, st.delta = nil, nil
		return err
	}
	if len(st.delta) == 0 {
		return nil
	}
	if st.sess.IsZero() && onlyReserved(st.delta) {
		// RememberMe's choice alone is not worth a session; it waits for
		// a value or a login in this request.
		return nil
	}
	delta := st.delta
	st.delta = nil
	switch {
	case st.sess.IsZero():
		if !open {
			return ErrHeadersWritten
		}
		if st.r != nil && st.m.opts.CreateLimit != nil {
			if err := st.m.opts.CreateLimit(st.r); err != nil {
				if errors.Is(err, ErrRateLimited) {
					return err
				}
				return fmt.Errorf("%w: %w", ErrRateLimited, err)
			}
		}
		data, err := merge(nil, delta)
		if err != nil {
			return fmt.Errorf("httpsession: encoding session: %w", err)
		}
		s, err := st.m.store.Create(ctx, engine.CreateOptions{Data: data, Fingerprint: st.fp})
		if err != nil {
			return fmt.Errorf("httpsession: creating session: %w", err)
		}
		st.sess = s
		st.cookie = cookieSet
		if t := st.deadline; !t.IsZero() {
			st.deadline = time.Time{}
			if s, err = st.m.store.SetDeadline(ctx, s.ID(), t); err != nil {
				return fmt.Errorf("httpsession: setting the session's deadline: %w", err)
			}
			st.sess = s
		}
	case st.sess.Rotated():
		// Writing through the new ID would hand the new session to whoever
		// holds the old one, and the store refuses writes through the old
		// ID; refusing is the only safe answer.
		return ErrStaleCookie
	default:
		s, err := st.m.store.Update(ctx, st.sess.ID(), 0, func(cur engine.Session) ([]byte, error) {
			// Update re-runs this on the newest session whenever another
			// request wrote first; applying only this request's delta to
			// whatever is there keeps the other request's keys.
			return merge(cur.Data(), delta)
		})
		if err != nil {
			return st.updateFailedLocked(err)
		}
		st.sess = s
	}
	return nil
}

func onlyReserved(delta map[string]change) bool {
	for k := range delta {
		if !reserved(k) {
			return false
		}
	}
	return true
}

// updateFailedLocked handles a session that another request rotated,
// ended or replaced between this request's load and its commit. The
// changes must not revive it under a new ID, and the cookie is left alone:
// expiring it could delete the new cookie a racing login or renewal has
// just set, if this response reached the browser after that one.
func (st *state) updateFailedLocked(err error) error {
	switch {
	case errors.Is(err, engine.ErrRotated):
		return fmt.Errorf("%w: %w", ErrStaleCookie, err)
	case isNotFound(err):
		st.resetLocked()
	}
	return fmt.Errorf("httpsession: saving session: %w", err)
}

// setCookieLocked puts the session cookie into h, replacing one set earlier
// in the same response: the session's ID, or, after a logout, a cookie
// that expires the client's.
func (st *state) setCookieLocked(h http.Header) {
	m := st.m
	c := http.Cookie{
		Name:        m.opts.CookieName,
		Path:        m.opts.Path,
		Domain:      m.opts.Domain,
		HttpOnly:    true,
		Secure:      !m.opts.InsecureCookie,
		SameSite:    m.opts.SameSite,
		Partitioned: m.opts.Partitioned,
	}
	switch {
	case st.cookie == cookieExpire || st.sess.IsZero():
		c.MaxAge = -1
		c.Expires = time.Unix(1, 0)
	default:
		c.Value = st.sess.ID()
		if st.persistentLocked() {
			// The absolute expiry, not the idle deadline: every read slides
			// the idle deadline, and a cookie that tracked it would have to
			// be sent again on every read. The server ends an idle session
			// on time; the cookie just outlives it harmlessly. LastAccess is
			// the store's clock as of this write.
			s := st.sess
			ttl := s.AbsoluteExpiry().Sub(s.LastAccess())
			c.MaxAge = max(int((ttl+time.Second-1)/time.Second), 1)
			c.Expires = s.AbsoluteExpiry().Add(time.Second - 1).Truncate(time.Second)
		}
	}
	prefix := c.Name + "="
	kept := h.Values("Set-Cookie")[:0:0]
	for _, v := range h.Values("Set-Cookie") {
		if !strings.HasPrefix(v, prefix) {
			kept = append(kept, v)
		}
	}
	h["Set-Cookie"] = append(kept, c.String())
	addToken(h, "Vary", "Cookie")
	addToken(h, "Cache-Control", `no-cache="Set-Cookie"`)
}

// addToken adds value to the comma-separated header key unless one of its
// lines already lists it.
func addToken(h http.Header, key, value string) {
	for _, line := range h.Values(key) {
		for tok := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), value) {
				return
			}
		}
	}
	h.Add(key, value)
}
