package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/examples/login/site"
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

const cookieName = "__Host-id"

// demo is the site over a fresh engine with the demo's settings.
type demo struct {
	t     *testing.T
	store *engine.Engine
	srv   *httptest.Server
}

func newDemo(t *testing.T) *demo {
	store, err := engine.Open(site.EngineOptions())
	require.NoError(t, err)
	srv := httptest.NewServer(newHandler(store))
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, store.Close())
	})
	return &demo{t: t, store: store, srv: srv}
}

// browser is a client with a cookie jar and a User-Agent of its own.
type browser struct {
	d  *demo
	c  *http.Client
	ua string
}

func (d *demo) browser(ua string) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(d.t, err)
	return &browser{d: d, c: &http.Client{Transport: d.srv.Client().Transport, Jar: jar}, ua: ua}
}

// do sends a request, following redirects, and returns the final status
// and body, and the Set-Cookie lines of every response on the way.
func (b *browser) do(method, path string, form url.Values) (int, string, []string) {
	t := b.d.t
	t.Helper()
	var setCookies []string
	c := *b.c
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		setCookies = append(setCookies, req.Response.Header.Values("Set-Cookie")...)
		req.Header.Set("User-Agent", b.ua)
		return nil
	}
	req, err := http.NewRequest(method, b.d.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("User-Agent", b.ua)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), append(setCookies, resp.Header.Values("Set-Cookie")...)
}

func (b *browser) get(path string) (int, string) {
	code, body, _ := b.do("GET", path, nil)
	return code, body
}

func (b *browser) post(path string, form url.Values) (int, string) {
	code, body, _ := b.do("POST", path, form)
	return code, body
}

// cookie returns the session cookie in the browser's jar, or nil.
func (b *browser) cookie() *http.Cookie {
	u, _ := url.Parse(b.d.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == cookieName {
			return c
		}
	}
	return nil
}

var demoLogin = url.Values{"user": {site.DemoUser}, "password": {site.DemoPassword}}

const (
	firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
	safari  = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
)

// TestWalkThrough visits the site as a newcomer would, in two browsers.
func TestWalkThrough(t *testing.T) {
	d := newDemo(t)
	laptop, phone := d.browser(firefox), d.browser(safari)

	code, body, cookies := laptop.do("GET", "/", nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "0 time(s)")
	assert.Empty(t, cookies, "a page view sets no cookie")
	code, _ = laptop.get("/account")
	assert.Equal(t, http.StatusUnauthorized, code)

	laptop.post("/count", url.Values{})
	_, body = laptop.post("/count", url.Values{})
	assert.Contains(t, body, "2 time(s)", "the counter is kept in an anonymous session")
	anonymous := laptop.cookie()
	require.NotNil(t, anonymous)

	code, body = laptop.post("/login", url.Values{"user": {"demo"}, "password": {"guess"}})
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, body, "Wrong user or password")

	code, body = laptop.post("/login", demoLogin)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `Account of <span id="user">demo</span>`)
	assert.Contains(t, body, "2 button press(es)", "the anonymous count came along")
	assert.NotEqual(t, anonymous.Value, laptop.cookie().Value, "a new ID at login")

	phone.post("/login", demoLogin)
	code, body = phone.get("/devices")
	require.Equal(t, http.StatusOK, code)
	rows := deviceRows(body)
	require.Len(t, rows, 2, body)
	assert.Equal(t, []string{"Firefox on Linux", "Safari on iOS (this device)"}, []string{rows[0].label, rows[1].label})
	assert.False(t, rows[0].current)
	assert.True(t, rows[1].current)

	code, _ = phone.post("/devices/end", url.Values{"handle": {rows[0].handle}})
	assert.Equal(t, http.StatusOK, code)
	code, _ = laptop.get("/account")
	assert.Equal(t, http.StatusUnauthorized, code, "the laptop was logged out from the phone")
	code, _ = phone.post("/devices/end", url.Values{"handle": {rows[0].handle}})
	assert.Equal(t, http.StatusNotFound, code, "that session is gone")
	code, _ = phone.post("/devices/end", url.Values{"handle": {"not a handle"}})
	assert.Equal(t, http.StatusNotFound, code)

	laptop.post("/login", demoLogin)
	code, body = phone.post("/devices/others", url.Values{})
	assert.Equal(t, http.StatusOK, code)
	assert.Len(t, deviceRows(body), 1, "only this device is left")
	code, _ = laptop.get("/account")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = phone.get("/account")
	assert.Equal(t, http.StatusOK, code)

	laptop.post("/login", demoLogin)
	laptop.post("/logout-everywhere", url.Values{})
	code, _ = phone.get("/account")
	assert.Equal(t, http.StatusUnauthorized, code, "the phone was logged out too")
	code, _ = laptop.get("/account")
	assert.Equal(t, http.StatusUnauthorized, code)

	phone.post("/login", demoLogin)
	phone.post("/logout", url.Values{})
	code, _ = phone.get("/account")
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Nil(t, phone.cookie(), "logout clears the cookie")
}

