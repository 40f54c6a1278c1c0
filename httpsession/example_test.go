package httpsession_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
)

// browser is a client with a cookie jar of its own; do sends a request and
// prints the status and body.
type browser struct {
	c  *http.Client
	ua string
}

func newBrowser(ua string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: &http.Client{Jar: jar}, ua: ua}
}

func (b *browser) do(method, url string) {
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("User-Agent", b.ua)
	resp, err := b.c.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(strings.TrimSpace(fmt.Sprintf("%s %s: %d %s", method, url[strings.LastIndex(url, "/"):], resp.StatusCode, body)))
}

// The middleware: a page that reads the session creates nothing; the first
// write creates the session and sets the cookie.
func Example() {
	store, err := engine.Open(engine.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /theme", func(w http.ResponseWriter, r *http.Request) {
		sessions.Put(r.Context(), "theme", r.FormValue("theme")) // creates the session
		fmt.Fprint(w, "saved")
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "theme=%q", sessions.GetString(r.Context(), "theme"))
	})
	srv := httptest.NewServer(sessions.Handler(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	show := func(resp *http.Response, err error) {
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s cookie=%q\n", body, strings.SplitN(resp.Header.Get("Set-Cookie"), "=", 2)[0])
	}
	show(client.Get(srv.URL))                               // reads only: no session, no cookie
	show(client.Post(srv.URL+"/theme?theme=dark", "", nil)) // the first write sets the cookie
	show(client.Get(srv.URL))                               // later requests read the value
	// Output:
	// theme="" cookie=""
	// saved cookie="__Host-id"
	// theme="dark" cookie=""
}

// Login after checking the password, Destroy to log out. The anonymous
// session's values come along, under a new ID.
func ExampleManager_Login() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		sessions.Put(r.Context(), "cart", []string{"tea"})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Check the password first; then:
		if err := sessions.Login(r.Context(), "alice"); err != nil {
			http.Error(w, "login failed", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Destroy(r.Context()); err != nil {
			http.Error(w, "logout failed", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		cart, _ := httpsession.GetAs[[]string](sessions, r.Context(), "cart")
		fmt.Fprintf(w, "user=%q cart=%v", sessions.UserID(r.Context()), cart)
	})
	srv := httptest.NewServer(sessions.Handler(mux))
	defer srv.Close()

	b := newBrowser("")
	var ids []string // the cookie after each request, to watch the ID change
	for _, step := range []string{"POST /cart", "POST /login", "GET /", "POST /logout", "GET /"} {
		method, path, _ := strings.Cut(step, " ")
		b.do(method, srv.URL+path)
		u, _ := http.NewRequest("GET", srv.URL, nil)
		for _, c := range b.c.Jar.Cookies(u.URL) {
			ids = append(ids, c.Value)
		}
	}
	fmt.Println("new ID after login:", ids[0] != ids[1])
	// Output:
	// POST /cart: 200
	// POST /login: 200
	// GET /: 200 user="alice" cart=[tea]
	// POST /logout: 200
	// GET /: 200 user="" cart=[]
	// new ID after login: true
}

// loginCounter wraps the engine, here to count logins; a store over the
// network would implement every method itself. Embedding *engine.Engine
// rather than the Store interface keeps its All method, which
// Manager.Iterate needs.
type loginCounter struct {
	*engine.Engine
	logins atomic.Int64
}

func (s *loginCounter) RotateWith(ctx context.Context, id string, o engine.RotateOptions) (engine.Session, error) {
	if o.UserID != "" {
		s.logins.Add(1)
	}
	return s.Engine.RotateWith(ctx, id, o)
}

// *engine.Engine is a Store; anything else that keeps its contracts can
// stand in for it, or wrap it.
func ExampleStore() {
	eng, _ := engine.Open(engine.Options{})
	defer eng.Close()
	store := &loginCounter{Engine: eng}
	sessions := httpsession.New(store, httpsession.Options{})

	ctx, _ := sessions.Load(context.Background(), "")
	sessions.Put(ctx, "lang", "fr")
	if _, _, err := sessions.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	if err := sessions.Login(ctx, "alice"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("logins:", store.logins.Load())

	// Iterate works with a store that can list its sessions, as the
	// engine can, and never hands out tokens.
	err := sessions.Iterate(context.Background(), func(s engine.Session) error {
		fmt.Printf("user=%q token=%q\n", s.UserID(), s.ID())
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// logins: 1
	// user="alice" token=""
}

// Load and Commit carry a session outside HTTP: here, messages of a
// websocket-like connection that carry the token themselves.
func ExampleManager_Load() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{})

	// The first message: the client has no token yet.
	ctx, err := sessions.Load(context.Background(), "")
	if err != nil {
		log.Fatal(err)
	}
	sessions.Put(ctx, "lang", "fr")
	token, _, err := sessions.Commit(ctx)
	if err != nil {
		log.Fatal(err)
	}

	// A later message logs in: the client must use the new token.
	ctx, _ = sessions.Load(context.Background(), token)
	fmt.Println("lang:", sessions.GetString(ctx, "lang"))
	if err := sessions.Login(ctx, "alice"); err != nil {
		log.Fatal(err)
	}
	newToken, expiry, err := sessions.Commit(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new token:", newToken != token, "expires:", !expiry.IsZero())

	old, _ := sessions.Load(context.Background(), token)
	now, _ := sessions.Load(context.Background(), newToken)
	fmt.Printf("old token: user=%q; new token: user=%q\n", sessions.UserID(old), sessions.UserID(now))
	// Output:
	// lang: fr
	// new token: true expires: true
	// old token: user=""; new token: user="alice"
}

// A "your devices" page: the user's sessions, this one marked, each with a
// form to end it, and a button to end all the others.
func ExampleManager_Sessions() {
	clock := engine.NewManualClock(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	store, _ := engine.Open(engine.Options{Clock: clock})
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{Now: clock.Now})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Login(r.Context(), "alice"); err != nil {
			http.Error(w, "login failed", http.StatusInternalServerError)
		}
	})
	mux.Handle("GET /devices", sessions.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := sessions.Sessions(r.Context())
		if err != nil {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		for _, s := range list {
			mark := ""
			if s.Handle() == sessions.Handle(r.Context()) {
				mark = " (this device)"
			}
			fmt.Fprintf(w, "[%s since %s%s] ", s.Label(), s.CreatedAt().UTC().Format("15:04"), mark)
		}
	})))
	mux.Handle("POST /logout-others", sessions.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.EndOtherSessions(r.Context())
		if err != nil {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "ended %d", n)
	})))
	srv := httptest.NewServer(sessions.Handler(mux))
	defer srv.Close()

	laptop := newBrowser("Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
	phone := newBrowser("Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1")
	laptop.do("POST", srv.URL+"/login")
	clock.Advance(10 * time.Minute)
	phone.do("POST", srv.URL+"/login")
	phone.do("GET", srv.URL+"/devices")
	phone.do("POST", srv.URL+"/logout-others")
	phone.do("GET", srv.URL+"/devices")
	laptop.do("GET", srv.URL+"/devices")
	// Output:
	// POST /login: 200
	// POST /login: 200
	// GET /devices: 200 [Firefox on Linux since 09:00] [Safari on iOS since 09:10 (this device)]
	// POST /logout-others: 200 ended 1
	// GET /devices: 200 [Safari on iOS since 09:10 (this device)]
	// GET /devices: 401 Unauthorized
}

