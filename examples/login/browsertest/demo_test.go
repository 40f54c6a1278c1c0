package browsertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"html/template"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestDemoInChromium runs the demo's security-relevant flows in one
// headless Chromium. Each subtest serves its own demo and opens its own
// browser contexts (profiles), so that they neither share cookies nor see
// each other's sessions.
func TestDemoInChromium(t *testing.T) {
	cert, spki := newCert(t)
	browser := startChromium(t, spki)

	t.Run("LoginCookie", func(t *testing.T) { testLoginCookie(t, browser, cert) })
	t.Run("RememberMe", func(t *testing.T) { testRememberMe(t, browser, cert) })
	t.Run("LogoutEverywhere", func(t *testing.T) { testLogoutEverywhere(t, browser, cert) })
	t.Run("CrossSitePost", func(t *testing.T) {
		// Another port of the same host is another origin but the same
		// site: SameSite=Lax lets the cookie go with the POST, so only
		// the demo's http.CrossOriginProtection stands in the way.
		t.Run("SameSiteOtherPort", func(t *testing.T) { testCrossSitePost(t, browser, cert, "127.0.0.1", true) })
		// Another address is another site: the browser also keeps the
		// Lax cookie off the POST.
		t.Run("OtherSite", func(t *testing.T) { testCrossSitePost(t, browser, cert, "127.0.0.2", false) })
	})
	t.Run("PlantedCookie", func(t *testing.T) { testPlantedCookie(t, browser, cert) })
}

