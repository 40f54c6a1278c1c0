package httpsession

import (
	"hash/maphash"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"
)

// limitSlots is the size of PerClientLimit's table: 128 KiB of memory
// whatever the number of clients.
const limitSlots = 1 << 14

// PerClientLimit returns a func for Options.CreateLimit that lets each
// client create at most n anonymous sessions per period per, all at once
// or spread out (a token bucket of n tokens refilled at n per per), and
// refuses more with ErrRateLimited. key names the client; nil means the
// connection's remote address (for IPv6, its /64 prefix, which one client
// usually holds whole). Behind a reverse proxy, pass a key that reads the
// client address the proxy reports, and only from a proxy you trust.
//
// Memory is bounded: clients share a fixed table of 16,384 buckets by a
// hash of their key (seeded randomly per limiter, so a client cannot aim
// at another's bucket), so a collision only makes limiting stricter for
// the clients involved. It is safe for concurrent use and takes no lock.
// It panics if n < 1 or per <= 0.
func PerClientLimit(key func(*http.Request) string, n int, per time.Duration) func(*http.Request) error {
	return newLimiter(key, n, per, time.Now, limitSlots).allow
}

// limiter is a table of GCRA cells: each holds the time at which its
// bucket will next be full (the "theoretical arrival time"), which is one
// word to compare-and-swap instead of a count and a time under a lock.
type limiter struct {
	key      func(*http.Request) string
	now      func() time.Time
	interval int64 // nanoseconds one token takes to come back
	burst    int64 // how far ahead of now a cell may run: n-1 intervals
	seed     maphash.Seed
	cells    []atomic.Int64
}

func newLimiter(key func(*http.Request) string, n int, per time.Duration, now func() time.Time, slots int) *limiter {
	if n < 1 || per <= 0 {
		panic("httpsession: PerClientLimit needs n >= 1 and per > 0")
	}
	if key == nil {
		key = remoteAddrKey
	}
	interval := max(int64(per)/int64(n), 1)
	return &limiter{
		key:      key,
		now:      now,
		interval: interval,
		burst:    interval * int64(n-1),
		seed:     maphash.MakeSeed(),
		cells:    make([]atomic.Int64, slots),
	}
}

func (l *limiter) allow(r *http.Request) error {
	cell := &l.cells[maphash.String(l.seed, l.key(r))%uint64(len(l.cells))]
	now := l.now().UnixNano()
	for {
		tat := cell.Load()
		next := max(tat, now)
		if next-now > l.burst {
			return ErrRateLimited
		}
		if cell.CompareAndSwap(tat, next+l.interval) {
			return nil
		}
	}
}

// remoteAddrKey names a client by its address, an IPv6 one by its /64.
func remoteAddrKey(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := ap.Addr().Unmap()
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}
