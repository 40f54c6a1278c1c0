package crashcheck

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Model is what the parent knows of the directory: every live session by
// logical number, as the last verification recovered it, with its ID if
// some acknowledgement reported it (a session rotated or created by a call
// whose acknowledgement the kill cut off is an orphan: known by its handle
// and data only), and the next free logical number. The zero Model is an
// empty directory. A Model is not safe for concurrent use.
type Model struct {
	live map[int]*entry
	next int
}

// entry is one live session as the parent knows it.
type entry struct {
	id      string // "" for an orphan
	ident   string // its handle, in text: how recovery names it
	user    string // "" for an anonymous session
	data    string
	version uint64
	authAt  int64 // Unix ns; 0 for an anonymous session
}

// Live returns the number of live sessions.
func (m *Model) Live() int { return len(m.live) }

// Orphans returns the number of live sessions whose ID nobody learnt.
func (m *Model) Orphans() int {
	n := 0
	for _, e := range m.live {
		if e.id == "" {
			n++
		}
	}
	return n
}

// Stdin returns the child's stdin for the next cycle: one "s <n> <id>
// <user>" line per live session in logical order ("-" for an unknown ID
// or no user), then "next <n>".
func (m *Model) Stdin() io.Reader {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(m.live)) {
		e := m.live[n]
		fmt.Fprintf(&b, "s %d %s %s\n", n, undash(e.id), undash(e.user))
	}
	fmt.Fprintf(&b, "next %d\n", m.next)
	return strings.NewReader(b.String())
}