// checkCookieAttributes checks the attributes that every session cookie
// of the demo has, as the browser stored them.
func checkCookieAttributes(t *testing.T, c *network.Cookie, d *demo) {
	t.Helper()
	u, err := url.Parse(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != cookieName {
		t.Errorf("cookie name %q, want %q", c.Name, cookieName)
	}
	if !c.HTTPOnly {
		t.Error("the session cookie is not HttpOnly")
	}
	if !c.Secure {
		t.Error("the session cookie is not Secure")
	}
	if c.SameSite != network.CookieSameSiteLax {
		t.Errorf("SameSite %q, want %q", c.SameSite, network.CookieSameSiteLax)
	}
	if c.Path != "/" {
		t.Errorf("Path %q, want /", c.Path)
	}
	// A host-only cookie is stored under the bare host; one set with a
	// Domain attribute would be stored as ".host" and sent to subdomains.
	// (Chromium would not even store a __Host- cookie with a Domain.)
	if c.Domain != u.Hostname() {
		t.Errorf("Domain %q, want the host-only %q", c.Domain, u.Hostname())
	}
}

// testLoginCookie logs in through the form and checks the session cookie
// as the browser keeps it, and that page scripts cannot read it.
func testLoginCookie(t *testing.T, browser context.Context, cert tls.Certificate) {
	d := serveDemo(t, cert)
	p := newProfile(t, browser)
	sets := recordSetCookies(t, p)
	login(t, p, d, false)

	c := sessionCookie(t, p, d)
	if c == nil {
		t.Fatalf("after logging in the browser holds no %s cookie", cookieName)
	}
	checkCookieAttributes(t, c, d)
	if !c.Session {
		t.Errorf("without remember-me the cookie expires at %s; want a session cookie", time.Unix(int64(c.Expires), 0))
	}
	// What the server sent, besides what the browser kept: no Domain
	// attribute at all (the jar's Domain field cannot tell Domain=host
	// from no Domain on an IP address).
	lines := sets.with(cookieName + "=" + c.Value)
	if len(lines) == 0 {
		t.Errorf("no Set-Cookie line carried the session cookie; saw %q", sets.with(cookieName))
	}
	for _, line := range lines {
		if strings.Contains(strings.ToLower(line), "domain=") {
			t.Errorf("Set-Cookie has a Domain attribute: %q", line)
		}
	}

	// document.cookie must not show the session cookie. Setting a
	// script-visible cookie first proves that document.cookie works on
	// this page, so that an empty answer is not mistaken for protection.
	got := get(t, p, "read document.cookie", chromedp.Evaluate[string](
		`document.cookie = "probe=visible; Secure; SameSite=Lax; Path=/"; document.cookie`))
	if !strings.Contains(got, "probe=visible") {
		t.Fatalf("document.cookie is %q: it does not work on this page, so it proves nothing", got)
	}
	if strings.Contains(got, cookieName) || strings.Contains(got, c.Value) {
		t.Errorf("a script reads the session cookie: document.cookie = %q", got)
	}
}

// testRememberMe checks that ticking "keep me logged in" makes the cookie
// persistent and changes nothing else.
func testRememberMe(t *testing.T, browser context.Context, cert tls.Certificate) {
	d := serveDemo(t, cert)
	p := newProfile(t, browser)
	login(t, p, d, true)
	c := sessionCookie(t, p, d)
	if c == nil {
		t.Fatalf("after logging in the browser holds no %s cookie", cookieName)
	}
	checkCookieAttributes(t, c, d)
	expires := time.Unix(int64(c.Expires), 0)
	if c.Session || !expires.After(time.Now()) {
		t.Errorf("with remember-me the cookie is a session cookie (%v) or expires in the past (%s); want a persistent one",
			c.Session, expires)
	}
	t.Logf("with remember-me the cookie expires at %s", expires.UTC())
}

// testLogoutEverywhere logs in from two profiles (two devices), saves a
// screenshot of the devices page listing both, then logs out on every
// device from the second and checks that the first is logged out.
func testLogoutEverywhere(t *testing.T, browser context.Context, cert tls.Certificate) {
	d := serveDemo(t, cert)
	laptop, phone := newProfile(t, browser), newProfile(t, browser)
	login(t, laptop, d, false)
	login(t, phone, d, false)

	do(t, phone, "open the devices page",
		chromedp.Navigate(d.URL+"/devices"),
		chromedp.WaitVisible(chromedp.ID("devices")),
	)
	rows := get(t, phone, "count the devices", chromedp.Evaluate[int](`document.querySelectorAll("#devices tr[data-handle]").length`))
	current := get(t, phone, "count the current device", chromedp.Evaluate[int](`document.querySelectorAll("#devices tr.current").length`))
	if rows != 2 || current != 1 {
		t.Errorf("the devices page lists %d devices, %d of them current; want 2 and 1", rows, current)
	}
	saveScreenshot(t, "devices.png", get(t, phone, "screenshot the devices page", chromedp.FullScreenshot(100)))

	if st := open(t, laptop, d.URL+"/account").Status; st != http.StatusOK {
		t.Fatalf("before logging out everywhere the first device's account page answers %d, want 200", st)
	}
	do(t, phone, "open the account page",
		chromedp.Navigate(d.URL+"/account"),
		chromedp.WaitVisible(chromedp.ID("logout-everywhere")),
	)
	resp := submit(t, phone, "log out on every device", chromedp.Click(chromedp.CSS(`#logout-everywhere button`)))
	if resp.Status != http.StatusOK || resp.URL != d.URL+"/" {
		t.Errorf("logging out everywhere ends on %s (%d), want %s/ (200)", resp.URL, resp.Status, d.URL)
	}
	for name, p := range map[string]context.Context{"the first device": laptop, "the device that logged out": phone} {
		if st := open(t, p, d.URL+"/account").Status; st != http.StatusUnauthorized {
			t.Errorf("after logging out everywhere the account page of %s answers %d, want 401", name, st)
		}
	}
}

// saveScreenshot writes a PNG to $BROWSERTEST_ARTIFACTS (or the test's
// temporary directory) and, with -update, to testdata/ too, where a copy
// is committed to show what the page looks like.
func saveScreenshot(t *testing.T, name string, img []byte) {
	t.Helper()
	if _, err := png.DecodeConfig(bytes.NewReader(img)); err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv(artifactsEnv) == "" {
		t.Logf("screenshot: %s (removed after the test; set %s to keep it)", path, artifactsEnv)
	} else {
		t.Logf("screenshot: %s", path)
	}
	if *update {
		golden := filepath.Join("testdata", name)
		if err := os.WriteFile(golden, img, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", golden)
	}
}

// attackerPage is another site's page that, as soon as it loads, posts a
// form to the demo: a cross-site request forgery.
var attackerPage = template.Must(template.New("").Parse(`<!doctype html><title>another site</title>
<form id="forged" method="post" action="{{.}}"><input type="hidden" name="why" value="forgery"></form>
<script>document.getElementById("forged").submit()</script>
`))

// testCrossSitePost logs in, then visits a page served on attackerHost
// (another port or another address) that auto-submits a form to the
// demo's /logout-everywhere, and checks that the demo answered 403 from
// http.CrossOriginProtection and that the session is still logged in.
// sameSite says whether the attacker's page is on the demo's site, where
// the browser sends the Lax cookie with the POST.
func testCrossSitePost(t *testing.T, browser context.Context, cert tls.Certificate, attackerHost string, sameSite bool) {
	d := serveDemo(t, cert)
	target := d.URL + "/logout-everywhere"
	attacker := serveTLS(t, attackerHost+":0", cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := attackerPage.Execute(w, target); err != nil {
			t.Errorf("attacker page: %v", err)
		}
	}))
	p := newProfile(t, browser)
	login(t, p, d, false)
	before := sessionCookie(t, p, d)

	ctx, cancel := context.WithTimeout(p, stepTimeout)
	defer cancel()
	// Subscribe before navigating, so that no event of the forged POST
	// is missed; each subscription queues its events until read.
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	sentHeaders := chromedp.Events(ctx, network.RequestWillBeSentExtraInfo)
	responses := chromedp.Events(ctx, network.ResponseReceived)
	finished := chromedp.Events(ctx, network.LoadingFinished)
	// Only Page.navigate, not chromedp.Navigate: the page submits its
	// form while it loads, and waiting for its load event would race with
	// the navigation the form starts.
	if _, err := chromedp.Call(ctx, page.Navigate, page.NavigateParams{URL: attacker.URL}); err != nil {
		t.Fatalf("open the attacker's page: %v", err)
	}

	var req network.EventRequestWillBeSent
	for ev, err := range requests {
		if err != nil {
			t.Fatalf("waiting for the forged request to %s: %v", target, err)
		}
		if ev.Request.URL == target {
			req = ev
			break
		}
	}
	if req.Request.Method != http.MethodPost {
		t.Fatalf("the forged request is a %s, want a POST", req.Request.Method)
	}
	var resp network.EventResponseReceived
	for ev, err := range responses {
		if err != nil {
			t.Fatalf("waiting for the demo's answer to the forged POST: %v", err)
		}
		if ev.RequestID == req.RequestID {
			resp = ev
			break
		}
	}
	if resp.Response.Status != http.StatusForbidden {
		// A POST let through redirects; the browser follows, and this is
		// the last answer of the chain.
		t.Errorf("the forged POST ended in %d from %s, want 403 from the demo", resp.Response.Status, resp.Response.URL)
	}
	for ev, err := range finished {
		if err != nil {
			t.Fatalf("waiting for the body of the answer: %v", err)
		}
		if ev.RequestID == req.RequestID {
			break
		}
	}
	body, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: req.RequestID})
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	// The text of http.CrossOriginProtection's refusal: the 403 came
	// from it, and not from the handler behind it.
	if !strings.Contains(string(body.Body), "cross-origin request detected") {
		t.Errorf("the answer's body is %q, not http.CrossOriginProtection's", body.Body)
	}

	// What the browser sent: the Sec-Fetch-Site that the protection reads,
	// and whether the session cookie went along.
	var info network.EventRequestWillBeSentExtraInfo
	for ev, err := range sentHeaders {
		if err != nil {
			t.Fatalf("waiting for the forged request's headers: %v", err)
		}
		if ev.RequestID == req.RequestID {
			info = ev
			break
		}
	}
	wantSite := map[bool]string{true: "same-site", false: "cross-site"}[sameSite]
	if got := header(info.Headers, "Sec-Fetch-Site"); got != wantSite {
		t.Errorf("Sec-Fetch-Site: %q, want %q", got, wantSite)
	}
	cookieSent := slices.ContainsFunc(info.AssociatedCookies, func(c *network.AssociatedCookie) bool {
		return c.Cookie != nil && c.Cookie.Name == cookieName && len(c.BlockedReasons) == 0
	})
	switch {
	case sameSite && !cookieSent:
		t.Error("the browser kept the cookie off a same-site POST: this case no longer tests CrossOriginProtection alone")
	case !sameSite && cookieSent:
		t.Error("the browser sent the SameSite=Lax cookie with a cross-site POST")
	}
	t.Logf("forged POST from %s: %d, Sec-Fetch-Site %q, session cookie sent: %v",
		attacker.URL, resp.Response.Status, header(info.Headers, "Sec-Fetch-Site"), cookieSent)

	// The session survived: still logged in, with the same cookie.
	if st := open(t, p, d.URL+"/account").Status; st != http.StatusOK {
		t.Errorf("after the forged POST the account page answers %d, want 200", st)
	}
	if after := sessionCookie(t, p, d); after == nil || after.Value != before.Value {
		t.Error("the forged POST changed or removed the session cookie")
	}
}

