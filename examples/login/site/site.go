// Package site is the login demo's web site, apart from its command so that
// tests in other modules (a headless browser's, say) can serve it:
//
//	store, _ := engine.Open(site.EngineOptions())
//	defer store.Close()
//	srv := httptest.NewServer(site.New(store))
//
// Pages and form IDs, which such tests may rely on:
//
//	GET  /                  home: the button counter (form#count-form), no session created
//	POST /count             count a press (creates an anonymous session)
//	GET  /login             form#login-form: user, password, remember
//	POST /login             log in; 303 to /account
//	GET  /account           the account page (401 unless logged in)
//	POST /logout            form#logout
//	POST /logout-everywhere form#logout-everywhere
//	GET  /devices           the user's sessions, table#devices: a row per session,
//	                        tr.current for this one, each with form.end-session
//	POST /devices/end       end the session whose handle is in the form
//	POST /devices/others    form#logout-others
//
// The only user is "demo" with password "demo".
package site

import (
	"crypto/subtle"
	"html/template"
	"log"
	"net/http"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
)

// DemoUser and DemoPassword are the demo's only account. They are written
// here for the demonstration: a real site checks a password hash.
const DemoUser, DemoPassword = "demo", "demo"

// EngineOptions are the engine settings the demo runs with; set Dir for
// sessions that survive a restart.
func EngineOptions() engine.Options {
	return engine.Options{
		// Kept to show that it is safe: httpsession's logins and renewals
		// end the old ID at once, and an old ID in grace is anonymous and
		// read-only.
		RotateGrace: 10 * time.Second,
		// A flood of anonymous sessions evicts the oldest of them; it
		// never keeps a user from logging in.
		MaxSessions: 100_000,
		// Logging in on an eleventh device ends the oldest login.
		MaxSessionsPerUser: 10,
	}
}

// New returns the site: its routes behind the session middleware, behind
// protection against cross-site form posts.
func New(store httpsession.Store) http.Handler {
	s := &site{sessions: httpsession.New(store, httpsession.Options{
		// Each address may start 30 anonymous sessions a minute.
		CreateLimit: httpsession.PerClientLimit(nil, 30, time.Minute),
	})}
	m := s.sessions
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("POST /count", s.count)
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.Handle("GET /account", m.RequireAuth(http.HandlerFunc(s.account)))
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("POST /logout-everywhere", s.logoutEverywhere)
	mux.Handle("GET /devices", m.RequireAuth(http.HandlerFunc(s.devices)))
	mux.Handle("POST /devices/end", m.RequireAuth(http.HandlerFunc(s.endDevice)))
	mux.Handle("POST /devices/others", m.RequireAuth(http.HandlerFunc(s.endOthers)))
	return http.NewCrossOriginProtection().Handler(m.Handler(mux))
}

type site struct{ sessions *httpsession.Manager }

// home only reads: a visitor without a session gets none, and no cookie.
func (s *site) home(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	render(w, http.StatusOK, "home", map[string]any{
		"User":    s.sessions.UserID(ctx),
		"Presses": s.sessions.GetInt(ctx, "presses"),
	})
}

// count is the one page that creates an anonymous session, on a POST.
func (s *site) count(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.sessions.Put(ctx, "presses", s.sessions.GetInt(ctx, "presses")+1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *site) loginForm(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, "login", map[string]any{"Failed": false})
}

