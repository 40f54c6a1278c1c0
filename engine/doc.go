// Package engine is sesscache's public API: an in-process session store with
// idle and absolute expiry, per-user revocation, ID rotation, and optional
// durability through a write-ahead log and snapshots.
//
// Open returns an Engine; a zero Options gives a safe, fast in-memory store
// (30 minute idle timeout, 24 hour absolute lifetime). Options.Dir makes it
// persistent: every write is logged before it is acknowledged as the sync
// policy says (SyncEverySecond by default, as Redis's appendfsync), and Open
// recovers the newest snapshot plus the log after it.
//
// Get is the hot path: it parses the ID, hashes it once, finds the session in
// its shard without taking a lock, checks the deadline against a coarse clock
// and, when that clock has moved, records the access with one atomic store.
// It does not allocate.
//
// Session data is immutable: every write stores a new slice, so the slice a
// reader got stays valid and unchanged. Callers must not modify it; use
// Session.DataCopy to own the bytes.
//
// Files never hold a usable token: on disk a session is named by a digest
// of its ID. Optionally, tokens are signed (Options.SigningKeys) and session
// data is encrypted at rest (Options.EncryptionKeys).
//
// The engine owns its goroutines (the janitor, which also drives the coarse
// clock; the snapshotter; the log's flusher) and stops them in Close. After
// Close every method returns ErrClosed.
//
// No method logs a session ID or puts one in an error.
package engine
