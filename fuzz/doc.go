// Package fuzz holds sesscache's native Go fuzz targets and their committed
// seed corpora (testdata/fuzz/<Target>/). It has no code of its own: every
// target is in a _test.go file, so the package builds to nothing.
//
//	FuzzWALReplay       arbitrary bytes as one log segment, and cut at each
//	                    segment magic into several, replayed by wal.Open on an
//	                    in-memory file system
//	FuzzSnapshotLoad    arbitrary bytes as a snapshot file, loaded by
//	                    snapshot.Load on an in-memory file system
//	FuzzTokenParse      token.Parse accepts exactly the canonical encodings
//	FuzzTokenVerify     token.Signer.Verify accepts exactly the tokens a key
//	                    of its ring issued
//	FuzzEngine          the input is a program of operations run on a real
//	                    persistent engine and on a reference model; after
//	                    every step the calls' results, the events, All,
//	                    and Stats (counts, caps, LSN) must agree with it
//
// The replay and load targets also bound the heap each call allocates (see
// allocBound): a length field of 4 GiB must not make a reader allocate
// 4 GiB. The seeds are made by the real writers; TestSeedsAreCurrent checks
// them and rewrites them with -seeds (go test ./fuzz -run TestSeedsAreCurrent
// -seeds), which is needed after a change to the log or snapshot format or
// to FuzzEngine's program format. A crasher a target finds is kept in
// its corpus as a regression input, next to a unit test in the package that
// was fixed. How to run a target for longer is in the README; the figures of
// the last long runs are in RESULTS.md.
package fuzz
