package sessgorilla_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	sessgorilla "github.com/sesscache/sesscache/adapters/gorilla"
	"github.com/sesscache/sesscache/engine"
)

const cookieName = "sid"

// site is a small application on a TLS test server, used through a client
// with a cookie jar, as a browser would.
type site struct {
	t      *testing.T
	e      *engine.Engine
	store  *sessgorilla.Store
	srv    *httptest.Server
	client *http.Client
	url    *url.URL
}

func newSite(t *testing.T, eo engine.Options, so sessgorilla.Options) *site {
	t.Helper()
	e, err := engine.Open(eo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	s := &site{t: t, e: e, store: sessgorilla.NewStore(e, so)}
	mux := http.NewServeMux()
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.store.Get(r, cookieName)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sess.Values[r.FormValue("k")] = r.FormValue("v")
		if err := sess.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.store.Get(r, cookieName)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if sess.IsNew {
			fmt.Fprint(w, "new")
			return
		}
		fmt.Fprint(w, sess.Values[r.FormValue("k")])
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.store.Get(r, cookieName)
		if err == nil {
			err = s.store.Rotate(r, sess, engine.RotateOptions{UserID: r.FormValue("user")})
		}
		if err == nil {
			sess.Values["user"] = r.FormValue("user")
			err = sess.Save(r, w)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.store.Get(r, cookieName)
		if err == nil {
			sess.Options.MaxAge = -1
			err = sess.Save(r, w)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "bye")
	})
	s.srv = httptest.NewTLSServer(mux)
	t.Cleanup(s.srv.Close)
	s.client = s.srv.Client()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	s.client.Jar = jar
	s.url, _ = url.Parse(s.srv.URL)
	return s
}

// do requests path and returns the body and the session cookie the
// response set, if any.
func (s *site) do(path string) (string, *http.Cookie) {
	s.t.Helper()
	resp, err := s.client.Get(s.srv.URL + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
	}
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			set = c
		}
	}
	return string(body), set
}

// plant puts a cookie of the client's choosing in the jar.
func (s *site) plant(value string) {
	s.client.Jar.SetCookies(s.url, []*http.Cookie{{Name: cookieName, Value: value, Path: "/", Secure: true}})
}

