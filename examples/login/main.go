// Command login is a small web server showing httpsession at work: a visit
// counter kept in an anonymous session, a login form, a page only a
// logged-in user may see, logout, and logout on every device at once.
//
//	go run ./examples/login                 # http://127.0.0.1:8080, sessions in memory
//	go run ./examples/login -dir sessions   # sessions survive a restart
//
// The only user is "demo" with password "demo", written into this file:
// it is a demonstration, not a way to keep passwords.
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
)

const demoUser, demoPassword = "demo", "demo"

func main() {
	port := flag.Int("port", 8080, "port to listen on, on 127.0.0.1")
	dir := flag.String("dir", "", "directory to keep sessions in across restarts (default: memory only)")
	flag.Parse()
	if err := run(*port, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(port int, dir string) error {
	// RotateGrace lets requests already in flight when a session's ID
	// changes finish with the old one.
	store, err := engine.Open(engine.Options{Dir: dir, RotateGrace: 10 * time.Second})
	if err != nil {
		return err
	}
	defer store.Close() // after Shutdown: flushes the log when -dir is set

	srv := &http.Server{
		Addr:              fmt.Sprintf("127.0.0.1:%d", port),
		Handler:           newHandler(store),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("listening on http://%s — log in as %q with password %q; Ctrl-C stops", srv.Addr, demoUser, demoPassword)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler returns the site: its routes behind the session middleware,
// behind protection against cross-site form posts.
func newHandler(store *engine.Engine) http.Handler {
	sessions := httpsession.New(store, httpsession.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", home)
	mux.HandleFunc("GET /login", loginForm)
	mux.HandleFunc("POST /login", login)
	mux.Handle("GET /account", httpsession.RequireAuth(http.HandlerFunc(account)))
	mux.HandleFunc("POST /logout", logout)
	mux.HandleFunc("POST /logout-everywhere", logoutEverywhere)
	return http.NewCrossOriginProtection().Handler(sessions.Handler(mux))
}

func home(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// Writing a value is what creates a session; a page that only read
	// would set no cookie at all.
	visits := httpsession.GetInt(ctx, "visits") + 1
	httpsession.Put(ctx, "visits", visits)
	render(w, http.StatusOK, "home", map[string]any{"User": httpsession.UserID(ctx), "Visits": visits})
}

func loginForm(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, "login", map[string]any{"Failed": false})
}

func login(w http.ResponseWriter, r *http.Request) {
	user, password := r.PostFormValue("user"), r.PostFormValue("password")
	if subtle.ConstantTimeCompare([]byte(user), []byte(demoUser))&
		subtle.ConstantTimeCompare([]byte(password), []byte(demoPassword)) != 1 {
		render(w, http.StatusUnauthorized, "login", map[string]any{"Failed": true})
		return
	}
	// Login issues a new session ID, owned by the user, and keeps the
	// visit count: an ID planted or seen before login is now worthless.
	if err := httpsession.Login(r.Context(), user); err != nil {
		log.Printf("login: %v", err)
		http.Error(w, "could not log in", http.StatusInternalServerError)
		return
	}
	httpsession.Put(r.Context(), "since", time.Now())
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

func account(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	render(w, http.StatusOK, "account", map[string]any{
		"User":   httpsession.UserID(ctx),
		"Since":  httpsession.GetTime(ctx, "since").Local().Format(time.Kitchen),
		"Visits": httpsession.GetInt(ctx, "visits"),
	})
}

func logout(w http.ResponseWriter, r *http.Request) {
	if err := httpsession.Destroy(r.Context()); err != nil {
		log.Printf("logout: %v", err)
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	n, err := httpsession.LogoutEverywhere(r.Context())
	if err != nil {
		log.Printf("logout everywhere: %v", err)
	}
	log.Printf("logout everywhere: ended %d sessions", n)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func render(w http.ResponseWriter, status int, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, page, data); err != nil {
		log.Printf("render %s: %v", page, err)
	}
}

var pages = template.Must(template.New("").Parse(`
{{define "top"}}<!doctype html><meta charset="utf-8"><title>sesscache login demo</title>
<body style="font-family: sans-serif; max-width: 36em; margin: 2em auto">{{end}}

{{define "home"}}{{template "top"}}
<h1>Home</h1>
<p>You have seen this page {{.Visits}} time(s) in this session.</p>
{{if .User}}<p>Logged in as <b>{{.User}}</b>. <a href="/account">Your account</a></p>
{{else}}<p>You are not logged in. <a href="/login">Log in</a> (user <code>demo</code>, password <code>demo</code>)</p>{{end}}
{{end}}

{{define "login"}}{{template "top"}}
<h1>Log in</h1>
{{if .Failed}}<p style="color: #b00">Wrong user or password.</p>{{end}}
<form method="post" action="/login">
<p><label>User <input name="user" value="demo" autocomplete="username"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p>
<p><button>Log in</button> The demo account is <code>demo</code> / <code>demo</code>.</p>
</form>
{{end}}

{{define "account"}}{{template "top"}}
<h1>Account of {{.User}}</h1>
<p>Logged in since {{.Since}}; {{.Visits}} visit(s) to the home page in this session.</p>
<form method="post" action="/logout"><button>Log out</button></form>
<form method="post" action="/logout-everywhere"><button>Log out on every device</button></form>
<p><a href="/">Home</a></p>
{{end}}
`))
