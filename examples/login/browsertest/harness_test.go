package browsertest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"flag"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/examples/login/site"
	"github.com/sesscache/sesscache/internal/leakcheck"
)

const (
	// chromiumEnv names the browser binary; defaultChromium is Debian's
	// package, which CI installs.
	chromiumEnv     = "BROWSERTEST_CHROMIUM"
	defaultChromium = "/usr/bin/chromium"

	// artifactsEnv is the directory the devices screenshot is written to;
	// when unset it goes to the test's temporary directory.
	artifactsEnv = "BROWSERTEST_ARTIFACTS"

	// cookieName is the demo's session cookie (httpsession's default).
	cookieName = "__Host-id"

	// stepTimeout bounds each step in the browser, so that a page that
	// never comes fails the test with the step's name instead of hanging
	// until go test's own timeout.
	stepTimeout = 30 * time.Second
)

var update = flag.Bool("update", false, "rewrite testdata/devices.png with this run's screenshot")

// TestMain fails the run if a goroutine of chromedp, of the demo's engine or
// of an HTTP server outlives the tests: every browser, tab and server must
// be closed by the test that opened it.
func TestMain(m *testing.M) {
	leakcheck.Main(m, func(g string) bool {
		return strings.Contains(g, "github.com/chromedp/") ||
			strings.Contains(g, "sesscache/engine") ||
			strings.Contains(g, "net/http.") ||
			strings.Contains(g, "os/exec.")
	})
}

// newCert returns a self-signed certificate for every address the tests
// serve on, and the base64 SHA-256 of its public key in the form that
// Chromium's --ignore-certificate-errors-spki-list takes.
//
// Why TLS at all: the demo's cookie is __Host-id and Secure, which a
// browser keeps only from a secure origin. Chromium would also count
// http://localhost as one, but https is what production runs, and it lets
// the cross-site test use plain IP addresses (127.0.0.2 is not "localhost").
// Why pin this key instead of --ignore-certificate-errors: the browser then
// trusts this one test key and still rejects any other bad certificate.
func newCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sesscache browsertest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		base64.StdEncoding.EncodeToString(spki[:])
}

// serveTLS serves h over https on addr (host:0) with cert until the test
// ends.
func serveTLS(t *testing.T, addr string, cert tls.Certificate, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// demo is the login demo over a fresh in-memory engine, served over https
// on 127.0.0.1. Each subtest gets its own, so that logins of one never
// show on another's devices page.
type demo struct{ URL string }

func serveDemo(t *testing.T, cert tls.Certificate) *demo {
	t.Helper()
	store, err := engine.Open(site.EngineOptions())
	if err != nil {
		t.Fatal(err)
	}
	srv := serveTLS(t, "127.0.0.1:0", cert, site.New(store))
	// Cleanups run last registered first, so this one runs before
	// serveTLS's: it closes the server too (Close is idempotent), so that
	// no request reaches a closed store.
	t.Cleanup(func() {
		srv.Close()
		if err := store.Close(); err != nil {
			t.Errorf("closing the demo's store: %v", err)
		}
	})
	return &demo{URL: srv.URL}
}

// syncBuffer is Chromium's output, written by chromedp's goroutine and read
// by the test when it fails.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// startChromium starts a headless Chromium that trusts the key spki, and
// returns the chromedp context of its first tab, from which the tests open
// browser contexts (profiles). When the test ends the browser is closed,
// and the test fails if any of its processes is still alive.
//
// A missing Chromium fails the test rather than skipping it: a skipped
// browser test in CI would look like a passing one.
func startChromium(t *testing.T, spki string) context.Context {
	t.Helper()
	path := cmp.Or(os.Getenv(chromiumEnv), defaultChromium)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no Chromium at %s (%v): install it (Debian: apt-get install -y chromium; CI installs it), "+
			"or set %s to its path", path, err, chromiumEnv)
	}
	// A fresh, empty profile directory: nothing from an earlier run (or
	// from a user's own browser) can change what this one sees.
	dir := t.TempDir()
	out := new(syncBuffer)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		// The machine (a container, as root) has no sandbox support and
		// no GPU.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Without these the browser phones home at start, which this
		// machine (and CI) refuses, and the tests would wait on it.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		// A fixed window, so that the screenshot has the same size on
		// every machine.
		chromedp.WindowSize(1000, 700),
		chromedp.CombinedOutput(out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		// Cancel closes the browser gracefully and waits for its process
		// to exit; the deadline keeps a stuck browser from hanging the
		// test (it is then killed by cancel).
		cctx, ccancel := context.WithTimeout(ctx, stepTimeout)
		if err := chromedp.Cancel(cctx); err != nil {
			t.Errorf("closing Chromium: %v", err)
		}
		ccancel()
		cancel()
		cancelAlloc() // waits for the allocator's goroutines
		if left := waitNoProcesses(dir); len(left) > 0 {
			t.Errorf("Chromium processes outlived the test: %v", left)
		}
		if s := out.tail(4000); t.Failed() && s != "" {
			t.Logf("Chromium's output:\n%s", s)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium (%s): %v\n%s", path, err, out.tail(4000))
	}
	return ctx
}

