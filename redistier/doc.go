// Package redistier is a session store shared by several processes
// through Redis (or Valkey): one source of truth for every instance of a
// service behind a load balancer, and, on each instance, copies of the
// sessions it has seen in an in-memory engine.Engine, so that most lookups
// cost what the engine's own Get costs and touch no network.
//
//	store, err := redistier.New(ctx, redistier.Options{Addrs: []string{"127.0.0.1:6379"}})
//	sessions := httpsession.New(store, httpsession.Options{}) // unchanged middleware
//
// A *Store has the engine's session operations (Find, Create, Update,
// Delete, RotateWith, SetDeadline, RevokeUser, RevokeOthers,
// RevokeSession, UserSessions) with the engine's semantics and errors, and
// implements httpsession.Store. It needs Redis 6 or later (RESP3 and
// client tracking), standalone or Cluster; the client is rueidis.
//
// # Guarantees
//
// These hold for every instance that shares a Redis, a key prefix and the
// options that give tokens and records their meaning (Options).
//
//   - One truth. Every write is one atomic step in Redis, a Lua script or
//     (LayoutString's anonymous Create and Delete) a single command:
//     Create, a compare-and-swap Update or SetDeadline, Delete, a
//     rotation (old ID ended or turned into a grace entry, new record
//     stored, owner index updated, MaxSessionsPerUser applied, in one
//     step), RevokeUser, RevokeOthers, RevokeSession. A version conflict is
//     decided by Redis, so it holds across instances.
//   - Reads. A lookup of a session this instance holds a current copy of
//     is served by the local engine: no network I/O, no allocation. Any
//     other lookup (no copy, a copy past its local deadline, a grace ID)
//     is one round trip to Redis (two for a grace ID), and its result is
//     kept as a copy if nothing may have changed it meanwhile.
//   - Revocation. When Delete, RevokeUser, RevokeOthers, RevokeSession or
//     a rotation returns, the calling instance refuses the old ID. Every
//     other instance refuses it once Redis's invalidation reaches it (the
//     bound tierbench measures, "inval" columns). If its connection stops
//     delivering invalidations it drops every copy and goes to Redis for
//     every lookup, failing with ErrUnavailable if Redis does not answer:
//     at once when the connection closes (BenchmarkInvalidationLoss
//     measures it), and for a connection that hangs open within
//     1.5 × Options.ConnTimeout (default 2 s), when the client's background
//     ping goes unanswered (BenchmarkHungRedis measures it:
//     3.00–3.01 s at the default). It never serves a copy it cannot vouch
//     for, unless Options.ServeStale says for how long it may.
//   - Sliding expiry. Local lookups record accesses as the engine does;
//     each instance writes them to Redis behind, at most once per session
//     per Local.TouchLogInterval (default 1 minute), in pipelined batches
//     (LayoutString also writes behind the access a lookup from Redis
//     records; LayoutHash writes it in the lookup's script).
//     These writes change only a session's access key, which is not
//     tracked, so they evict no copy anywhere. A session used on any
//     instance within its idle timeout stays alive on all of them; Redis
//     keeps an idle session up to a TouchLogInterval (plus the write-behind
//     delay) past its idle deadline, so that no instance's copy, whose
//     last access may be that much ahead of Redis's, outlives Redis's
//     record: a session expired in Redis is expired everywhere.
//   - Failures. If Redis cannot be reached, writes return an error
//     wrapping ErrUnavailable and the cause, and were applied whole or
//     not at all (one script or command each); reads fail closed. The store
//     reconnects by itself. In a Cluster failover (a master killed, its
//     replica promoted) the store keeps working once Redis does: the
//     connection to the dead master drops, every copy is dropped with it,
//     and the client follows the new slot map (a first command to the
//     dead node may fail with ErrUnavailable while it does).
//   - Durability is Redis's. Redis acknowledges a write once it is in
//     memory; with appendfsync everysec a crash of the server loses up to
//     about one second of acknowledged writes, and replication is
//     asynchronous, so a failover can lose acknowledged writes too (WAIT
//     narrows the window, it does not close it). A lost write can bring a
//     logged-out session back or lose a login; sesscache adds no loss of
//     its own: it acknowledges nothing Redis has not acknowledged, and
//     keeps no write only in memory (accesses written behind excepted: at
//     worst a session ends up to a TouchLogInterval early).
//   - Privacy. Redis never sees a token: keys are named by the session's
//     handle (the first 16 bytes of the SHA-256 of its raw ID), owners by
//     an HMAC of the user ID under Options.OwnerKey. With
//     Local.EncryptionKeys, a record's whole state (owner, label, data,
//     times, fingerprint hash) is sealed with AES-256-GCM, its key name as
//     additional data, so a record edited or moved in Redis does not open.
//     No error, log line or key holds a session ID.
//
// # Data model
//
// For a session with handle h (32 hex digits) and owner hash u:
//
//	<prefix>s:{bb}h   the record (tracked)
//	<prefix>a:{bb}h   its last access (unix ms), a string (not tracked)
//	<prefix>u:{bb}u   the owner's index, a sorted set of handles
//
// Options.Layout chooses what the record is, and so what each operation
// costs Redis:
//
//   - LayoutHash (the default): the record is a hash (version, kind,
//     absolute expiry, idle timeout, owner hash, auth time, sealed blob);
//     every write sets the access key; the index scores handles by auth
//     time. Every operation, lookups included, is one script.
//   - LayoutString: the record is one string, a 112-byte header (the same
//     fields, fixed width) and the sealed blob, the header bound to the
//     blob by the seal; the record holds the last access as of its last
//     write, and the access key only a later one, written by touches; the
//     index scores handles by absolute expiry and lives as long as its
//     longest-lived member. An anonymous Create is one SET NX PX, a lookup
//     one MGET of record and access key, a Delete one DEL (it leaves the
//     owner's index, whose dead members the scripts that walk it drop);
//     a compare-and-swap is a script of one GETRANGE and one SET; owned
//     creations, rotations, revocations, listings and touches are scripts.
//     stringrec.go describes the record and the costs.
//
// Both give every guarantee above; instances sharing a prefix must use
// the same layout.
//
// {bb} is a hash tag, two hex digits: the first byte of h, or of u for an
// owner's index. The store mints an owned session's ID (at creation and at
// every rotation or login) until its handle's first byte equals its
// owner's, so all of an owner's keys share one Cluster slot. That is the
// choice this package makes for per-owner atomicity: RevokeUser,
// RevokeOthers, RevokeSession, UserSessions and the cap are each one
// script over one slot, with no cross-slot step and no revocation epoch
// that every read would have to fetch. Its costs: minting takes about 256
// tries (a few hundred microseconds, paid by owned creations and
// rotations only, next to a login's password hash), keys use 256 of the
// 16,384 slots (fine for Clusters of up to a few dozen masters), and a
// login that moves an anonymous session into its owner's slot is two
// scripts: the new record is stored first, unreachable since no one has
// its ID, then a compare-and-swap ends the old one and commits the move
// (on failure the new record is deleted; a crash between the two leaves
// the old session as it was and an orphan that expires unused).
//
// # Invalidations
//
// Every connection of the store turns client tracking on in BCAST mode
// over the prefix "<prefix>s:": Redis pushes the name of every record that
// changes (a write, a delete, an expiry, an eviction) to every instance,
// which drops its copy; a FLUSHALL pushes a null, which drops every copy.
// BCAST keeps no per-key state in Redis, so it costs nothing per read. The
// access keys are outside the prefix, so touches push nothing. NOLOOP is
// asked for, and spares an instance the invalidations of the commands it
// sent itself (LayoutString's plain SET and DEL), but Redis 7 credits a
// script's writes to the script rather than the connection, so an
// instance also receives its own scripts' invalidations and drops its own
// copy: the first lookup or compare-and-swap after a scripted write on
// the writing instance reads Redis first. In a Cluster, a replica to which
// the client is connected (it asks replicas for the slot map too) pushes
// the changes it replicates as well: duplicates, which cost at most a
// miss.
//
// The race between a read and an invalidation (B misses and sends a read,
// A changes the session, B handles the invalidation before it stores the
// read's reply, and would keep a stale copy forever) is closed with
// sequence numbers: the table of copies is striped by handle, every
// invalidation advances its stripe's sequence under the stripe's lock, and
// a read notes the sequence before it is sent and keeps its reply only if
// the sequence has not moved (else it returns the reply without keeping
// it). A flush advances an epoch that every read checks the same way.
// The instance's own writes advance the sequence too. Concurrent lookups
// of one ID share one round trip, but only one that began after the last
// change of its stripe, so a lookup that begins after a Delete returned
// never gets an answer read before it.
//
// A lost connection loses its invalidations: rueidis reports it, and the
// store drops every copy (with ServeStale: marks them unverified, serves
// them for at most that long, and drops them as soon as Redis answers).
// Every connection is tracked from its first command, so the copies kept
// after a reconnection are covered again. In a Cluster, tracking is per
// node; the store also compares the slot map every Options.TopologyInterval
// and drops every copy when it changed.
//
// # Limits
//
//   - Grace views (an old ID within RotateGrace) are not kept as copies:
//     each costs two round trips.
//   - Writes to a session bound to a fingerprint read it from Redis first
//     (the engine's lookups need the fingerprint, which writes do not get).
//   - Local.MaxSessions and MaxAnonymousSessions are not supported. Run
//     Redis with maxmemory-policy noeviction (writes then fail with
//     ErrUnavailable when memory is full): an eviction policy could drop
//     an owner's index, and RevokeUser would no longer find that owner's
//     sessions. (In LayoutHash, a record or access key evicted ends its
//     session everywhere; in LayoutString, an evicted access key makes
//     Redis judge the session by its last write, so Redis may end it while
//     other instances' copies live until their own deadlines.)
//   - A compare-and-swap needs a script on Redis 7 (SET has no IFEQ before
//     Redis 8.4 and Valkey 8.1), whose invalidation comes back to the
//     writer: an Update right after this instance's own Update of the
//     same session is two round trips (a read, then the script).
//   - Scripts reach an owner's session keys by names derived from its
//     index, all in the script's own slot: Redis and Valkey allow that;
//     proxies that require every key to be declared do not.
//   - Instances' clocks should agree (NTP): deadlines are judged by the
//     clock of the instance that asks.
package redistier
