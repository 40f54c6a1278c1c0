// Package crashcheck is the crash-recovery check that the engine's
// TestCrashRecovery and sessbench crash both run. It owns the child process
// that is killed (RunChild), the line protocol between that child and the
// parent that kills it (Cycle), the choice of each cycle's plan (Schedule),
// the model of what the child acknowledged (Model), and the verification
// of a recovered directory against that model (Model.Verify). It never
// parses flags, prints a report or calls the test framework: its callers
// start the child process, choose how many cycles to run, and decide what
// a Verdict means to them.
//
// # The child
//
// The child runs Config.Writers writer goroutines on one engine, with
// Options.MaxSessionsPerUser and RotateGrace as its Config says, and a
// goroutine that forces a snapshot at once and then after every random
// pause between Config.SnapshotMin and SnapshotMax, on small log segments,
// so that kills land while snapshots are written, published and the log
// compacted behind them. Each writer owns some users (user "u<k>" belongs
// to writer k % Writers) and the sessions of those users, plus the
// anonymous sessions it created (at the start of a cycle, anonymous
// session n belongs to writer n % Writers). Only the owner makes the
// structural calls on its sessions: Create (for one of its users, or
// anonymous), Rotate, RotateWith{UserID} (a login of an anonymous session,
// or a user's session authenticating afresh), Delete, RevokeUser,
// RevokeOthers and RevokeSession, one call at a time. So for every session
// and user the parent knows the order of the calls, and the only
// concurrency is between different owners' calls, snapshots, and updates:
// any writer updates the "hot" sessions (the live ones with the lowest
// numbers) with the version it just read, so that ErrVersionConflict is a
// common outcome, and its own sessions with or without a version.
//
// # Protocol
//
// The parent starts the child with, on its stdin, the sessions it knows to
// be live, one "s <n> <id> <user>" line each ("-" for an ID nobody learnt
// or no user), then "next <n>", the next free logical number
// (Model.Stdin), and the Config in the way the caller's Launcher passes
// it. The child writes on its stdout, one line each, flushed at once:
//
//	O                      about to open the engine (recovery)
//	R                      the engine is open; the writers start
//	S                      a snapshot call begins
//	N                      that snapshot call returned successfully
//	P                      the power is about to be cut (Config.PowerCut)
//	B <w> <op> <target> …  writer w is about to make a call
//	A <w> <op> <target> …  the call returned successfully
//	F <w> U <n> <reason>   an update failed as it may (conflict, gone, rotated)
//
// with, by operation (target is the logical session n, or the user for K):
//
//	C  B: n user data                     A: n id authAt evicted
//	U  B: n data base                     A: n version
//	R  B: n                               A: n id version data
//	L  B: n user                          A: n id version data authAt evicted
//	D  B: n                               A: n
//	K  B: user                            A: user count      (RevokeUser)
//	O  B: n user                          A: n count         (RevokeOthers keeping n)
//	X  B: n user                          A: n               (RevokeSession)
//
// where evicted is the comma-separated list of the user's sessions the cap
// evicted ("-" for none; the writer reads it from UserSessions right after
// the call, which only it can change), authAt is in Unix nanoseconds (0
// for none) and base is the version an update was given (0: none). Lines
// that are not the protocol are ignored, so a test binary's own output may
// be mixed in.
//
// The parent ends a cycle with SIGKILL after a random number of
// acknowledgements, or a random time after O (inside Open, while recovery
// may still be writing), or, with Config.PowerCut, with SIGUSR1 instead: the
// child then reports P, calls waltest.FS.PowerCut on the file system under
// its engine (which has NeedDirSync: what was not fsynced, file data or
// directory entries, is rolled back) and kills itself with SIGKILL. Lines
// read after the signal count like the others: an acknowledgement written
// before the child died is real.
//
// # Verification
//
// Every state of every session has distinct data ("s<n>-<random hex>"), so
// data alone names the logical session and the state, and a version
// orders a session's states. Model.Verify recovers the directory and
// checks, per writer, that its sessions are as after some prefix of its
// calls that holds every call that had to survive (under SyncAlways, or
// after a kill alone: every acknowledged call; after a power cut under
// SyncEverySecond: those acknowledged more than Plan.LossWindow before it,
// and those fsynced since by a removal or a completed snapshot), each call
// whole or not at all; that every session holds an acknowledged state or a
// newer one that somebody began to write, and never the data of a failed
// update; that old IDs are dead and current ones find their sessions; and
// that recovery from the older snapshot and the log gives the same
// sessions. See Verify for the list.
//
// Session IDs cross the pipe because the parent must look the sessions up;
// nothing in this package puts one anywhere else: problems and traces name
// sessions by logical number.
package crashcheck
