// Package httpsession is net/http middleware that keeps sessions in a
// sesscache engine: it reads the session cookie, puts the session in the
// request's context, and on the way out commits what the handler changed
// and sets the cookie. It owns the cookie and the typed values; the engine
// owns storage, expiry and IDs. It starts no goroutines and never logs or
// returns a session ID.
//
// # Use
//
//	m := httpsession.New(store, httpsession.Options{})
//	http.ListenAndServe(addr, m.Handler(mux))
//
//	// in a handler:
//	httpsession.Put(r.Context(), "theme", "dark")
//	theme := httpsession.GetString(r.Context(), "theme")
//	err := httpsession.Login(r.Context(), user.ID) // after checking a password
//
// # When changes are saved
//
// A request that only reads creates nothing and sends no cookie. The first
// value a request writes, in a request with no session, creates an
// anonymous one. Changes are committed when the response is first written
// (WriteHeader, Write, Flush, ReadFrom or Hijack), because that is the
// last moment a Set-Cookie header can go out with it; if the handler writes
// nothing, when it returns. Changes made after the response began are
// committed when the handler returns, if they need no new cookie. A failed
// commit goes to Options.ErrorFunc, or to the handler itself if it calls
// Commit first.
//
// # Concurrent requests
//
// Each request records its changes as a per-key delta (Put and Remove) and
// commits it with engine.Update, which re-runs the merge on the newest data
// whenever another request wrote first. So two requests on one session that
// change different keys both keep their changes; when they change the same
// key, the last to commit wins. What a request reads is the session as it
// was when the request began, plus its own changes.
//
// # Security
//
// The cookie is HttpOnly, Secure, SameSite=Lax, host-only (no Domain) and
// Path=/, with a generic name. Session IDs are never adopted from clients:
// an ID this store did not issue, or whose session has ended, is ignored,
// and the client gets a fresh ID if the request stores anything (strict
// mode, per OWASP's session management cheat sheet). RenewToken, Login and
// SetRoles issue a new ID on every change of privilege; Destroy and
// LogoutEverywhere end sessions on the server, not just in the browser.
// Options.FingerprintFunc binds sessions to a client trait. SameSite=Lax
// keeps the cookie off cross-site POSTs; pair it with
// http.CrossOriginProtection for defence in depth against CSRF.
//
// # Roles
//
// RequireRole admits an authenticated session whose list of role names
// under RolesKey holds the role. SetRoles replaces the list and renews the
// token in one call, since a change of privilege calls for a new ID.
//
// # Stored format
//
// Session data is a msgpack map from string keys to msgpack-encoded values,
// keys sorted. Other code may read it with any msgpack decoder; data that is
// not such a map reads as an empty session and fails to commit.
package httpsession
