package httpsession

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// Commit saves the request's changes now instead of at the first write of
// the response, and returns the error, if any, that would otherwise go to
// Options.ErrorFunc: engine.ErrTooLarge for a session grown past the
// engine's MaxDataSize, ErrRotated, a value that could not be encoded.
// A handler calls it when it wants to answer such a failure itself. The
// changes are spent either way: a failed commit is not retried. Later
// changes are committed as usual.
func Commit(ctx context.Context) error {
	return from(ctx).commit(false)
}

// commit applies the request's pending changes and, while the response's
// headers are still open, puts the cookie they call for into them. start
// marks the headers as going out now (the first write of the response).
func (st *state) commit(start bool) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	open := !st.started
	if start {
		st.started = true
	}
	err := st.saveLocked(open)
	if open && st.cookie != cookieKeep {
		st.m.setCookie(st.w.rw.Header(), st.sess, st.cookie == cookieExpire)
		st.cookie = cookieKeep
	}
	return err
}

// saveLocked writes the request's delta to the store: into a new session if
// there is none (only while the cookie can still be sent), merged into the
// newest version of the existing one otherwise. The delta is spent whatever
// happens, so each failure is reported once.
func (st *state) saveLocked(open bool) error {
	if err := st.putErr; err != nil {
		st.putErr, st.delta = nil, nil
		return err
	}
	if len(st.delta) == 0 {
		return nil
	}
	delta := st.delta
	st.delta = nil
	switch {
	case st.sess.IsZero():
		if !open {
			return ErrHeadersWritten
		}
		data, err := merge(nil, delta)
		if err != nil {
			return fmt.Errorf("httpsession: encoding session: %w", err)
		}
		s, err := st.m.store.Create(engine.CreateOptions{Data: data, Fingerprint: st.fp})
		if err != nil {
			return fmt.Errorf("httpsession: creating session: %w", err)
		}
		st.sess = s
		st.cookie = cookieSet
	case st.sess.Rotated():
		// Writing through the new ID would let a request that lost a race
		// with a login overwrite what the login wrote, or a late request
		// fork the session; refusing is the only safe answer.
		return ErrRotated
	default:
		s, err := st.m.store.Update(st.sess.ID(), 0, func(cur engine.Session) ([]byte, error) {
			// Update re-runs this on the newest session whenever another
			// request wrote first; applying only this request's delta to
			// whatever is there keeps the other request's keys.
			return merge(cur.Data(), delta)
		})
		if err != nil {
			if isNotFound(err) {
				return st.vanishedLocked(err)
			}
			return fmt.Errorf("httpsession: saving session: %w", err)
		}
		st.sess = s
	}
	return nil
}

// vanishedLocked handles a session that disappeared from under this request
// between load and commit. If another request rotated it, the old ID now
// forwards to the new one: refuse the write as for any rotated ID and tell
// the client the new ID. Otherwise it expired, was destroyed, revoked or
// replaced by a login, and the changes must not revive it under a new ID.
// The cookie is left alone either way: expiring it could delete the new
// cookie a racing login or renewal has just set, if this response reached
// the browser after that one.
func (st *state) vanishedLocked(err error) error {
	if s, err := st.m.lookup(st.sess.ID(), st.fp); err == nil && s.Rotated() {
		st.sess = s
		st.cookie = cookieSet
		return ErrRotated
	}
	st.resetLocked()
	return fmt.Errorf("httpsession: saving session: %w", err)
}

// setCookie puts the session cookie for s into h, replacing one set earlier
// in the same response, or a cookie that expires the client's if expire.
func (m *Manager) setCookie(h http.Header, s engine.Session, expire bool) {
	c := http.Cookie{
		Name:     m.opts.CookieName,
		Path:     "/",
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteLaxMode,
	}
	switch {
	case expire:
		c.MaxAge = -1
		c.Expires = time.Unix(1, 0)
	default:
		c.Value = s.ID()
		if !m.opts.NonPersistent {
			// The absolute expiry, not the idle deadline: every Get slides
			// the idle deadline, and a cookie that tracked it would have to
			// be sent again on every read. The server ends an idle session
			// on time; the cookie just outlives it harmlessly. LastAccess is
			// the engine's clock as of this write.
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