// waitNoProcesses waits until no process runs with dir as its profile
// directory, and returns the command lines of those still running after a
// deadline. Chromium passes --user-data-dir to every child (renderers,
// zygote, network service), so this finds all of this test's browser
// processes and no one else's. It is Linux-only (it reads /proc); on other
// systems it checks nothing.
func waitNoProcesses(dir string) []string {
	if runtime.GOOS != "linux" {
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		left := processesWith("--user-data-dir=" + dir)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		<-tick.C
	}
}

func processesWith(arg string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var found []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		if bytes.Contains(cmdline, []byte(arg)) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// newProfile opens a tab in a new browser context of the browser: its own
// cookie jar, cache and storage, like an incognito window or another
// device. It is disposed of when the test ends.
func newProfile(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(func() {
		// Closes the tab and disposes of the browser context.
		if err := chromedp.Cancel(ctx); err != nil {
			t.Errorf("closing a profile: %v", err)
		}
		cancel()
	})
	if err := chromedp.Do(ctx); err != nil { // opens the tab now, with no deadline
		t.Fatalf("opening a profile: %v", err)
	}
	return ctx
}

// do runs the steps in the profile, within stepTimeout, and fails the test
// on the first error; what says what they do, for the failure message.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, as do does.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// submit runs the steps, which must start one navigation (a click on a
// form's button), and returns the response that ends it: after
// redirects, the page the browser shows.
func submit(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) *network.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return resp
}

// open navigates to url and returns the response of its document.
func open(t *testing.T, ctx context.Context, url string) *network.Response {
	t.Helper()
	return get(t, ctx, "open "+url, chromedp.NavigateResponse(url))
}

// login logs in as the demo user through the login form, ticking "keep me
// logged in" if remember, and checks that the account page follows.
func login(t *testing.T, ctx context.Context, d *demo, remember bool) {
	t.Helper()
	do(t, ctx, "open the login form",
		chromedp.Navigate(d.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SetValue(chromedp.CSS(`#login-form input[name="user"]`), site.DemoUser),
		chromedp.SendKeys(chromedp.CSS(`#login-form input[name="password"]`), site.DemoPassword),
	)
	if remember {
		do(t, ctx, "tick remember-me", chromedp.Click(chromedp.CSS(`#login-form input[name="remember"]`)))
	}
	resp := submit(t, ctx, "submit the login form", chromedp.Click(chromedp.CSS(`#login-form button`)))
	if resp.Status != http.StatusOK || resp.URL != d.URL+"/account" {
		t.Fatalf("after logging in the browser shows %s (%d), want %s/account (200)", resp.URL, resp.Status, d.URL)
	}
	if user := get(t, ctx, "read the account's user", chromedp.Text(chromedp.ID("user"))); user != site.DemoUser {
		t.Fatalf("the account page is %q's, want %q's", user, site.DemoUser)
	}
}

// sessionCookie returns the session cookie that the profile's cookie jar
// holds for the demo, or nil.
func sessionCookie(t *testing.T, ctx context.Context, d *demo) *network.Cookie {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	// Network.getCookies runs on the tab, so it reads the jar of the tab's
	// own browser context and no other.
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{d.URL + "/"}})
	if err != nil {
		t.Fatalf("reading the cookie jar: %v", err)
	}
	var found *network.Cookie
	for _, c := range res.Cookies {
		if c.Name == cookieName {
			if found != nil {
				t.Fatalf("the jar holds two %s cookies for %s", cookieName, d.URL)
			}
			found = c
		}
	}
	return found
}

// setCookieLog is every Set-Cookie line that reached one profile, as its
// network stack received them (before the jar accepted or refused them).
type setCookieLog struct {
	mu    sync.Mutex
	lines []string
}

// recordSetCookies starts recording the profile's Set-Cookie lines, from
// every response, redirects included, until the profile closes.
func recordSetCookies(t *testing.T, ctx context.Context) *setCookieLog {
	t.Helper()
	l := new(setCookieLog)
	// The listener runs on chromedp's reading goroutine: it only appends.
	err := chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*network.EventResponseReceivedExtraInfo)
		if !ok {
			return
		}
		for name, v := range e.Headers {
			if s, ok := v.(string); ok && strings.EqualFold(name, "Set-Cookie") {
				l.mu.Lock()
				// The protocol joins repeated headers with newlines.
				l.lines = append(l.lines, strings.Split(s, "\n")...)
				l.mu.Unlock()
			}
		}
	})
	if err != nil {
		t.Fatalf("listening to the network: %v", err)
	}
	return l
}

// with returns the recorded lines that contain s.
func (l *setCookieLog) with(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			found = append(found, line)
		}
	}
	return found
}
