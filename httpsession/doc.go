// Package httpsession is net/http middleware that keeps sessions in a Store,
// such as a sesscache engine: it reads the session cookie, puts the session
// in the request's context, and on the way out commits what the handler
// changed and sets the cookie. It owns the cookie and the typed values; the
// store owns storage, expiry and IDs. It starts no goroutines and never
// logs a session ID or puts one in an error.
//
// # Use
//
//	sessions := httpsession.New(store, httpsession.Options{})
//	http.ListenAndServe(addr, sessions.Handler(mux))
//
//	// in a handler:
//	sessions.Put(r.Context(), "theme", "dark")
//	theme := sessions.GetString(r.Context(), "theme")
//	err := sessions.Login(r.Context(), user.ID) // after checking a password
//
// Every function that reads or changes a session is a method of the
// Manager, which finds the request's session under a context key of its
// own: two Managers (two cookies, two stores) can wrap the same handler
// without hiding each other. Outside HTTP, Load puts a session named by a
// token into a context and Commit saves it and returns the token to hand
// back, as in scs.
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
// commits it with the store's Update, which re-runs the merge on the newest
// data whenever another request wrote first. So two requests on one
// session that change different keys both keep their changes; when they
// change the same key, the last to commit wins. What a request reads is
// the session as it was when the request began, plus its own changes.
//
// # Guarantees
//
// These hold with any Store that keeps the contracts Store documents, and
// with the default Options unless one is named:
//
//   - Session IDs are never adopted from clients. A cookie naming no live
//     session the store issued (unknown, expired, forged, ended, bound to
//     another fingerprint) is ignored, and a request that stores anything
//     gets a fresh ID (strict mode, per OWASP's session management cheat
//     sheet). At most three cookies of the session's name are looked up per
//     request, so a client cannot make the server verify thousands.
//   - Login, RenewToken and SetRoles move the session to a new ID and end
//     the old one at once, whatever the store's rotation grace period
//     (engine.Options.RotateGrace): an ID planted before a login (session
//     fixation) or seen before a change of privilege is worthless after it.
//   - A request bearing an ID that a plain rotation replaced, which the
//     engine honours read-only during its grace period, is treated as
//     anonymous and read-only: UserID is "", RequireAuth and RequireRole
//     answer 401, Sessions and EndOtherSessions refuse, its writes, logins
//     and renewals fail with ErrStaleCookie, and its Destroy and
//     LogoutEverywhere end only that ID's access, never the session it was
//     rotated to. It never learns the new ID: no response carries it and
//     nothing in its context holds it.
//   - Destroy, LogoutEverywhere, EndSession and EndOtherSessions end
//     sessions in the store, not just in the browser. EndSession and
//     EndOtherSessions reach only the current user's sessions; listings
//     (Sessions, Iterate) never hold tokens.
//   - The cookie is HttpOnly and Secure, SameSite=Lax, host-only, Path=/,
//     and named "__Host-id", so that browsers refuse one set by a sibling
//     or parent domain or over plain HTTP (cookie tossing). It is a session
//     cookie: persistence is the application's choice (Options.Persistent,
//     RememberMe). SameSite, Path, Domain (which makes the name
//     "__Secure-id") and Partitioned are options; Secure can only be turned
//     off with InsecureCookie, which New logs a warning for; HttpOnly is
//     always on. A response that sets the cookie also gets "Vary: Cookie"
//     and `Cache-Control: no-cache="Set-Cookie"`, so shared caches neither
//     store nor replay it.
//   - GetAs returns a value exactly as it was put, or an error: never a
//     value converted with loss.
//   - No state changes on a request that writes nothing; Options.CreateLimit
//     (see PerClientLimit) bounds how fast one client can create anonymous
//     sessions, and the engine's MaxSessions evicts anonymous sessions
//     before refusing a login.
//
// SameSite=Lax keeps the cookie off cross-site POSTs; pair it with
// http.CrossOriginProtection for defence in depth against CSRF.
// Options.FingerprintFunc binds sessions to a client trait.
//
// # Values before login
//
// Login keeps the values of an anonymous session (a shopping cart), as scs
// does, except RolesKey. They were chosen by whoever held that session,
// and an attacker may have planted it: never trust a value put before the
// login as a role, a redirect target or a confirmed choice, or set
// Options.ClearValuesAtLogin to start every login empty. MergeSession
// carries the same risk and follows the same rule.
//
// # Roles and step-up
//
// RequireRole admits an authenticated session whose list of role names
// under RolesKey holds the role. SetRoles replaces the list and renews the
// token in one call, since a change of privilege calls for a new ID.
// RequireRecentAuth admits a session that logged in recently (ASVS 3.7.1);
// logging in again as the same user refreshes the time.
//
// # Devices
//
// Login labels the session from the request (Options.LabelFunc, by default
// DeviceLabel's "Firefox on Linux"). Sessions lists the user's sessions
// with their labels, times and handles, Handle names the current one, and
// EndSession and EndOtherSessions end one or all the others (ASVS 3.3.3,
// 3.3.4).
//
// # Stored format
//
// Session data is a msgpack map from string keys to msgpack-encoded values,
// keys sorted; other code may read it with any msgpack decoder. Values are
// encoded by github.com/vmihailenco/msgpack/v5 with its defaults: integers
// in the smallest form that holds them (the Go type is not kept), floats
// as float32 or float64, strings as str and []byte as bin, time.Time as
// the msgpack timestamp extension (the zone is not kept), structs as maps
// by field name or `msgpack` tag, and types that encode themselves
// (msgpack.CustomEncoder, msgpack.Marshaler, encoding.BinaryMarshaler,
// encoding.TextMarshaler) as they say. Get reads them back into a fixed set
// of Go types, documented there; GetAs into the caller's type, exactly or
// with ErrValueType. Keys starting with a NUL byte are reserved to this
// package (RememberMe's choice). Data that is not such a map reads as an
// empty session and fails to commit.
package httpsession
