package crashcheck

import (
	"log/slog"
	"testing"
)

// testLogger passes the engine's warnings to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
