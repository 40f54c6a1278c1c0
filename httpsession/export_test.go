package httpsession

import (
	"net/http"
	"time"
)

// PerClientLimitAt is PerClientLimit with a clock and a table size of the
// test's choosing.
func PerClientLimitAt(key func(*http.Request) string, n int, per time.Duration, now func() time.Time, slots int) func(*http.Request) error {
	return newLimiter(key, n, per, now, slots).allow
}
