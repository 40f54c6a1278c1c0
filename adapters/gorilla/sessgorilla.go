// Package sessgorilla is a github.com/gorilla/sessions Store backed by a
// sesscache engine: gorilla's API (Get, Values, Save, flashes), with the
// session kept in the engine and only its token in the cookie.
//
// The engine mints every ID. A cookie naming no live session (unknown,
// expired, deleted, revoked, malformed, or signed with a key the engine
// does not have) gives a new, empty session, and saving it stores it under
// a fresh ID: an ID the client chose is never adopted, so a planted cookie
// cannot fix the session's ID in advance. After a login, call Rotate as
// well, so that an ID the engine issued before the login, and that an
// attacker may have seen or planted, is worthless after it.
//
// Values are encoded with encoding/gob, as gorilla's FilesystemStore does:
// a value of a type of your own (a struct, a named map) must be registered
// with gob.Register before it is saved or loaded. Their encoding must fit
// engine.Options.MaxDataSize (64 KiB by default).
//
// Cookies are Secure, HttpOnly and SameSite=Lax unless Options says
// otherwise, with Path "/" and no Max-Age, so the browser forgets them when
// it closes; the engine's idle and absolute timeouts end the session on the
// server whatever the cookie's Max-Age. A session whose Options.MaxAge is
// negative is deleted from the engine (a logout) and its cookie expired.
// Each session's Options start as a copy of the store's; change them on
// the session to change its cookie.
//
// Concurrent requests on one session write in turn, the last Save's values
// winning, as with gorilla's other stores. A session deleted, revoked or
// expired while a request held it is not brought back by that request's
// Save, which fails with an error matching engine.ErrNotFound instead.
//
// # Why there is no adapter for scs
//
// alexedwards/scs's Store interface (Find, Commit, Delete) cannot be backed
// by the engine without weakening it. scs mints its own tokens (32 random
// bytes, base64) and asks the store to keep the session under the token it
// chose, while sesscache never stores a session under an ID it did not mint
// (strict mode: a client-chosen or foreign ID is never adopted, which is
// what rules out session fixation by a planted ID). An scs Store over the
// engine would have to give that up. httpsession, in this repository, is
// the scs-like middleware built on the engine instead.
package sessgorilla

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/sessions"

	"github.com/sesscache/sesscache/engine"
)

// Options configures a Store's cookies. The zero value gives a cookie that
// is Secure, HttpOnly and SameSite=Lax, on Path "/", for the browser
// session.
type Options struct {
	// Path is the cookie's path. Default "/".
	Path string
	// Domain is the cookie's domain. Default none: the cookie goes back
	// to the host that set it only.
	Domain string
	// MaxAge is the cookie's Max-Age in seconds. Zero, the default, sends
	// none, so the browser forgets the cookie when it closes. The
	// engine's timeouts bound the session on the server either way.
	// Negative values are treated as zero here; set a session's
	// Options.MaxAge to -1 to end that session.
	MaxAge int
	// Insecure leaves out the Secure attribute, so that the cookie is also
	// sent over plain HTTP: for development on localhost only.
	Insecure bool
	// ScriptReadable leaves out the HttpOnly attribute, so that JavaScript
	// can read the token: any script injected into the page could then
	// steal the session.
	ScriptReadable bool
	// SameSite is the cookie's SameSite attribute. Zero means
	// http.SameSiteLaxMode.
	SameSite http.SameSite
	// Partitioned sets the Partitioned attribute (CHIPS).
	Partitioned bool
}

// Store is a sessions.Store over an engine. It is safe for concurrent use.
type Store struct {
	e        *engine.Engine
	defaults sessions.Options
}

var _ sessions.Store = (*Store)(nil)

// NewStore returns a Store that keeps sessions in e, with cookies as o
// says.
func NewStore(e *engine.Engine, o Options) *Store {
	d := sessions.Options{
		Path:        o.Path,
		Domain:      o.Domain,
		MaxAge:      max(o.MaxAge, 0),
		Secure:      !o.Insecure,
		HttpOnly:    !o.ScriptReadable,
		Partitioned: o.Partitioned,
		SameSite:    o.SameSite,
	}
	if d.Path == "" {
		d.Path = "/"
	}
	if d.SameSite == 0 {
		d.SameSite = http.SameSiteLaxMode
	}
	return &Store{e: e, defaults: d}
}

