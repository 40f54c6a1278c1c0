package engine

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestMain fails the run if any goroutine started by this module is still
// alive after every test has closed its engines.
func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureEng != nil {
		_ = fixtureEng.Close() // the benchmarks' shared engine
	}
	if code == 0 {
		if leaked := moduleGoroutines(); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines outlived their engines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// moduleGoroutines returns the stacks of goroutines running code of this
// module other than tests. A goroutine that signalled its exit to Close may
// still be unwinding when Close returns, so it yields and looks again a
// bounded number of times before reporting.
func moduleGoroutines() string {
	var found string
	for range 10000 {
		found = ""
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "sesscache/sesscache/") && !strings.Contains(g, "testing.") &&
				!strings.Contains(g, "moduleGoroutines") {
				found += g + "\n\n"
			}
		}
		if found == "" {
			return ""
		}
		runtime.Gosched()
	}
	return found
}

func runtimeStack(buf []byte) int { return runtime.Stack(buf, true) }