type row struct {
	handle, label string
	current       bool
}

var rowRE = regexp.MustCompile(`<tr( class="current")? data-handle="([0-9a-f]{32})">\s*<td>([^<]*)</td>`)

// deviceRows reads the rows of the devices page.
func deviceRows(body string) []row {
	var rows []row
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		rows = append(rows, row{handle: m[2], label: m[3], current: m[1] != ""})
	}
	return rows
}

// Nothing but a POST creates a session.
func TestPageViewsCreateNothing(t *testing.T) {
	d := newDemo(t)
	for range 20 {
		for _, path := range []string{"/", "/login", "/account", "/devices", "/nowhere"} {
			_, _, cookies := d.browser(firefox).do("GET", path, nil)
			assert.Empty(t, cookies, path)
		}
	}
	assert.Equal(t, 0, d.store.Len())
}

// One client cannot create anonymous sessions without end, but can still
// log in.
func TestCounterFloodLimited(t *testing.T) {
	d := newDemo(t)
	var codes []int
	for range 60 {
		code, _ := d.browser(firefox).post("/count", url.Values{})
		codes = append(codes, code)
	}
	for i, code := range codes[:30] {
		assert.Equal(t, http.StatusOK, code, "request %d: within the burst of 30", i)
	}
	// The site's clock is real: a token comes back every two seconds, so
	// a slow run may see a few more pass, never all.
	assert.Contains(t, codes[30:], http.StatusTooManyRequests)
	code, body := d.browser(firefox).post("/login", demoLogin)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "Account of")
}

// An attacker plants the cookie of an anonymous session in the victim's
// browser; after the victim logs in it is worthless, despite RotateGrace.
func TestFixation(t *testing.T) {
	d := newDemo(t)
	attacker, victim := d.browser(firefox), d.browser(safari)
	attacker.post("/count", url.Values{})
	x := attacker.cookie()
	require.NotNil(t, x)
	u, err := url.Parse(d.srv.URL)
	require.NoError(t, err)
	victim.c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: x.Value, Path: "/", Secure: true, HttpOnly: true}})

	code, body := victim.post("/login", demoLogin)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "1 button press(es)", "the victim logged in from the planted session")
	fresh := victim.cookie()
	require.NotEqual(t, x.Value, fresh.Value)

	for _, path := range []string{"/account", "/devices"} {
		code, body, cookies := attacker.do("GET", path, nil)
		assert.Equal(t, http.StatusUnauthorized, code, path)
		assert.NotContains(t, body, fresh.Value)
		assert.Empty(t, cookies, path)
	}
	_, body, cookies := attacker.do("GET", "/", nil)
	assert.NotContains(t, body, "Logged in as")
	assert.Empty(t, cookies)
	_, _, cookies = attacker.do("POST", "/logout-everywhere", url.Values{})
	for _, c := range cookies {
		assert.NotContains(t, c, fresh.Value)
	}
	code, _ = victim.get("/account")
	assert.Equal(t, http.StatusOK, code, "the victim is still logged in")
}

func TestRememberMe(t *testing.T) {
	d := newDemo(t)
	for _, remember := range []bool{false, true} {
		b := d.browser(firefox)
		form := url.Values{"user": {site.DemoUser}, "password": {site.DemoPassword}}
		if remember {
			form.Set("remember", "on")
		}
		_, _, cookies := b.do("POST", "/login", form)
		require.Len(t, cookies, 1)
		c, err := http.ParseSetCookie(cookies[0])
		require.NoError(t, err)
		assert.Equal(t, cookieName, c.Name)
		assert.Equal(t, remember, c.MaxAge > 0, "a persistent cookie only when asked")
	}
}

// A form posted from another site is refused.
func TestCrossSitePostRefused(t *testing.T) {
	d := newDemo(t)
	req, err := http.NewRequest("POST", d.srv.URL+"/logout-everywhere", nil)
	require.NoError(t, err)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := d.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}