// jarToken is the session cookie the client holds, "" if none.
func (s *site) jarToken() string {
	for _, c := range s.client.Jar.Cookies(s.url) {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

func decodeValues(t *testing.T, data []byte) map[any]any {
	t.Helper()
	v := map[any]any{}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEndToEnd(t *testing.T) {
	s := newSite(t, engine.Options{}, sessgorilla.Options{})
	if body, set := s.do("/get?k=theme"); body != "new" || set != nil {
		t.Fatalf("first visit: %q, cookie %v; want a new session and no cookie (nothing saved)", body, set)
	}
	_, c := s.do("/set?k=theme&v=dark")
	if c == nil {
		t.Fatal("Save set no cookie")
	}
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Errorf("default cookie %+v: want Secure, HttpOnly, SameSite=Lax, Path=/, no Max-Age or Expires", c)
	}
	// The cookie holds the engine's token, and the engine the values.
	got, err := s.e.Get(c.Value)
	if err != nil {
		t.Fatalf("the cookie's token is not an engine session: %v", err)
	}
	if v := decodeValues(t, got.Data()); v["theme"] != "dark" {
		t.Errorf("engine holds %v", v)
	}
	if body, _ := s.do("/get?k=theme"); body != "dark" {
		t.Fatalf("second request read %q", body)
	}
	if _, c2 := s.do("/set?k=lang&v=fr"); c2 == nil || c2.Value != c.Value {
		t.Fatalf("saving an existing session changed its cookie: %v -> %v", c, c2)
	}
	if body, _ := s.do("/get?k=theme"); body != "dark" {
		t.Fatalf("after a second Save: %q", body)
	}
	if st := s.e.Stats(); st.Created != 1 || st.Updated != 1 || st.Live != 1 {
		t.Fatalf("engine: created %d updated %d live %d, want 1 1 1", st.Created, st.Updated, st.Live)
	}
}

func TestForeignCookieNeverAdopted(t *testing.T) {
	clock := engine.NewManualClock(time.Unix(1_700_000_000, 0))
	for _, c := range []struct {
		name  string
		token func(s *site) string
	}{
		{"garbage", func(*site) string { return "not-a-token" }},
		{"well-formed but unknown", func(s *site) string { return s.e.NewID() }},
		{"deleted", func(s *site) string {
			sess, _ := s.e.Create(context.Background(), engine.CreateOptions{})
			if err := s.e.Delete(context.Background(), sess.ID()); err != nil {
				t.Fatal(err)
			}
			return sess.ID()
		}},
		{"expired", func(s *site) string {
			sess, _ := s.e.Create(context.Background(), engine.CreateOptions{})
			clock.Advance(31 * time.Minute)
			return sess.ID()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSite(t, engine.Options{Clock: clock, IdleTimeout: 30 * time.Minute}, sessgorilla.Options{})
			planted := c.token(s)
			s.plant(planted)
			if body, _ := s.do("/get?k=a"); body != "new" {
				t.Fatalf("a %s cookie loaded a session: %q", c.name, body)
			}
			_, set := s.do("/set?k=a&v=b")
			if set == nil || set.Value == planted {
				t.Fatalf("Save kept the client's ID %q (cookie %v)", planted, set)
			}
			if _, err := s.e.Get(planted); err == nil {
				t.Fatal("the engine has a session under the planted ID")
			}
			if _, err := s.e.Get(set.Value); err != nil {
				t.Fatalf("the new cookie's session: %v", err)
			}
			if body, _ := s.do("/get?k=a"); body != "b" {
				t.Fatalf("the new session reads %q", body)
			}
		})
	}
}

func TestLogoutDeletes(t *testing.T) {
	s := newSite(t, engine.Options{}, sessgorilla.Options{})
	_, c := s.do("/set?k=user&v=alice")
	body, expired := s.do("/logout")
	if body != "bye" || expired == nil || expired.MaxAge >= 0 || expired.Value != "" {
		t.Fatalf("logout: %q, cookie %+v: want an expiring, empty cookie", body, expired)
	}
	if _, err := s.e.Get(c.Value); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("after logout the engine still has the session: %v", err)
	}
	if s.jarToken() != "" {
		t.Fatal("the client still holds the cookie")
	}
	if st := s.e.Stats(); st.Deleted != 1 || st.Live != 0 {
		t.Fatalf("engine: deleted %d live %d", st.Deleted, st.Live)
	}
	// Replaying the old cookie finds nothing.
	s.plant(c.Value)
	if body, _ := s.do("/get?k=user"); body != "new" {
		t.Fatalf("the logged-out token still works: %q", body)
	}
}

// saveDirect runs Get and Save on a recorded request and returns the
// cookies set.
func saveDirect(t *testing.T, store *sessgorilla.Store, r *http.Request, edit func(*sessions.Session)) ([]*http.Cookie, error) {
	t.Helper()
	sess, err := store.Get(r, cookieName)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(sess)
	}
	w := httptest.NewRecorder()
	err = store.Save(r, w, sess)
	return w.Result().Cookies(), err
}

func TestCookieOptionsHonoured(t *testing.T) {
	e, err := engine.Open(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	store := sessgorilla.NewStore(e, sessgorilla.Options{
		Path: "/app", Domain: "example.test", MaxAge: 3600,
		Insecure: true, ScriptReadable: true, SameSite: http.SameSiteStrictMode, Partitioned: true,
	})
	r := httptest.NewRequest(http.MethodGet, "http://example.test/app/", nil)
	cs, err := saveDirect(t, store, r, nil)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Save: %v, cookies %v", err, cs)
	}
	c := cs[0]
	if c.Path != "/app" || c.Domain != "example.test" || c.MaxAge != 3600 || c.Secure || c.HttpOnly ||
		c.SameSite != http.SameSiteStrictMode || !c.Partitioned {
		t.Errorf("cookie %+v does not follow the store's Options", c)
	}

	// A session's own Options apply to its cookie only.
	r = httptest.NewRequest(http.MethodGet, "http://example.test/app/", nil)
	cs, err = saveDirect(t, store, r, func(s *sessions.Session) {
		s.Options.MaxAge = 60
		s.Options.SameSite = http.SameSiteNoneMode
		s.Options.Secure = true
	})
	if err != nil || len(cs) != 1 {
		t.Fatalf("Save: %v, cookies %v", err, cs)
	}
	if c := cs[0]; c.MaxAge != 60 || c.SameSite != http.SameSiteNoneMode || !c.Secure {
		t.Errorf("per-session options ignored: %+v", c)
	}
	r = httptest.NewRequest(http.MethodGet, "http://example.test/app/", nil)
	if cs, _ := saveDirect(t, store, r, nil); cs[0].MaxAge != 3600 || cs[0].Secure {
		t.Errorf("a session's options leaked into the store's: %+v", cs[0])
	}
}