func ExampleManager_RenewToken() {
	store, _ := engine.Open(engine.Options{RotateGrace: 10 * time.Second})
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{})

	handler := sessions.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// After any change of privilege, such as a second factor checked,
		// move the session to a new ID.
		sessions.Put(r.Context(), "mfa", true)
		if err := sessions.RenewToken(r.Context()); err != nil {
			http.Error(w, "try again", http.StatusConflict)
		}
	}))

	s, _ := store.Create(context.Background(), engine.CreateOptions{UserID: "alice"})
	req := httptest.NewRequest("POST", "/verify", nil)
	req.AddCookie(&http.Cookie{Name: sessions.CookieName(), Value: s.ID()})
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)

	renewed := rec.Result().Cookies()[0]
	_, errOld := store.Get(s.ID())
	fmt.Println("new ID:", renewed.Value != s.ID(), "old ID ended despite the grace period:", errOld != nil)
	// Output: new ID: true old ID ended despite the grace period: true
}

func ExampleManager_LogoutEverywhere() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Login(r.Context(), "bob"); err != nil {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "welcome")
	})
	mux.HandleFunc("POST /logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.LogoutEverywhere(r.Context())
		if err != nil {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "ended %d sessions", n)
	})
	mux.Handle("GET /private", sessions.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello ", sessions.UserID(r.Context()))
	})))
	srv := httptest.NewServer(sessions.Handler(mux))
	defer srv.Close()

	laptop, phone := newBrowser(""), newBrowser("")
	laptop.do("POST", srv.URL+"/login")
	phone.do("POST", srv.URL+"/login")
	phone.do("GET", srv.URL+"/private")
	laptop.do("POST", srv.URL+"/logout-everywhere")
	phone.do("GET", srv.URL+"/private")
	// Output:
	// POST /login: 200 welcome
	// POST /login: 200 welcome
	// GET /private: 200 hello bob
	// POST /logout-everywhere: 200 ended 2 sessions
	// GET /private: 401 Unauthorized
}

func ExampleGetAs() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{})
	ctx, _ := sessions.Load(context.Background(), "")

	sessions.Put(ctx, "count", 300)
	n, err := httpsession.GetAs[int](sessions, ctx, "count")
	fmt.Println(n, err)
	_, err = httpsession.GetAs[int8](sessions, ctx, "count")
	fmt.Println(err)
	_, err = httpsession.GetAs[int](sessions, ctx, "missing")
	fmt.Println(err)
	// Output:
	// 300 <nil>
	// httpsession: the value does not fit the type asked for: "count": 300 does not fit int8
	// httpsession: no value under that key: "missing"
}

func ExamplePerClientLimit() {
	store, _ := engine.Open(engine.Options{MaxSessions: 100_000})
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{
		// Each address may start 20 anonymous sessions a minute; the
		// 21st request that would create one gets 429.
		CreateLimit: httpsession.PerClientLimit(nil, 20, time.Minute),
		Logger:      slog.New(slog.DiscardHandler),
	})
	handler := sessions.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessions.Put(r.Context(), "seen", true)
	}))
	codes := map[int]int{}
	for range 25 {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil)) // no cookie: a new session each
		codes[rec.Code]++
	}
	fmt.Println(codes)
	// Output: map[200:20 429:5]
}
