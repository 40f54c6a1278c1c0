// Package crashcheck is the kill -9 crash-recovery check that the engine's
// TestCrashRecovery and sessbench crash both run. It owns the writer that is
// killed (Writer), the line protocol between that writer and the process
// that kills it (Cycle), the model of what the writer acknowledged (Model),
// and the verification of a recovered directory against that model
// (Model.Verify). It never parses flags, prints a report or calls the test
// framework: its callers start the writer process, choose how many cycles
// to run and where each kill lands, and decide what a Verdict means to
// them.
//
// # Protocol
//
// The parent starts the writer with, on its stdin, the sessions it knows to
// be live, one "<n> <id> <data>" line each, then "next <n>", the next free
// logical number (Model.Stdin). The writer then writes on its stdout, one
// line each, without end:
//
//	B <op> <n> [data]    about to call the engine for logical session n
//	A <op> <n> [id]      the call returned successfully
//
// with op C(reate), U(pdate), R(otate) or D(elete); the B lines of C and U
// carry the data written, the A lines of C and R the new ID. Other lines are
// ignored, so a test binary's own output may be mixed in. Ops are
// sequential, so at most one is in flight when the parent's SIGKILL lands.
// Meanwhile another goroutine of the writer may take snapshots back to
// back, so that on small log segments kills also land while a snapshot is
// written or renamed, or old segments removed.
//
// Every state of every session has distinct data ("s<n>-<random hex>"), so
// data alone identifies a state, and recovery can be checked for states
// nobody wrote. Session IDs cross the pipe because the parent must look the
// sessions up; nothing in this package puts one anywhere else: problems
// name sessions by logical number.
package crashcheck
