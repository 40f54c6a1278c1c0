package redistier

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
)

// connSet holds every connection the store's client has dialed and not
// yet closed, so that Close can close whatever the client leaves open.
// rueidis's Close is not enough on its own: it closes connections from
// goroutines of its own, and a command under way at that moment (a lookup
// racing Close, or a Cluster slot refresh after a lost connection) can
// still dial one, which nothing would ever close: a socket and its two
// goroutines, for the life of the process. Once closed, the set refuses
// new dials.
type connSet struct {
	mu     sync.Mutex
	closed bool
	m      map[*trackedConn]struct{}
}

// trackedConn is a connection of a connSet; closing it removes it.
type trackedConn struct {
	net.Conn
	set *connSet
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.set.mu.Lock()
	delete(c.set.m, c)
	c.set.mu.Unlock()
	return c.Conn.Close()
}

// dial is the client's DialCtxFn: it dials as rueidis would (TLS when
// tlsConf is set) and records the connection.
func (cs *connSet) dial(ctx context.Context, dst string, d *net.Dialer, tlsConf *tls.Config) (net.Conn, error) {
	var (
		c   net.Conn
		err error
	)
	if tlsConf != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: tlsConf}).DialContext(ctx, "tcp", dst)
	} else {
		c, err = d.DialContext(ctx, "tcp", dst)
	}
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: cs}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	if cs.m == nil {
		cs.m = make(map[*trackedConn]struct{})
	}
	cs.m[tc] = struct{}{}
	return tc, nil
}

// closeAll closes every connection still open and refuses new ones.
func (cs *connSet) closeAll() {
	cs.mu.Lock()
	cs.closed = true
	m := cs.m
	cs.m = nil
	cs.mu.Unlock()
	for c := range m {
		_ = c.Conn.Close()
	}
}

// open returns how many connections are open.
func (cs *connSet) open() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m)
}
