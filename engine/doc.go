// Package engine is sesscache's public API: an in-process session store with
// idle and absolute expiry, per-user revocation, ID rotation, and optional
// durability through a write-ahead log and snapshots.
//
// Open returns an Engine; a zero Options gives a safe, fast in-memory store
// (30 minute idle timeout, 12 hour absolute lifetime). Options.Dir makes it
// persistent: every write is logged before it is acknowledged as the sync
// policy says (SyncEverySecond by default, as Redis's appendfsync), and Open
// recovers the newest snapshot plus the log after it.
//
// # Reads
//
// Get is the hot path: it parses the ID, hashes it once, finds the session in
// its shard without taking a lock, checks the deadline against a coarse clock
// and, when that clock has moved, records the access with one atomic store.
// It does not allocate. A session bound to a client fingerprint is found
// only through GetBound (or Find) with that fingerprint.
//
// Session data is immutable: every write stores a new slice, so the slice a
// reader got stays valid and unchanged. Callers must not modify it; use
// Session.DataCopy to own the bytes.
//
// # Writes
//
// Writes take a context and go through one commit path: a write that
// touches several sessions (a rotation, a login, a revocation, a creation
// that evicts under a cap) is one log record, applied all or nothing, also
// across a crash. A write becomes visible to readers only once the log holds
// it as the sync policy says, so a write that returns an error leaves no
// trace, and once a log write has failed every write returns ErrReadOnly.
// Deleting what is gone succeeds.
//
// # Security
//
// IDs carry 128 bits from crypto/rand; anything that is not exactly such a
// token (Options.SigningKeys: with a valid signature) is rejected before any
// lookup. Files never hold a usable token: on disk a session is named by a
// digest of its ID, which is also its Handle, the non-secret name that
// listings (UserSessions, All), events and revocations by handle use; no
// lookup by token accepts a digest. Options.EncryptionKeys seals every
// record on disk, owner and deadlines included. A rotation that changes
// privilege (RotateWith with a UserID, a login, or Privileged) ends the old
// ID at once; a plain Rotate may leave it readable for Options.RotateGrace,
// as an anonymous read-only view that never reveals the new ID. RevokeUser,
// RevokeOthers and RevokeSession end sessions whatever runs concurrently,
// and every removal is fsynced before it returns. Anonymous sessions never
// crowd out authenticated ones (Options.MaxSessions).
//
// # Goroutines
//
// The engine owns its goroutines (the janitor, which drives the coarse clock
// while the engine is in use and reaps expired sessions when some are due;
// the snapshotter; the log's flusher, syncer and segment preparer) and stops
// them in Close. After Close every method returns ErrClosed.
//
// No method logs a session ID or puts one in an error. docs/ARCHITECTURE.md
// in the repository describes the layers, the data flow of a read and of a
// write, and the formats.
package engine
