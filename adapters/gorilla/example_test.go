package sessgorilla_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	sessgorilla "github.com/sesscache/sesscache/adapters/gorilla"
	"github.com/sesscache/sesscache/engine"
)

func Example() {
	e, err := engine.Open(engine.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	store := sessgorilla.NewStore(e, sessgorilla.Options{}) // Secure, HttpOnly, SameSite=Lax

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sess, err := store.Get(r, "session")
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		n, _ := sess.Values["visits"].(int)
		sess.Values["visits"] = n + 1
		if err := sess.Save(r, w); err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "visit %d", n+1)
	})

	// The cookie is Secure, so the browser (a client with a cookie jar)
	// sends it back over HTTPS only.
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body))
	}
	fmt.Println("sessions in the engine:", e.Len())
	// Output:
	// visit 1
	// visit 2
	// visit 3
	// sessions in the engine: 1
}
