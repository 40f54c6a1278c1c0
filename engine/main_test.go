package engine

import (
	"testing"

	"github.com/sesscache/sesscache/internal/leakcheck"
)

// TestMain fails the run if any goroutine started by this module is still
// alive after every test has closed its engines.
func TestMain(m *testing.M) {
	leakcheck.Main(closeFixture{m}, leakcheck.Module)
}

// closeFixture runs the tests, then closes the benchmarks' shared engine.
type closeFixture struct{ m *testing.M }

func (c closeFixture) Run() int {
	code := c.m.Run()
	if fixtureEng != nil {
		_ = fixtureEng.Close()
	}
	return code
}
