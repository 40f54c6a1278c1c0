package leakcheck

import (
	"strings"
	"testing"
)

func parkedHere(stop chan struct{}) { <-stop }

func TestFindsAGoroutineUntilItEnds(t *testing.T) {
	isMine := func(g string) bool { return strings.Contains(g, "leakcheck.parkedHere") }
	stop := make(chan struct{})
	started := make(chan struct{})
	go func() {
		close(started)
		parkedHere(stop)
	}()
	<-started
	for len(matching(isMine)) == 0 { // matching looks once; wait until it is in parkedHere
	}
	if got := matching(isMine); len(got) != 1 {
		t.Fatalf("found %d goroutines, want 1", len(got))
	}
	close(stop)
	if got := Stacks(isMine); len(got) != 0 {
		t.Fatalf("found %d goroutines after they ended, want 0:\n%s", len(got), got)
	}
	if got := matching(func(string) bool { return true }); strings.Contains(strings.Join(got, ""), "TestFindsAGoroutineUntilItEnds(") {
		t.Fatal("the caller's own goroutine was reported")
	}
}