// Get returns the session named name for r, loading it once per request:
// later calls in the same request return the same *sessions.Session (see
// sessions.GetRegistry).
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New returns the session named name for r, loading it from the engine if
// r's cookie of that name holds the token of a live session. Otherwise it
// returns a new, empty session (IsNew true, ID empty) and no error: a stale
// or forged cookie is not the handler's problem. It returns an error, with
// a new session, only if the engine fails (it is closed, or r's context is
// done) or the stored values do not decode (a type not registered with
// gob).
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	opts := s.defaults
	sess.Options = &opts
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	found, err := s.e.Find(r.Context(), c.Value, nil)
	switch {
	case errors.Is(err, engine.ErrNotFound), errors.Is(err, engine.ErrMalformedToken):
		return sess, nil
	case err != nil:
		return sess, fmt.Errorf("sessgorilla: loading session %q: %w", name, err)
	}
	if err := decode(found.Data(), sess.Values); err != nil {
		// Start over rather than hand out half the values; the stored
		// session is left alone.
		clear(sess.Values)
		return sess, fmt.Errorf("sessgorilla: decoding session %q: %w", name, err)
	}
	sess.ID = found.ID()
	sess.IsNew = false
	return sess, nil
}

// Save stores sess in the engine, under r's context, and sets its cookie
// on w; call it before writing the response's body. A session without an
// ID is created under a fresh one; a session with one has its values
// replaced. A session whose Options.MaxAge is negative is deleted instead
// and its cookie expired. If the session ended meanwhile (deleted,
// revoked, expired), Save returns an error matching engine.ErrNotFound and
// neither recreates it nor sets a cookie.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	opts := sess.Options
	if opts == nil {
		d := s.defaults
		opts = &d
	}
	ctx := r.Context()
	if opts.MaxAge < 0 {
		var err error
		if sess.ID != "" {
			err = s.e.Delete(ctx, sess.ID)
		}
		// Expire the cookie even if Delete failed: the client forgetting
		// the token can only help, and the error says it still lives.
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", opts))
		if err != nil {
			return fmt.Errorf("sessgorilla: deleting session %q: %w", sess.Name(), err)
		}
		sess.ID = ""
		return nil
	}
	data, err := encode(sess.Values)
	if err != nil {
		return fmt.Errorf("sessgorilla: encoding session %q: %w", sess.Name(), err)
	}
	if sess.ID == "" {
		created, err := s.e.Create(ctx, engine.CreateOptions{Data: data})
		if err != nil {
			return fmt.Errorf("sessgorilla: creating session %q: %w", sess.Name(), err)
		}
		sess.ID = created.ID()
	} else {
		_, err := s.e.Update(ctx, sess.ID, 0, func(engine.Session) ([]byte, error) { return data, nil })
		if err != nil {
			return fmt.Errorf("sessgorilla: saving session %q: %w", sess.Name(), err)
		}
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), sess.ID, opts))
	return nil
}

// Rotate moves sess to a fresh ID in the engine, keeping its values, as
// engine.Engine.RotateWith does: call it after a login or any change of
// privilege, then Save, which sends the new cookie. Set o.UserID at login
// to make the engine's session the user's, so that engine.RevokeUser can
// log them out everywhere. A session not stored yet (no ID) is created
// now, with its current values and o's UserID and Label, since there is
// no old ID to retire.
func (s *Store) Rotate(r *http.Request, sess *sessions.Session, o engine.RotateOptions) error {
	if sess.ID == "" {
		data, err := encode(sess.Values)
		if err != nil {
			return fmt.Errorf("sessgorilla: encoding session %q: %w", sess.Name(), err)
		}
		created, err := s.e.Create(r.Context(), engine.CreateOptions{UserID: o.UserID, Label: o.Label, Data: data})
		if err != nil {
			return fmt.Errorf("sessgorilla: creating session %q: %w", sess.Name(), err)
		}
		sess.ID = created.ID()
		return nil
	}
	moved, err := s.e.RotateWith(r.Context(), sess.ID, o)
	if err != nil {
		return fmt.Errorf("sessgorilla: rotating session %q: %w", sess.Name(), err)
	}
	sess.ID = moved.ID()
	return nil
}

func encode(values map[any]any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(values); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func decode(data []byte, values map[any]any) error {
	if len(data) == 0 {
		return nil // created elsewhere without data: no values
	}
	return gob.NewDecoder(bytes.NewReader(data)).Decode(&values)
}
