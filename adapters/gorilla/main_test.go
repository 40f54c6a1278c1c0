package sessgorilla_test

import (
	"testing"

	"github.com/sesscache/sesscache/internal/leakcheck"
)

// TestMain fails the run if an engine a test opened outlives it.
func TestMain(m *testing.M) {
	leakcheck.Main(m, leakcheck.Module)
}