func (s *site) login(w http.ResponseWriter, r *http.Request) {
	user, password := r.PostFormValue("user"), r.PostFormValue("password")
	if subtle.ConstantTimeCompare([]byte(user), []byte(DemoUser))&
		subtle.ConstantTimeCompare([]byte(password), []byte(DemoPassword)) != 1 {
		render(w, http.StatusUnauthorized, "login", map[string]any{"Failed": true})
		return
	}
	ctx := r.Context()
	// Login issues a new session ID, owned by the user, and ends the old
	// one at once: an ID planted or seen before login is now worthless.
	// The press count comes along; a value from before login is only ever
	// displayed, never trusted.
	if err := s.sessions.Login(ctx, user); err != nil {
		log.Printf("login: %v", err)
		http.Error(w, "could not log in", http.StatusInternalServerError)
		return
	}
	s.sessions.RememberMe(ctx, r.PostFormValue("remember") != "")
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

func (s *site) account(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	render(w, http.StatusOK, "account", map[string]any{
		"User":    s.sessions.UserID(ctx),
		"Since":   stamp(s.sessions.AuthenticatedAt(ctx)),
		"Presses": s.sessions.GetInt(ctx, "presses"),
	})
}

func (s *site) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.sessions.Destroy(r.Context()); err != nil {
		log.Printf("logout: %v", err)
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *site) logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	n, err := s.sessions.LogoutEverywhere(r.Context())
	if err != nil {
		log.Printf("logout everywhere: %v", err)
	}
	log.Printf("logout everywhere: ended %d sessions", n)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// device is one row of the devices page.
type device struct {
	Handle, Label, Created, LastSeen string
	Current                          bool
}

func (s *site) devices(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	list, err := s.sessions.Sessions(ctx)
	if err != nil {
		log.Printf("devices: %v", err)
		http.Error(w, "could not list your sessions", http.StatusInternalServerError)
		return
	}
	current := s.sessions.Handle(ctx)
	rows := make([]device, 0, len(list))
	for _, d := range list {
		rows = append(rows, device{
			Handle:   d.Handle().String(),
			Label:    d.Label(),
			Created:  stamp(d.CreatedAt()),
			LastSeen: stamp(d.LastAccess()),
			Current:  d.Handle() == current,
		})
	}
	render(w, http.StatusOK, "devices", map[string]any{"User": s.sessions.UserID(ctx), "Devices": rows})
}

func (s *site) endDevice(w http.ResponseWriter, r *http.Request) {
	h, err := engine.ParseHandle(r.PostFormValue("handle"))
	if err == nil {
		// Only the user's own sessions can be ended this way.
		err = s.sessions.EndSession(r.Context(), h)
	}
	if err != nil {
		http.Error(w, "no such session of yours", http.StatusNotFound)
		return
	}
	http.Redirect(w, r, "/devices", http.StatusSeeOther)
}

func (s *site) endOthers(w http.ResponseWriter, r *http.Request) {
	if _, err := s.sessions.EndOtherSessions(r.Context()); err != nil {
		log.Printf("log out other devices: %v", err)
		http.Error(w, "could not log out the other devices", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/devices", http.StatusSeeOther)
}

// stamp formats t the same way whatever the server's zone.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func render(w http.ResponseWriter, status int, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, page, data); err != nil {
		log.Printf("render %s: %v", page, err)
	}
}

var pages = template.Must(template.New("").Parse(`
{{define "top"}}<!doctype html><meta charset="utf-8"><title>sesscache login demo</title>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">{{end}}

{{define "home"}}{{template "top"}}
<h1>Home</h1>
<p id="presses">You pressed the button {{.Presses}} time(s) in this session.</p>
<form id="count-form" method="post" action="/count"><button>Press</button></form>
{{if .User}}<p>Logged in as <b id="user">{{.User}}</b>. <a href="/account">Your account</a></p>
{{else}}<p>You are not logged in. <a href="/login">Log in</a> (user <code>demo</code>, password <code>demo</code>)</p>{{end}}
{{end}}

{{define "login"}}{{template "top"}}
<h1>Log in</h1>
{{if .Failed}}<p id="failed" style="color: #b00">Wrong user or password.</p>{{end}}
<form id="login-form" method="post" action="/login">
<p><label>User <input name="user" value="demo" autocomplete="username"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p>
<p><label><input name="remember" type="checkbox"> Keep me logged in on this device</label></p>
<p><button>Log in</button> The demo account is <code>demo</code> / <code>demo</code>.</p>
</form>
{{end}}

{{define "account"}}{{template "top"}}
<h1>Account of <span id="user">{{.User}}</span></h1>
<p>Logged in since {{.Since}}; {{.Presses}} button press(es) in this session.</p>
<p><a href="/devices">Your devices</a> · <a href="/">Home</a></p>
<form id="logout" method="post" action="/logout"><button>Log out</button></form>
<form id="logout-everywhere" method="post" action="/logout-everywhere"><button>Log out on every device</button></form>
{{end}}

{{define "devices"}}{{template "top"}}
<h1>Devices of {{.User}}</h1>
<table id="devices">
<tr><th>Device</th><th>Session started</th><th>Last seen</th><th></th></tr>
{{range .Devices}}<tr{{if .Current}} class="current"{{end}} data-handle="{{.Handle}}">
<td>{{.Label}}{{if .Current}} (this device){{end}}</td><td>{{.Created}}</td><td>{{.LastSeen}}</td>
<td><form class="end-session" method="post" action="/devices/end"><input type="hidden" name="handle" value="{{.Handle}}"><button>Log out this device</button></form></td>
</tr>
{{end}}</table>
<form id="logout-others" method="post" action="/devices/others"><button>Log out other devices</button></form>
<p><a href="/account">Your account</a></p>
{{end}}
`))
