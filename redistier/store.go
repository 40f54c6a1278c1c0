package redistier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesscache/sesscache/engine"
)

// ErrUnavailable is what a call returns when Redis could not be reached
// or did not answer: the error wraps it and the cause.
//
// Errors the store makes start with "redistier:". Where the engine's
// contract names an error (engine.ErrNotFound, ErrExpired, ErrRotated,
// ErrVersionConflict, ErrMalformedToken, ErrClosed), the store returns
// that very value, as the engine does, so that callers comparing with ==
// or errors.Is see no difference; ErrTooLarge and ErrInvalid come wrapped
// in a "redistier:" error that says which limit or argument. A write that fails
// with it was applied whole or not at all (each is one script); a read
// that fails with it found nothing it could trust.
var ErrUnavailable = errors.New("redistier: Redis unavailable")

// Store is a session store shared by every process connected to the same
// Redis, with each process's copies of the sessions it has seen in an
// in-memory engine. It implements httpsession.Store. All methods are safe
// for concurrent use.
type Store struct {
	opts   Options
	local  *engine.Engine // this instance's copies
	client rueidis.Client
	conns  connSet // every connection client has open: Close closes those it leaves
	seal   *sealer
	recs   records // how records are kept: Options.Layout

	ownerKey      []byte
	prefix        string
	trackedPrefix string
	slackMS       int64
	touchMS       int64
	graceMS       int64
	cap           int
	cluster       bool

	// epoch counts flushes: a fill begun under an older epoch is dropped.
	epoch  atomic.Uint64
	shards [nShards]tierShard
	// degradedSince is when invalidations were lost, in unix ns, while
	// Options.ServeStale lets copies be served meanwhile; 0 otherwise.
	degradedSince atomic.Int64
	kick          chan struct{}
	lastStamp     atomic.Int64

	touches touchQueue

	flightMu sync.Mutex
	flights  map[string]*flight

	stop   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
	once   sync.Once

	stats counters
}

// nShards stripes the table of copies; a power of two.
const nShards = 256

// tierShard is one stripe of the table of copies: which tokens this
// instance holds copies of, by handle (an invalidation names a handle, and
// the engine drops a copy by token), and a sequence that every
// invalidation of a handle in the stripe advances, so that a read begun
// before it does not store what it read.
type tierShard struct {
	mu  sync.Mutex
	seq atomic.Uint64
	ids map[engine.Handle]string
	_   [40]byte
}

func (s *Store) shardOf(h engine.Handle) *tierShard { return &s.shards[int(h[1])%nShards] }

