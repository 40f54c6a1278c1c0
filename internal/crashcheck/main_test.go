package crashcheck

import (
	"testing"

	"github.com/sesscache/sesscache/internal/leakcheck"
)

// TestMain fails the run if a goroutine of the module (a child run in
// process, its engine) outlives the tests.
func TestMain(m *testing.M) { leakcheck.Main(m, leakcheck.Module) }
