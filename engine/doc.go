// Package engine is sesscache's public API: an in-process session store with
// idle and absolute expiry, per-user revocation and ID rotation.
//
// Open returns an Engine; a zero Options gives a safe, fast in-memory store
// (30 minute idle timeout, 24 hour absolute lifetime). Get is the hot path:
// it parses the ID, hashes it once, finds the session in its shard without
// taking a lock, checks the deadline against a coarse clock and, when that
// clock has moved, records the access with one atomic store. It does not
// allocate.
//
// Session data is immutable: every write stores a new slice, so the slice a
// reader got stays valid and unchanged. Callers must not modify it; use
// Session.DataCopy to own the bytes.
//
// The engine owns its goroutines (the janitor, which also drives the coarse
// clock) and stops them in Close. After Close every method returns ErrClosed.
//
// No method logs a session ID or puts one in an error.
package engine
