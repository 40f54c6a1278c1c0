package httpsession_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cookie must go out with the headers a Flush sends, before the body.
func TestFlushCommitsFirst(t *testing.T) {
	tests := []struct {
		name  string
		flush func(w http.ResponseWriter) error
	}{
		{"http.Flusher", func(w http.ResponseWriter) error { w.(http.Flusher).Flush(); return nil }},
		{"ResponseController", func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			h := func(f *fixture) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					f.m.Put(r.Context(), "k", "v")
					assert.NoError(t, tt.flush(w))
					select {
					case <-release:
					case <-time.After(10 * time.Second):
					}
					fmt.Fprint(w, "rest")
				})
			}
			f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
			resp, err := f.client(t).Get(f.srv.URL)
			require.NoError(t, err)
			assert.NotNil(t, f.sessionCookie(t, resp), "cookie arrived with the flushed headers")
			close(release)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, "rest", string(body))
			assert.Equal(t, 1, f.store.Len())
		})
	}
}

func TestHijackCommitsFirst(t *testing.T) {
	tests := []struct {
		name   string
		hijack func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error)
	}{
		{"http.Hijacker", func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
			return w.(http.Hijacker).Hijack()
		}},
		{"ResponseController", func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
			return http.NewResponseController(w).Hijack()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := func(f *fixture) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/get" {
						fmt.Fprint(w, f.m.GetString(r.Context(), "k"))
						return
					}
					f.m.Put(r.Context(), "k", "v")
					conn, rw, err := tt.hijack(w)
					if !assert.NoError(t, err) {
						return
					}
					defer conn.Close()
					// The handler owns the response now, cookie included.
					fmt.Fprint(rw, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n")
					assert.NoError(t, w.Header().Write(rw))
					fmt.Fprint(rw, "\r\nok")
					assert.NoError(t, rw.Flush())
				})
			}
			f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
			c := f.client(t)
			resp, body := f.do(t, c, "GET /")
			assert.Equal(t, "ok", body)
			assert.NotNil(t, f.sessionCookie(t, resp))
			_, body = f.do(t, c, "GET /get")
			assert.Equal(t, "v", body, "committed before the connection was handed over")
		})
	}
}

// Deadlines and full duplex are not the middleware's business: a
// ResponseController finds the server's writer through Unwrap.
func TestResponseControllerUnwraps(t *testing.T) {
	h := func(f *fixture) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			assert.NoError(t, rc.SetReadDeadline(time.Now().Add(time.Minute)))
			assert.NoError(t, rc.SetWriteDeadline(time.Now().Add(time.Minute)))
			assert.NoError(t, rc.EnableFullDuplex())
			u, ok := w.(interface{ Unwrap() http.ResponseWriter })
			if assert.True(t, ok) {
				assert.NotSame(t, w, u.Unwrap())
			}
			fmt.Fprint(w, "ok")
		})
	}
	f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
	resp, body := f.do(t, f.client(t), "GET /")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", body)
}

func TestReadFromCommitsFirst(t *testing.T) {
	h := func(f *fixture) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.m.Put(r.Context(), "k", "v")
			n, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader("copied"))
			assert.NoError(t, err)
			assert.Equal(t, int64(6), n)
		})
	}
	f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
	resp, body := f.do(t, f.client(t), "GET /")
	assert.Equal(t, "copied", body)
	assert.NotNil(t, f.sessionCookie(t, resp))
}

// An informational response goes out before the session is committed: the
// cookie belongs to the final response only.
func TestEarlyHintsCarryNoCookie(t *testing.T) {
	h := func(f *fixture) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.m.Put(r.Context(), "k", "v")
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			fmt.Fprint(w, "ok")
		})
	}
	f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
		hints = append(hints, fmt.Sprint(code, header["Set-Cookie"]))
		return nil
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", f.srv.URL, nil)
	require.NoError(t, err)
	resp, err := f.client(t).Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, []string{"103 []"}, hints)
	assert.NotNil(t, f.sessionCookie(t, resp))
}

// An ErrorFunc that writes nothing lets the handler's response through.
func TestErrorFuncThatOnlyLogs(t *testing.T) {
	got := make(chan error, 1)
	h := func(f *fixture) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.m.Put(r.Context(), "big", strings.Repeat("x", 1<<17))
			fmt.Fprint(w, "handler body")
		})
	}
	f := newFixture(t, engine.Options{}, httpsession.Options{
		ErrorFunc: func(w http.ResponseWriter, r *http.Request, err error) { got <- err },
	}, h)
	resp, body := f.do(t, f.client(t), "GET /")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "handler body", body)
	assert.ErrorIs(t, <-got, engine.ErrTooLarge)
}
