package engine

import (
	_ "unsafe" // for go:linkname
)

// procPin and procUnpin pin the calling goroutine to its processor (P) and
// return the P's index, without an atomic operation: what sync.Pool does
// internally to find its per-P cache. The runtime keeps these two reachable
// by go:linkname on purpose for packages outside the standard library (see
// the comment on procPin in runtime/proc.go and go.dev/issue/67401).
//
// The engine uses them for one thing: counting Get hits on a cache line of
// the caller's own processor. A shared or randomly striped counter cost a
// fifth of a Get's time on two cores; this costs no measurable time.

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()
