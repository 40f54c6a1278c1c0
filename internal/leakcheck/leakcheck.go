// Package leakcheck finds goroutines that outlive the tests that started
// them. Every package of the module with goroutines of its own checks with
// it, from TestMain and, where tests need it, after each test.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Grace is how long Stacks keeps looking before it reports: a goroutine
// that has signalled its exit to Close may still be unwinding when Close
// returns, and HTTP connections close asynchronously after their server.
const Grace = 5 * time.Second

// Stacks returns the stacks of the live goroutines for which match is true,
// other than the caller's own. It looks again, yielding in between, until
// none is left or Grace has passed, so it returns nil unless some goroutine
// stays.
func Stacks(match func(stack string) bool) []string {
	deadline := time.Now().Add(Grace)
	for {
		found := matching(match)
		if len(found) == 0 || time.Now().After(deadline) {
			return found
		}
		runtime.Gosched()
	}
}

func matching(match func(string) bool) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	// The first stack is the caller's own goroutine.
	stacks := strings.Split(string(buf), "\n\n")[1:]
	var found []string
	for _, g := range stacks {
		if match(g) {
			found = append(found, g)
		}
	}
	return found
}

// Main runs the tests and benchmarks of m (a *testing.M, or a wrapper that
// also cleans up after them) and exits; if they passed, it fails the run
// when a goroutine for which match is true outlives them.
func Main(m interface{ Run() int }, match func(stack string) bool) {
	code := m.Run()
	if code == 0 {
		if leaked := Stacks(match); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "%d goroutines outlived the tests:\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// Verify fails t if, once t's cleanups have run, a goroutine for which
// match is true is still alive. Call it at the start of the test.
func Verify(t testing.TB, match func(stack string) bool) {
	t.Helper()
	t.Cleanup(func() {
		if leaked := Stacks(match); len(leaked) > 0 {
			t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	})
}

// Module reports whether a stack runs code of this module outside the test
// framework: the match for packages whose goroutines are the engine's.
func Module(stack string) bool {
	return strings.Contains(stack, "sesscache/sesscache/") && !strings.Contains(stack, "testing.")
}
