package httpsession

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
)

// responseWriter commits the session on the first write of the response,
// while the Set-Cookie header can still go out with it. It lives inside the
// request's state, so wrapping costs no allocation of its own. It is used
// from the handler's goroutine, as any ResponseWriter is.
type responseWriter struct {
	rw http.ResponseWriter
	st *state

	begun bool
	// aborted is set when a commit failed and ErrorFunc wrote a response
	// in place of the handler's: the handler's later writes are dropped.
	aborted error
}

// begin commits the session, once, before the first byte of the response.
func (w *responseWriter) begin() {
	if w.begun {
		return
	}
	w.begun = true
	r := w.st.r
	if err := w.st.commit(r.Context(), true); err != nil {
		ew := &errorWriter{ResponseWriter: w.rw}
		w.st.m.opts.ErrorFunc(ew, r, err)
		if ew.wrote {
			w.aborted = fmt.Errorf("httpsession: response replaced by ErrorFunc: %w", err)
		}
	}
}

// finish runs when the handler returns: it commits if nothing was written,
// and otherwise commits what the handler changed after it began writing.
func (w *responseWriter) finish() {
	if !w.begun {
		w.begin()
		return
	}
	r := w.st.r
	if err := w.st.commit(r.Context(), false); err != nil {
		w.st.m.opts.ErrorFunc(discardWriter{}, r, err)
	}
}

// Header returns the response's header map.
func (w *responseWriter) Header() http.Header { return w.rw.Header() }

// WriteHeader commits the session and sends the status line and headers.
func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// An informational response (103 Early Hints) goes out with the
		// header map as it is now and leaves the real one open, so the
		// cookie waits for the final status.
		w.rw.WriteHeader(code)
		return
	}
	w.begin()
	if w.aborted == nil {
		w.rw.WriteHeader(code)
	}
}

// Write commits the session, then writes b.
func (w *responseWriter) Write(b []byte) (int, error) {
	w.begin()
	if w.aborted != nil {
		return 0, w.aborted
	}
	return w.rw.Write(b)
}

// ReadFrom commits the session, then copies src to the response, with the
// underlying writer's ReadFrom (sendfile) if it has one.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	w.begin()
	if w.aborted != nil {
		return 0, w.aborted
	}
	if rf, ok := w.rw.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(w.rw, src)
}

// Flush commits the session, then flushes the response.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush that reports failure, http.ErrNotSupported included;
// http.ResponseController.Flush calls it.
func (w *responseWriter) FlushError() error {
	w.begin()
	return http.NewResponseController(w.rw).Flush()
}

// Hijack commits the session, then hands over the connection. The cookie,
// if the commit set one, is in Header() for the handler to write.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.begin()
	if w.aborted != nil {
		return nil, nil, w.aborted
	}
	return http.NewResponseController(w.rw).Hijack()
}

// Unwrap returns the ResponseWriter this one wraps, for
// http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.rw }

// errorWriter records whether ErrorFunc wrote anything.
type errorWriter struct {
	http.ResponseWriter
	wrote bool
}

func (e *errorWriter) WriteHeader(code int) {
	e.wrote = true
	e.ResponseWriter.WriteHeader(code)
}

func (e *errorWriter) Write(b []byte) (int, error) {
	e.wrote = true
	return e.ResponseWriter.Write(b)
}

func (e *errorWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// discardWriter is what ErrorFunc gets once the response has begun: there
// is nowhere left to put an error page.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) WriteHeader(int)             {}
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
