package redistier

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sesscache/sesscache/httpsession"
)

// site is one instance of a web application: its own store (its own
// connections and copies) over the shared Redis, httpsession's middleware
// over it, and a test server.
type site struct {
	store *Store
	m     *httpsession.Manager
	srv   *httptest.Server
}

func newSite(t *testing.T, tp topology, prefix string) *site {
	st := open(t, tp, Options{KeyPrefix: prefix})
	s := &site{store: st, m: httpsession.New(st, httpsession.Options{InsecureCookie: true})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /put", func(w http.ResponseWriter, r *http.Request) {
		s.m.Put(r.Context(), r.FormValue("k"), r.FormValue("v"))
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, s.m.GetString(r.Context(), r.FormValue("k")))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := s.m.Login(r.Context(), r.FormValue("u")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, s.m.UserID(r.Context()))
	})
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, r *http.Request) {
		list, err := s.m.Sessions(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprint(w, len(list))
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := s.m.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.m.LogoutEverywhere(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		fmt.Fprint(w, n)
	})
	s.srv = httptest.NewServer(s.m.Handler(mux))
	t.Cleanup(s.srv.Close)
	return s
}

type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil) // cookies are per host, not port: both sites get them
	return &browser{t: t, c: &http.Client{Jar: jar}}
}

func (b *browser) do(s *site, method, path string) string {
	b.t.Helper()
	req, _ := http.NewRequest(method, s.srv.URL+path, nil)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body)
}

// TestHTTPSessionOnTwoInstances runs httpsession's middleware, unchanged,
// on two instances behind an imaginary load balancer: each request of a
// browser goes to either, and sees the same session.
func TestHTTPSessionOnTwoInstances(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		prefix := freshPrefix()
		a, b := newSite(t, tp, prefix), newSite(t, tp, prefix)
		alice := newBrowser(t)
		alice.do(a, "POST", "/put?k=cart&v=socks")
		if got := alice.do(b, "GET", "/get?k=cart"); got != "socks" {
			t.Fatalf("B reads the cart A stored: %q", got)
		}
		u, _ := http.NewRequest("GET", a.srv.URL, nil)
		before := alice.c.Jar.Cookies(u.URL)
		if got := alice.do(b, "POST", "/login?u=alice"); got != "" {
			t.Fatalf("login on B: %s", got)
		}
		if got := alice.do(a, "GET", "/whoami"); got != "alice" {
			t.Fatalf("A after the login on B: %q", got)
		}
		if got := alice.do(a, "GET", "/get?k=cart"); got != "socks" {
			t.Fatalf("the cart after the login: %q", got)
		}
		// The ID from before the login is worthless on both instances.
		fixated := newBrowser(t)
		fixated.c.Jar.SetCookies(u.URL, before)
		for _, s := range []*site{a, b} {
			if got := fixated.do(s, "GET", "/whoami"); got != "" {
				t.Fatalf("the pre-login ID is %q", got)
			}
		}
		// A second device; the list on either instance shows both.
		phone := newBrowser(t)
		phone.do(a, "POST", "/login?u=alice")
		for _, s := range []*site{a, b} {
			if got := alice.do(s, "GET", "/devices"); got != "2" {
				t.Fatalf("devices: %q", got)
			}
		}
		if got := phone.do(b, "GET", "/whoami"); got != "alice" {
			t.Fatalf("phone on B: %q", got)
		}
		// Log out everywhere from A: the phone is logged out on B.
		if got := alice.do(a, "POST", "/logout-everywhere"); got != "2" {
			t.Fatalf("logout everywhere: %q", got)
		}
		eventually(t, 2*time.Second, "the phone is logged out on B", func() bool {
			return phone.do(b, "GET", "/whoami") == ""
		})
		if got := phone.do(a, "GET", "/whoami"); got != "" {
			t.Fatalf("the phone on A: %q", got)
		}
		// A fresh login on A, a logout on B, refused on A.
		alice.do(a, "POST", "/login?u=alice")
		alice.do(a, "GET", "/whoami")
		alice.do(b, "GET", "/whoami")
		cookies := alice.c.Jar.Cookies(u.URL)
		alice.do(b, "POST", "/logout")
		replay := newBrowser(t)
		replay.c.Jar.SetCookies(u.URL, cookies)
		eventually(t, 2*time.Second, "the logged-out ID is refused on A", func() bool {
			return replay.do(a, "GET", "/whoami") == ""
		})
		if n := a.store.Stats().Local.Hits; n == 0 {
			t.Fatal("A served nothing from its copies")
		}
	})
}