// header returns the value of the header name in h, whatever its case
// (HTTP/1.1 keeps the sender's case, HTTP/2 lowers it).
func header(h network.Headers, name string) string {
	for k, v := range h {
		if s, ok := v.(string); ok && strings.EqualFold(k, name) {
			return s
		}
	}
	return ""
}

// testPlantedCookie is session fixation: an attacker gets an anonymous
// session, plants its ID in the victim's browser, and waits for the victim
// to log in. The login must issue a new ID, and the attacker's copy of the
// old one must never open the account, nor bring the new ID back.
func testPlantedCookie(t *testing.T, browser context.Context, cert tls.Certificate) {
	d := serveDemo(t, cert)
	attacker, victim := newProfile(t, browser), newProfile(t, browser)
	attackerSets := recordSetCookies(t, attacker)

	// The attacker's own anonymous session: a press of the counter (a
	// POST) creates it.
	do(t, attacker, "open the home page", chromedp.Navigate(d.URL+"/"), chromedp.WaitVisible(chromedp.ID("count-form")))
	submit(t, attacker, "press the counter", chromedp.Click(chromedp.CSS(`#count-form button`)))
	planted := sessionCookie(t, attacker, d)
	if planted == nil {
		t.Fatalf("pressing the counter left no %s cookie", cookieName)
	}

	// Planted in the victim's jar, as a script on a sibling subdomain, a
	// network attacker on plain http or a shared computer could.
	ctx, cancel := context.WithTimeout(victim, stepTimeout)
	_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
		Name: cookieName, Value: planted.Value, URL: d.URL + "/", Path: "/",
		Secure: new(true), HTTPOnly: new(true), SameSite: network.CookieSameSiteLax,
	})
	cancel()
	if err != nil {
		t.Fatalf("planting the cookie: %v", err)
	}
	if got := sessionCookie(t, victim, d); got == nil || got.Value != planted.Value {
		t.Fatal("the planted cookie is not in the victim's jar")
	}
	// The plant took: before logging in, the victim's browser shows the
	// attacker's session (its one press), so the checks below are not
	// vacuous.
	do(t, victim, "open the home page", chromedp.Navigate(d.URL+"/"), chromedp.WaitVisible(chromedp.ID("presses")))
	if presses := get(t, victim, "read the press count", chromedp.Text(chromedp.ID("presses"))); !strings.Contains(presses, "button 1 time") {
		t.Fatalf("the victim does not see the planted session: %q", presses)
	}

	login(t, victim, d, false)
	fresh := sessionCookie(t, victim, d)
	if fresh == nil {
		t.Fatalf("after logging in the victim holds no %s cookie", cookieName)
	}
	if fresh.Value == planted.Value {
		t.Fatal("logging in kept the planted session ID")
	}

	// The attacker, still holding the planted ID, is not logged in.
	if c := sessionCookie(t, attacker, d); c == nil || c.Value != planted.Value {
		t.Log("the attacker's jar no longer holds the planted ID") // nothing wrong, but say so
	}
	if st := open(t, attacker, d.URL+"/account").Status; st != http.StatusUnauthorized {
		t.Errorf("with the planted ID the account page answers %d, want 401", st)
	}
	do(t, attacker, "open the home page", chromedp.Navigate(d.URL+"/"), chromedp.WaitVisible(chromedp.ID("presses")))
	if loggedIn := get(t, attacker, "look for the user's name", chromedp.Evaluate[bool](`document.getElementById("user") !== null`)); loggedIn {
		t.Error("with the planted ID the home page shows a logged-in user")
	}
	// And nothing the attacker received carries the victim's new ID.
	if lines := attackerSets.with(fresh.Value); len(lines) > 0 {
		t.Errorf("the attacker was sent the victim's new session ID: %q", lines)
	}
	if c := sessionCookie(t, attacker, d); c != nil && c.Value == fresh.Value {
		t.Error("the attacker's jar holds the victim's new session ID")
	}
}