// New connects to Redis and returns a running Store. It returns an error
// wrapping ErrUnavailable if Redis cannot be reached, engine.ErrInvalid for
// options out of range.
func New(ctx context.Context, opts Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	switch {
	case o.Local.MaxSessions != 0 || o.Local.MaxAnonymousSessions != 0:
		return nil, fmt.Errorf("redistier: %w: MaxSessions and MaxAnonymousSessions are not supported (bound Redis with maxmemory)", engine.ErrInvalid)
	case o.Local.OnEvent != nil:
		return nil, fmt.Errorf("redistier: %w: Options.Local.OnEvent is not supported", engine.ErrInvalid)
	case o.Local.RotateGrace < 0 || o.Local.MaxSessionsPerUser < 0:
		return nil, fmt.Errorf("redistier: %w: negative RotateGrace or MaxSessionsPerUser", engine.ErrInvalid)
	case o.Local.IdleTimeout < 2*o.Local.TouchLogInterval:
		return nil, fmt.Errorf("redistier: %w: IdleTimeout must be at least twice TouchLogInterval", engine.ErrInvalid)
	}
	seal, err := newSealer(o.Local.EncryptionKeys)
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts:          o,
		seal:          seal,
		ownerKey:      o.OwnerKey,
		prefix:        o.KeyPrefix,
		trackedPrefix: o.KeyPrefix + string(kindRecord) + ":",
		slackMS:       (o.Local.TouchLogInterval + 2*o.TouchFlushInterval + o.ConnTimeout).Milliseconds(),
		touchMS:       o.Local.TouchLogInterval.Milliseconds(),
		graceMS:       o.Local.RotateGrace.Milliseconds(),
		cap:           o.Local.MaxSessionsPerUser,
		kick:          make(chan struct{}, 1),
		stop:          make(chan struct{}),
	}
	if s.recs, err = newRecords(s, o.Layout); err != nil {
		return nil, err
	}
	for i := range s.shards {
		s.shards[i].ids = make(map[engine.Handle]string)
	}
	s.touches.pending = make(map[engine.Handle]int64)
	s.flights = make(map[string]*flight)

	lo := o.Local
	lo.EncryptionKeys = nil // copies live in memory; the engine seals only files
	lo.RotateGrace = 0
	lo.OnTouch = s.onTouch
	if s.local, err = engine.Open(lo); err != nil {
		return nil, fmt.Errorf("redistier: local tier: %w", err)
	}
	// One address at a time: given several, rueidis dials each and then
	// closes the duplicates it made, and every close would read as lost
	// invalidations (a flush) just after New returns.
	for _, addr := range o.Addrs {
		s.client, err = s.newClient(addr)
		if err == nil {
			break
		}
	}
	if err != nil {
		s.conns.closeAll()
		_ = s.local.Close() // in memory: nothing to lose
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}

	s.cluster = s.client.Mode() == rueidis.ClientModeCluster
	// One round trip now: an unreachable Redis, or one that cannot track
	// keys, fails New rather than the first request.
	if err := s.client.Do(ctx, s.client.B().Ping().Build()).Error(); err != nil {
		s.closeClient()
		_ = s.local.Close() // in memory: nothing to lose
		return nil, s.fail(ctx, err)
	}
	if s.cluster {
		// A connection to every master now, each tracked from its first
		// command: every change anywhere reaches this instance from the
		// start, whichever nodes its reads go to.
		if _, err := s.slotLayout(ctx); err != nil {
			s.closeClient()
			_ = s.local.Close() // in memory: nothing to lose
			return nil, s.fail(ctx, err)
		}
	}
	s.wg.Add(2)
	go s.flusher()
	go s.watchdog()
	return s, nil
}

// newClient connects to Redis through addr (a Cluster's other nodes are
// discovered).
func (s *Store) newClient(addr string) (rueidis.Client, error) {
	o := s.opts
	return rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{addr},
		Username:    o.Username,
		Password:    o.Password,
		TLSConfig:   o.TLS,
		ClientName:  o.ClientName,
		// Every connection is also this instance's invalidation channel:
		// BCAST pushes every change of a record to it. NOLOOP asks Redis to
		// leave out the changes this instance made on that connection, but
		// Redis 7.0 credits a script's writes to the script, not to the
		// connection that ran it, so an instance's own writes come back
		// too and evict its own copy (correct, and one extra read).
		ClientTrackingOptions: []string{"BCAST", "PREFIX", s.trackedPrefix, "NOLOOP"},
		OnInvalidations:       s.onInvalidations,
		PipelineMultiplex:     -1, // one connection per node, so one invalidation stream per node
		CacheSizeEachConn:     1 << 16,
		ConnWriteTimeout:      o.ConnTimeout,
		DialCtxFn:             s.conns.dial,
		Dialer:                net.Dialer{Timeout: o.DialTimeout, KeepAlive: max(o.ConnTimeout/4, 100*time.Millisecond)},
		BlockingPipeline:      1 << 20,
		ClusterOption:         rueidis.ClusterOption{ShardsRefreshInterval: o.TopologyInterval},
	})
}

// Close stops the store's goroutines, writes the accesses not yet written
// (for up to ConnTimeout), and closes its connections and local tier.
// Later calls return engine.ErrClosed, as does every other method.
func (s *Store) Close() error {
	err := engine.ErrClosed
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		s.wg.Wait()
		s.closeClient()
		err = s.local.Close()
	})
	return err
}

