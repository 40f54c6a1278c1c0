package sessprom_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	sessprom "github.com/sesscache/sesscache/adapters/prometheus"
	"github.com/sesscache/sesscache/engine"
)

func Example() {
	rec := sessprom.NewRecorder(sessprom.Options{})
	store, err := engine.Open(engine.Options{Recorder: rec})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// In main: register both with the registry you serve. Nothing is
	// registered behind your back.
	reg := prometheus.NewRegistry()
	reg.MustRegister(rec, sessprom.NewCollector(store, sessprom.Options{}))
	// http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	s, _ := store.Create(context.Background(), engine.CreateOptions{UserID: "alice"})
	store.Get(s.ID())
	store.Get(s.ID())

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "sesscache_hits_total ") ||
			strings.HasPrefix(line, "sesscache_sessions ") ||
			strings.HasPrefix(line, `sesscache_write_duration_seconds_count{op="create"}`) {
			fmt.Println(line)
		}
	}
	// Output:
	// sesscache_hits_total 2
	// sesscache_sessions 1
	// sesscache_write_duration_seconds_count{op="create"} 1
}
