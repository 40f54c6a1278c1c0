package httpsession_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
)

func Example() {
	store, err := engine.Open(engine.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /theme", func(w http.ResponseWriter, r *http.Request) {
		httpsession.Put(r.Context(), "theme", r.FormValue("theme")) // creates the session
		fmt.Fprint(w, "saved")
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "theme=%q", httpsession.GetString(r.Context(), "theme"))
	})
	srv := httptest.NewServer(sessions.Handler(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	show := func(resp *http.Response, err error) {
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s cookie=%t\n", body, resp.Header.Get("Set-Cookie") != "")
	}
	show(browser.Get(srv.URL))                               // reads only: no session, no cookie
	show(browser.Post(srv.URL+"/theme?theme=dark", "", nil)) // the first write sets the cookie
	show(browser.Get(srv.URL))                               // later requests read the value
	// Output:
	// theme="" cookie=false
	// saved cookie=true
	// theme="dark" cookie=false
}

func ExampleLogin() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{})

	var ids []string // the cookie after each request, to watch the ID change
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		httpsession.Put(r.Context(), "cart", []string{"tea"})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Check the password first; then:
		if err := httpsession.Login(r.Context(), "alice"); err != nil {
			http.Error(w, "login failed", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		cart, _ := httpsession.GetAs[[]string](r.Context(), "cart")
		fmt.Fprintf(w, "user=%s cart=%v", httpsession.UserID(r.Context()), cart)
	})
	srv := httptest.NewServer(sessions.Handler(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	for _, step := range []struct{ method, path string }{{"POST", "/cart"}, {"POST", "/login"}, {"GET", "/"}} {
		req, _ := http.NewRequest(step.method, srv.URL+step.path, nil)
		resp, err := browser.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) > 0 {
			fmt.Println(string(body))
		}
		for _, c := range jar.Cookies(req.URL) {
			ids = append(ids, c.Value)
		}
	}
	fmt.Println("new ID after login:", ids[0] != ids[1])
	// Output:
	// user=alice cart=[tea]
	// new ID after login: true
}

func ExampleRenewToken() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{})

	handler := sessions.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// After any change of privilege, such as a step-up
		// authentication, move the session to a new ID.
		httpsession.Put(r.Context(), "mfa", true)
		if err := httpsession.RenewToken(r.Context()); err != nil {
			http.Error(w, "try again", http.StatusConflict)
		}
	}))

	s, _ := store.Create(engine.CreateOptions{UserID: "alice"})
	req := httptest.NewRequest("POST", "/verify", nil)
	req.AddCookie(&http.Cookie{Name: "id", Value: s.ID()})
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)

	renewed := rec.Result().Cookies()[0]
	_, errOld := store.Get(s.ID())
	fmt.Println("new ID:", renewed.Value != s.ID(), "old ID ended:", errOld != nil)
	// Output: new ID: true old ID ended: true
}

func ExampleLogoutEverywhere() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	sessions := httpsession.New(store, httpsession.Options{})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := httpsession.Login(r.Context(), "bob"); err != nil {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "welcome")
	})
	mux.HandleFunc("POST /logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		n, err := httpsession.LogoutEverywhere(r.Context())
		if err != nil {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "ended %d sessions", n)
	})
	mux.Handle("GET /private", httpsession.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello ", httpsession.UserID(r.Context()))
	})))
	srv := httptest.NewServer(sessions.Handler(mux))
	defer srv.Close()

	laptopJar, _ := cookiejar.New(nil)
	phoneJar, _ := cookiejar.New(nil)
	laptop, phone := &http.Client{Jar: laptopJar}, &http.Client{Jar: phoneJar}
	do := func(c *http.Client, method, path string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s %s: %d %s\n", method, path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	do(laptop, "POST", "/login")
	do(phone, "POST", "/login")
	do(phone, "GET", "/private")
	do(laptop, "POST", "/logout-everywhere")
	do(phone, "GET", "/private")
	// Output:
	// POST /login: 200 welcome
	// POST /login: 200 welcome
	// GET /private: 200 hello bob
	// POST /logout-everywhere: 200 ended 2 sessions
	// GET /private: 401 Unauthorized
}
