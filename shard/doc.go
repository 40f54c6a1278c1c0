// Package shard is one lock stripe of the session store: an open-addressing
// table from key to record, and a min-heap of deadlines.
//
// It does no I/O and starts no goroutines; the engine decides which shard a
// key belongs to, when to reap, and what to log.
//
// # Concurrency
//
// Readers never lock. Lookup loads the table and the record with atomic
// loads and checks the key stored in the immutable record it finds, so a
// reader racing with a writer sees either the old or the new record, never a
// mix. The only store a reader makes is the sliding-expiry touch
// (Rec.Touch), and only when the caller's coarse clock has moved.
//
// Writers hold the shard's mutex (Lock/Unlock) around every method documented
// as "caller holds the lock". They publish a new table or record with an
// atomic store after it is complete, and never change a table once a newer
// one is published.
//
// # Records
//
// A Rec is one allocation holding a session's immutable fields, its owner,
// its label and its data. A write builds a new Rec and swaps the pointer, so
// data handed to a reader is never changed underneath it, and the allocation
// holds no Go pointers, so the garbage collector does not scan it.
package shard
