package bench

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
)

// BenchmarkMiddleware puts httpsession's Handler beside scs's LoadAndSave
// with its memstore: per request, with a session cookie already set, a
// handler that reads one string value and one that writes one. Both run
// through ServeHTTP with a recorder, no network, so the figure is each
// middleware's own overhead.
func BenchmarkMiddleware(b *testing.B) {
	type mw struct {
		name  string
		wrap  func(http.Handler) http.Handler
		get   func(r *http.Request) string
		put   func(r *http.Request, v string)
		close func()
	}
	store, err := engine.Open(engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	hs := httpsession.New(store, httpsession.Options{})
	sm := scs.New()
	ms := memstore.NewWithCleanupInterval(0)
	sm.Store = ms
	for _, m := range []mw{
		{
			name:  "sesscache",
			wrap:  hs.Handler,
			get:   func(r *http.Request) string { return hs.GetString(r.Context(), "k") },
			put:   func(r *http.Request, v string) { hs.Put(r.Context(), "k", v) },
			close: func() { _ = store.Close() },
		},
		{
			name:  "scs-memstore",
			wrap:  sm.LoadAndSave,
			get:   func(r *http.Request) string { return sm.GetString(r.Context(), "k") },
			put:   func(r *http.Request, v string) { sm.Put(r.Context(), "k", v) },
			close: func() {},
		},
	} {
		reader := m.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(m.get(r)))
		}))
		writer := m.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.put(r, r.URL.Path)
			_, _ = w.Write([]byte("ok"))
		}))
		// One request to create the session and learn its cookie.
		rec := httptest.NewRecorder()
		writer.ServeHTTP(rec, httptest.NewRequest("POST", "/seed", nil))
		cookies := rec.Result().Cookies()
		if len(cookies) != 1 {
			b.Fatalf("%s: want one cookie after the first write, got %d", m.name, len(cookies))
		}
		for _, c := range []struct {
			op string
			h  http.Handler
		}{{"read", reader}, {"write", writer}} {
			b.Run("op="+c.op+"/mw="+m.name, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for i := 0; pb.Next(); i++ {
						req := httptest.NewRequest("GET", "/v", nil)
						req.AddCookie(cookies[0])
						rec := httptest.NewRecorder()
						c.h.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK {
							b.Fatalf("status %d", rec.Code)
						}
					}
				})
			})
		}
		m.close()
	}
}
