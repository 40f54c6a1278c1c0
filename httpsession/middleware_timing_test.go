package httpsession_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
)

// BenchmarkMiddleware measures the middleware's cost per request through
// ServeHTTP with a recorder, no network: "bare" is a handler that uses no session, alone, the
// others add the middleware and an in-memory engine. The session holds
// three small values.
//
//	go test ./httpsession -run '^$' -bench Middleware -benchmem -count 10 | benchstat -
func BenchmarkMiddleware(b *testing.B) {
	store, err := engine.Open(engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	m := httpsession.New(store, httpsession.Options{})

	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "alice")
	})
	read := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, m.GetString(r.Context(), "name"))
	})
	write := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Put(r.Context(), "count", 7)
		fmt.Fprint(w, "ok")
	})
	seed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Put(r.Context(), "name", "alice")
		m.Put(r.Context(), "theme", "dark")
		m.Put(r.Context(), "count", 1)
	})
	rec := httptest.NewRecorder()
	m.Handler(seed).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		b.Fatalf("seed request set %d cookies", len(cookies))
	}
	withCookie := httptest.NewRequest("GET", "/", nil)
	withCookie.AddCookie(cookies[0])
	anonymous := httptest.NewRequest("GET", "/", nil)

	cases := []struct {
		name string
		h    http.Handler
		req  *http.Request
	}{
		{"bare", bare, withCookie},
		{"read", m.Handler(read), withCookie},
		{"write", m.Handler(write), withCookie},
		{"anonymous-read", m.Handler(read), anonymous},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(httptest.NewRecorder(), c.req)
			}
		})
	}
}