// closeClient closes the client, and then every connection it left open
// (see connSet).
func (s *Store) closeClient() {
	s.client.Close()
	s.conns.closeAll()
}

// fail turns an error from Redis into the store's: ctx's own error if ctx
// is done, else ErrUnavailable wrapping the cause.
func (s *Store) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, rueidis.ErrClosing) && s.closed.Load() {
		return engine.ErrClosed
	}
	s.stats.unavailable.Add(1)
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// ticket is taken before a round trip whose result may be kept as a copy.
type ticket struct {
	epoch, seq uint64
}

func (s *Store) begin(h engine.Handle) ticket {
	return ticket{s.epoch.Load(), s.shardOf(h).seq.Load()}
}

// keep stores st as this instance's copy of session id if nothing may have
// changed it since t was taken (an invalidation of its stripe, a flush)
// and the store trusts its invalidations; it returns the session as kept,
// or, if it could not keep it, a view of st that is not kept. own says
// the round trip was this instance's write, whose invalidation NOLOOP
// spares it: a fill begun before it must not be kept either.
func (s *Store) keep(t ticket, id string, h engine.Handle, st engine.SessionState, own bool) (engine.Session, error) {
	sh := s.shardOf(h)
	sh.mu.Lock()
	ok := t.epoch == s.epoch.Load() && t.seq == sh.seq.Load() && s.degradedSince.Load() == 0 && !s.closed.Load()
	if own {
		sh.seq.Add(1)
	}
	if ok {
		// The same version as the copy held (an expired copy refreshed)
		// moves its last access on.
		sess, err := s.local.PutReplica(id, st)
		if err == nil {
			sh.ids[h] = id
			sh.mu.Unlock()
			s.stats.fills.Add(1)
			return sess, nil
		}
	} else {
		s.local.DropReplica(id)
		delete(sh.ids, h)
	}
	sh.mu.Unlock()
	s.stats.fillsSkipped.Add(1)
	return s.view(id, h, st)
}

// forget drops this instance's copy of the session with handle h (and
// token id, if known), and stops reads begun before from keeping theirs.
func (s *Store) forget(h engine.Handle) {
	sh := s.shardOf(h)
	sh.mu.Lock()
	sh.seq.Add(1)
	if id, ok := sh.ids[h]; ok {
		s.local.DropReplica(id)
		delete(sh.ids, h)
	}
	sh.mu.Unlock()
}

// forgetID is forget for a token this instance may hold a copy of without
// having recorded it (never: but a write must not rely on the table).
func (s *Store) forgetID(h engine.Handle, id string) {
	sh := s.shardOf(h)
	sh.mu.Lock()
	sh.seq.Add(1)
	s.local.DropReplica(id)
	delete(sh.ids, h)
	sh.mu.Unlock()
}

// view returns st as a session under id (handle h) without keeping a
// copy, or ErrExpired if it is past its deadline by the local clock, as
// the engine's lookups judge it.
func (s *Store) view(id string, h engine.Handle, st engine.SessionState) (engine.Session, error) {
	sess := engine.ViewOf(id, h, st)
	if !s.alive(sess) {
		return engine.Session{}, engine.ErrExpired
	}
	return sess, nil
}

// alive says whether sess is before its deadline by the local clock.
func (s *Store) alive(sess engine.Session) bool { return sess.Deadline().After(s.local.Now()) }

// onInvalidations receives the invalidations of every connection, on the
// connection's reading goroutine. nil means the connection was lost or the
// server flushed its data: every copy may be stale.
func (s *Store) onInvalidations(keys []rueidis.RedisMessage) {
	if keys == nil {
		s.lost()
		return
	}
	for i := range keys {
		k, err := keys[i].ToString()
		if err != nil {
			continue
		}
		h, ok := s.handleOfKey(k)
		if !ok {
			continue
		}
		s.stats.invalidations.Add(1)
		s.forget(h)
		if s.opts.OnInvalidation != nil {
			s.opts.OnInvalidation(h)
		}
	}
}