func TestSaveUsesRequestContext(t *testing.T) {
	e, err := engine.Open(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	store := sessgorilla.NewStore(e, sessgorilla.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client went away
	r := httptest.NewRequest(http.MethodGet, "https://example.test/", nil).WithContext(ctx)
	cs, err := saveDirect(t, store, r, func(s *sessions.Session) { s.Values["k"] = "v" })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Save under a canceled context = %v, want context.Canceled", err)
	}
	if len(cs) != 0 || e.Stats().Created != 0 {
		t.Fatalf("cookies %v, created %d: want nothing", cs, e.Stats().Created)
	}
}

func TestSaveDoesNotResurrect(t *testing.T) {
	e, err := engine.Open(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	store := sessgorilla.NewStore(e, sessgorilla.Options{})
	ctx := context.Background()
	owned, err := e.Create(ctx, engine.CreateOptions{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://example.test/", nil)
	r.AddCookie(&http.Cookie{Name: cookieName, Value: owned.ID()})
	sess, err := store.Get(r, cookieName)
	if err != nil || sess.IsNew || sess.ID != owned.ID() {
		t.Fatalf("Get: %v, new %v", err, sess.IsNew)
	}
	// "Log out everywhere" while this request runs.
	if n, err := e.RevokeUser(ctx, "alice"); n != 1 || err != nil {
		t.Fatalf("RevokeUser = %d, %v", n, err)
	}
	sess.Values["user"] = "alice"
	for range 2 { // a handler that ignores the error and saves again
		w := httptest.NewRecorder()
		if err := store.Save(r, w, sess); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("Save of a revoked session = %v, want ErrNotFound", err)
		}
		if cs := w.Result().Cookies(); len(cs) != 0 {
			t.Fatalf("Save of a revoked session set %v", cs)
		}
	}
	if st := e.Stats(); st.Created != 1 || st.Live != 0 {
		t.Fatalf("created %d live %d: the revoked session came back", st.Created, st.Live)
	}
}

type prefs struct {
	Theme string
	Size  int
}

type unregistered struct{ X int }

func TestGobValues(t *testing.T) {
	gob.Register(prefs{})
	e, err := engine.Open(engine.Options{MaxDataSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	store := sessgorilla.NewStore(e, sessgorilla.Options{})
	r := httptest.NewRequest(http.MethodGet, "https://example.test/", nil)
	cs, err := saveDirect(t, store, r, func(s *sessions.Session) {
		s.Values["prefs"] = prefs{"dark", 3}
		s.Values[42] = 43
		s.AddFlash("saved")
	})
	if err != nil {
		t.Fatal(err)
	}
	r = httptest.NewRequest(http.MethodGet, "https://example.test/", nil)
	r.AddCookie(cs[0])
	sess, err := store.New(r, cookieName)
	if err != nil || sess.IsNew {
		t.Fatalf("New: %v, new %v", err, sess.IsNew)
	}
	if p, ok := sess.Values["prefs"].(prefs); !ok || p != (prefs{"dark", 3}) || sess.Values[42] != 43 {
		t.Fatalf("values %v", sess.Values)
	}
	if f := sess.Flashes(); len(f) != 1 || f[0] != "saved" {
		t.Fatalf("flashes %v", f)
	}

	// A type gob does not know fails Save, and stores nothing.
	before := e.Stats().Created
	r = httptest.NewRequest(http.MethodGet, "https://example.test/", nil)
	if _, err := saveDirect(t, store, r, func(s *sessions.Session) { s.Values["x"] = unregistered{1} }); err == nil ||
		!strings.HasPrefix(err.Error(), "sessgorilla: ") {
		t.Fatalf("Save of an unregistered type = %v", err)
	}
	// So do values too large for the engine.
	r = httptest.NewRequest(http.MethodGet, "https://example.test/", nil)
	if _, err := saveDirect(t, store, r, func(s *sessions.Session) { s.Values["x"] = strings.Repeat("a", 2000) }); !errors.Is(err, engine.ErrTooLarge) {
		t.Fatalf("Save of 2000 bytes = %v, want ErrTooLarge", err)
	}
	if e.Stats().Created != before {
		t.Fatal("a failed Save created a session")
	}
}

func TestUndecodableDataIsAnError(t *testing.T) {
	e, err := engine.Open(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	store := sessgorilla.NewStore(e, sessgorilla.Options{})
	other, err := e.Create(context.Background(), engine.CreateOptions{Data: []byte("not gob")})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://example.test/", nil)
	r.AddCookie(&http.Cookie{Name: cookieName, Value: other.ID()})
	sess, err := store.New(r, cookieName)
	if err == nil || sess == nil || !sess.IsNew || sess.ID != "" || len(sess.Values) != 0 {
		t.Fatalf("New over undecodable data: %v, %+v", err, sess)
	}
	// A session created without data reads as empty.
	empty, _ := e.Create(context.Background(), engine.CreateOptions{})
	r = httptest.NewRequest(http.MethodGet, "https://example.test/", nil)
	r.AddCookie(&http.Cookie{Name: cookieName, Value: empty.ID()})
	if sess, err := store.New(r, cookieName); err != nil || sess.IsNew || len(sess.Values) != 0 {
		t.Fatalf("New over empty data: %v, %+v", err, sess)
	}
}

func TestRotateAtLogin(t *testing.T) {
	s := newSite(t, engine.Options{}, sessgorilla.Options{})
	_, before := s.do("/set?k=cart&v=3")
	_, after := s.do("/login?user=alice")
	if after == nil || after.Value == before.Value {
		t.Fatalf("login kept the ID: %v -> %v", before, after)
	}
	if _, err := s.e.Get(before.Value); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("the pre-login ID still works: %v", err)
	}
	if body, _ := s.do("/get?k=cart"); body != "3" {
		t.Fatalf("values lost at login: %q", body)
	}
	ctx := context.Background()
	if us, err := s.e.UserSessions(ctx, "alice"); err != nil || len(us) != 1 {
		t.Fatalf("UserSessions(alice) = %d, %v", len(us), err)
	}
	// Because the engine knows the owner, it can log them out everywhere.
	if n, err := s.e.RevokeUser(ctx, "alice"); n != 1 || err != nil {
		t.Fatalf("RevokeUser = %d, %v", n, err)
	}
	if body, _ := s.do("/get?k=cart"); body != "new" {
		t.Fatalf("after RevokeUser: %q", body)
	}

	// A login on a first visit creates the session, owned, at once.
	s2 := newSite(t, engine.Options{}, sessgorilla.Options{})
	if _, c := s2.do("/login?user=bob"); c == nil {
		t.Fatal("no cookie")
	}
	if us, _ := s2.e.UserSessions(ctx, "bob"); len(us) != 1 || s2.e.Stats().Created != 1 {
		t.Fatalf("bob has %d sessions, %d created; want 1 and 1", len(us), s2.e.Stats().Created)
	}
	if body, _ := s2.do("/get?k=user"); body != "bob" {
		t.Fatalf("user value %q", body)
	}
}

func TestGetIsCachedPerRequest(t *testing.T) {
	e, err := engine.Open(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	store := sessgorilla.NewStore(e, sessgorilla.Options{})
	r := httptest.NewRequest(http.MethodGet, "https://example.test/", nil)
	a, _ := store.Get(r, cookieName)
	b, _ := store.Get(r, cookieName)
	c, _ := store.New(r, cookieName)
	if a != b || a == c {
		t.Fatal("Get does not reuse the request's session, or New does")
	}
}
