// Package browsertest drives the login demo (package
// github.com/sesscache/sesscache/examples/login/site) in a real, headless
// Chromium through the DevTools protocol (github.com/chromedp/chromedp), to
// check what only a browser can show: which cookie attributes it actually
// stores, that scripts cannot read the session cookie, that "log out on
// every device" reaches another browser profile, that a cross-site form
// POST is refused, and that a cookie planted before login never becomes a
// logged-in session.
//
// It is a module of its own so that the main module does not depend on
// chromedp. It has no code outside its tests; see README.md for how to run
// them.
package browsertest
