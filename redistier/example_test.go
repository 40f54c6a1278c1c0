package redistier_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/sesscache/sesscache/redistier"
)

// redisAddr is where the examples find Redis (the tests set it; see
// testdata/redis.sh), and prefix keeps their keys apart from other runs'.
func redisAddr() []string { return []string{os.Getenv("REDISTIER_STANDALONE")} }

func prefix() string {
	var b [4]byte
	rand.Read(b[:])
	return "example-" + hex.EncodeToString(b[:]) + ":"
}

// Two instances of a service share sessions: one creates, the other reads
// (from Redis once, then from its own copy); a revocation on one is
// refused by both.
func Example() {
	ctx := context.Background()
	opts := redistier.Options{Addrs: redisAddr(), KeyPrefix: prefix()}
	a, err := redistier.New(ctx, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := redistier.New(ctx, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	s, err := a.Create(ctx, engine.CreateOptions{UserID: "alice", Data: []byte("cart=socks")})
	if err != nil {
		log.Fatal(err)
	}
	got, err := b.Find(ctx, s.ID(), nil)
	fmt.Println(got.UserID(), string(got.Data()), err)

	n, err := b.RevokeUser(ctx, "alice")
	fmt.Println("revoked", n, err)
	_, err = a.Find(ctx, s.ID(), nil)
	fmt.Println(errors.Is(err, engine.ErrNotFound))
	// Output:
	// alice cart=socks <nil>
	// revoked 1 <nil>
	// true
}

// A Store is an httpsession.Store: the middleware runs on it unchanged, and
// a browser's requests may go to any instance.
func ExampleStore_httpsession() {
	ctx := context.Background()
	opts := redistier.Options{Addrs: redisAddr(), KeyPrefix: prefix()}
	var servers []*httptest.Server
	for range 2 {
		store, err := redistier.New(ctx, opts)
		if err != nil {
			log.Fatal(err)
		}
		defer store.Close()
		sessions := httpsession.New(store, httpsession.Options{InsecureCookie: true}) // plain-http test server
		mux := http.NewServeMux()
		mux.HandleFunc("POST /theme", func(w http.ResponseWriter, r *http.Request) {
			sessions.Put(r.Context(), "theme", r.FormValue("theme"))
		})
		mux.HandleFunc("GET /theme", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, sessions.GetString(r.Context(), "theme"))
		})
		srv := httptest.NewServer(sessions.Handler(mux))
		defer srv.Close()
		servers = append(servers, srv)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if _, err := browser.Post(servers[0].URL+"/theme?theme=dark", "", nil); err != nil {
		log.Fatal(err)
	}
	resp, err := browser.Get(servers[1].URL + "/theme")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(strings.TrimSpace(string(body)))
	// Output: dark
}
