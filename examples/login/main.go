// Command login is a small web server showing httpsession at work: a button
// counter kept in an anonymous session (created by a POST, never by a page
// view), a login form, a page only a logged-in user may see, a list of the
// user's devices with "log out this device" and "log out other devices",
// logout, and logout on every device at once. The site itself is package
// site, so that other tests can serve it.
//
//	go run ./examples/login                 # http://127.0.0.1:8080, sessions in memory
//	go run ./examples/login -dir sessions   # sessions survive a restart
//
// The only user is "demo" with password "demo", written into package site:
// it is a demonstration, not a way to keep passwords.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/examples/login/site"
)

func main() {
	port := flag.Int("port", 8080, "port to listen on, on 127.0.0.1")
	dir := flag.String("dir", "", "directory to keep sessions in across restarts (default: memory only)")
	flag.Parse()
	if err := run(*port, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(port int, dir string) error {
	opts := site.EngineOptions()
	opts.Dir = dir
	store, err := engine.Open(opts)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }() // after Shutdown: flushes the log when -dir is set; nothing is left to tell of a failure

	srv := &http.Server{
		Addr:              fmt.Sprintf("127.0.0.1:%d", port),
		Handler:           newHandler(store),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("listening on http://%s — log in as %q with password %q; Ctrl-C stops", srv.Addr, site.DemoUser, site.DemoPassword)

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

// newHandler returns the site over store.
func newHandler(store *engine.Engine) http.Handler { return site.New(store) }
