package fuzz

import (
	"testing"

	"github.com/sesscache/sesscache/internal/leakcheck"
)

// TestMain fails the run if a goroutine of this module outlives the tests:
// every log and engine a target opens must be closed.
func TestMain(m *testing.M) { leakcheck.Main(m, leakcheck.Module) }
