package expvarstats_test

import (
	"context"
	"encoding/json"
	"expvar"
	"fmt"
	"log"
	"net/http/httptest"

	"github.com/sesscache/sesscache/adapters/expvarstats"
	"github.com/sesscache/sesscache/engine"
)

func Example() {
	rec := expvarstats.NewRecorder()
	store, err := engine.Open(engine.Options{Recorder: rec})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	expvarstats.Publish("sesscache_example", store, rec)

	s, _ := store.Create(context.Background(), engine.CreateOptions{UserID: "alice"})
	store.Get(s.ID())

	// A program serves expvar.Handler at /debug/vars (importing expvar
	// does so on http.DefaultServeMux); here a test server stands in.
	srv := httptest.NewServer(expvar.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var vars struct {
		Sesscache struct {
			Stats    engine.Stats
			Recorder struct {
				Writes map[string]struct{ Count int } `json:"write_seconds"`
			}
		} `json:"sesscache_example"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		log.Fatal(err)
	}
	st := vars.Sesscache.Stats
	fmt.Println("live", st.Live, "hits", st.Hits, "creates timed", vars.Sesscache.Recorder.Writes["create"].Count)
	// Output: live 1 hits 1 creates timed 1
}
