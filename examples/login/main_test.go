package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/internal/leakcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain fails the run if a server, connection or engine goroutine
// outlives the tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m, func(g string) bool {
		return strings.Contains(g, "sesscache/engine") ||
			strings.Contains(g, "net/http.(*conn).serve") || strings.Contains(g, "net/http.(*persistConn)")
	})
}

// TestWalkThrough visits the site as a newcomer would, in two browsers.
func TestWalkThrough(t *testing.T) {
	store, err := engine.Open(engine.Options{})
	require.NoError(t, err)
	defer store.Close()
	srv := httptest.NewServer(newHandler(store))
	defer srv.Close()
	laptop, phone := browser(t, srv), browser(t, srv)

	get := func(c *http.Client, path string) (int, string) {
		resp, err := c.Get(srv.URL + path)
		require.NoError(t, err)
		return read(t, resp)
	}
	post := func(c *http.Client, path string, form url.Values) (int, string) {
		resp, err := c.PostForm(srv.URL+path, form)
		require.NoError(t, err)
		return read(t, resp)
	}
	demo := url.Values{"user": {"demo"}, "password": {"demo"}}

	_, body := get(laptop, "/")
	assert.Contains(t, body, "1 time(s)")
	code, _ := get(laptop, "/account")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, body = post(laptop, "/login", url.Values{"user": {"demo"}, "password": {"guess"}})
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, body, "Wrong user or password")

	code, body = post(laptop, "/login", demo)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "Account of demo")
	assert.Contains(t, body, "1 visit(s)", "the anonymous visit count came along")
	post(phone, "/login", demo)
	code, _ = get(phone, "/account")
	assert.Equal(t, http.StatusOK, code)

	post(laptop, "/logout-everywhere", nil)
	code, _ = get(phone, "/account")
	assert.Equal(t, http.StatusUnauthorized, code, "the phone was logged out too")
	code, _ = get(laptop, "/account")
	assert.Equal(t, http.StatusUnauthorized, code)

	post(phone, "/login", demo)
	post(phone, "/logout", nil)
	code, _ = get(phone, "/account")
	assert.Equal(t, http.StatusUnauthorized, code)
}

// A form posted from another site is refused.
func TestCrossSitePostRefused(t *testing.T) {
	store, err := engine.Open(engine.Options{})
	require.NoError(t, err)
	defer store.Close()
	srv := httptest.NewServer(newHandler(store))
	defer srv.Close()
	req, err := http.NewRequest("POST", srv.URL+"/logout-everywhere", nil)
	require.NoError(t, err)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	code, _ := read(t, resp)
	assert.Equal(t, http.StatusForbidden, code)
}

func browser(t *testing.T, srv *httptest.Server) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Transport: srv.Client().Transport, Jar: jar}
}

func read(t *testing.T, resp *http.Response) (int, string) {
	defer resp.Body.Close()
	var b strings.Builder
	_, err := io.Copy(&b, resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b.String()
}