// lost handles lost invalidations: flush now, or, with ServeStale, mark
// the copies as unverified and let the watchdog flush them once Redis
// answers again or ServeStale has passed.
func (s *Store) lost() {
	if s.closed.Load() {
		return
	}
	if s.opts.ServeStale <= 0 {
		s.flush("invalidations lost")
		return
	}
	s.epoch.Add(1)
	if s.degradedSince.CompareAndSwap(0, time.Now().UnixNano()) {
		s.opts.Logger.Warn("redistier: invalidations lost; serving local copies for at most ServeStale",
			"serve_stale", s.opts.ServeStale)
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// flush drops every copy.
func (s *Store) flush(reason string) {
	for i := range s.shards {
		s.shards[i].mu.Lock()
	}
	s.epoch.Add(1)
	s.local.DropAllReplicas()
	for i := range s.shards {
		clear(s.shards[i].ids)
	}
	s.degradedSince.Store(0)
	for i := range s.shards {
		s.shards[i].mu.Unlock()
	}
	s.stats.flushes.Add(1)
	s.opts.Logger.Info("redistier: local copies flushed", "reason", reason)
}

// watchdog flushes the copies when a Cluster's slot map changes, and,
// under ServeStale, once Redis answers again or the bound has passed.
func (s *Store) watchdog() {
	defer s.wg.Done()
	interval := s.opts.TopologyInterval
	tick := time.NewTicker(min(interval, 100*time.Millisecond))
	defer tick.Stop()
	var layout string
	lastCheck := time.Time{}
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		case <-s.kick:
		}
		if since := s.degradedSince.Load(); since != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.ConnTimeout)
			err := s.client.Do(ctx, s.client.B().Ping().Build()).Error()
			cancel()
			switch {
			case err == nil:
				s.flush("Redis answers again")
			case time.Since(time.Unix(0, since)) >= s.opts.ServeStale:
				s.flush("ServeStale passed")
			}
		}
		if !s.cluster || time.Since(lastCheck) < interval {
			continue
		}
		lastCheck = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ConnTimeout)
		l, err := s.slotLayout(ctx)
		cancel()
		if err != nil {
			continue
		}
		if layout != "" && l != layout {
			s.flush("cluster slot map changed")
		}
		layout = l
	}
}

// slotLayout returns the Cluster's slot ranges and their masters as text,
// and makes sure this instance has a (tracked) connection to each master.
func (s *Store) slotLayout(ctx context.Context) (string, error) {
	res, err := s.client.Do(ctx, s.client.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return "", err
	}
	var b []byte
	masters := map[string]bool{}
	for _, r := range res {
		e, err := r.ToArray()
		if err != nil || len(e) < 3 {
			return "", fmt.Errorf("redistier: unexpected CLUSTER SLOTS reply")
		}
		lo, _ := e[0].AsInt64()
		hi, _ := e[1].AsInt64()
		m, err := e[2].ToArray()
		if err != nil || len(m) < 2 {
			return "", fmt.Errorf("redistier: unexpected CLUSTER SLOTS reply")
		}
		host, _ := m[0].ToString()
		port, _ := m[1].AsInt64()
		b = fmt.Appendf(b, "%d-%d=%s:%d;", lo, hi, host, port)
		masters[net.JoinHostPort(host, strconv.FormatInt(port, 10))] = true
	}
	nodes := s.client.Nodes()
	for addr := range masters {
		if n, ok := nodes[addr]; ok {
			// A master that does not answer has no copies of ours to
			// invalidate; its first answer will come on a tracked
			// connection.
			n.Do(ctx, n.B().Ping().Build()) //nolint:errcheck
		}
	}
	// CLUSTER SLOTS lists ranges in no set order.
	parts := strings.Split(string(b), ";")
	slices.Sort(parts)
	return strings.Join(parts, ";"), nil
}
