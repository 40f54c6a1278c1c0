package redistier

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// Options configures a Store. The zero value, with Addrs set, is a safe
// store: local copies, fail-closed reads, the engine's default timeouts.
// Every instance sharing a Redis must agree on KeyPrefix, OwnerKey and, in
// Local, SigningKeys, EncryptionKeys, RotateGrace, MaxSessionsPerUser and
// the default timeouts: they decide what a token and a record mean.
type Options struct {
	// Addrs are Redis addresses, "host:port": one for a standalone server,
	// any number of nodes for a Cluster (the rest are discovered).
	Addrs []string

	// Username and Password authenticate to Redis (AUTH); TLS, if set,
	// encrypts the connections.
	Username, Password string
	TLS                *tls.Config

	// KeyPrefix starts every key the store writes. Default "sesscache:".
	KeyPrefix string

	// OwnerKey keys the hash (HMAC-SHA256) that names an owner in Redis,
	// so that someone reading Redis cannot test a guessed user ID. Empty:
	// a fixed, public key. Set it together with Local.EncryptionKeys, and do
	// not change it while sessions live: RevokeUser finds an owner's
	// sessions by this hash.
	OwnerKey []byte

	// Local configures the in-memory engine that holds this instance's
	// copies, and the rules every session follows: IdleTimeout (default 30
	// minutes), AbsoluteTimeout (12 hours), TouchLogInterval (how often a
	// session's last access is written to Redis: default 1 minute),
	// RotateGrace, MaxSessionsPerUser, size limits, SigningKeys (tokens),
	// EncryptionKeys (records in Redis are sealed with them), Clock. Dir
	// must be empty (copies live in memory only); OnTouch is the store's
	// own and must be nil.
	Local engine.Options

	// ConnTimeout is how long a Redis connection may leave a command or a
	// ping unanswered before the store closes it. Closing a connection
	// loses its invalidations, so the local copies are flushed: this bounds
	// how long a hung connection can hide a revocation. Default 2 s; keep
	// it below the Cluster's cluster-node-timeout.
	ConnTimeout time.Duration

	// DialTimeout bounds connecting to a node. Default 2 s.
	DialTimeout time.Duration

	// ServeStale, if positive, lets Find serve a local copy for up to this
	// long after the store lost its invalidations (a connection dropped),
	// instead of failing closed at once: a revocation made meanwhile on
	// another instance may go unseen for that long. The copies are flushed
	// as soon as Redis answers again, or when ServeStale has passed. Zero,
	// the default: every copy is dropped the moment invalidations may have
	// been lost, and lookups go to Redis (failing with ErrUnavailable while
	// it is unreachable).
	ServeStale time.Duration

	// TouchFlushInterval is how often the accesses that local lookups
	// record are written to Redis, in one pipelined batch. Default 1 s.
	TouchFlushInterval time.Duration

	// TopologyInterval is how often a Cluster's slot map is checked; a
	// change (a failover, a resharding) flushes the local copies. Default
	// 1 s. Unused for a standalone server.
	TopologyInterval time.Duration

	// Layout chooses how records are kept in Redis (see Layout). Every
	// instance sharing a Redis and a KeyPrefix must use the same one.
	// Default LayoutHash.
	Layout Layout

	// ClientName names the store's connections in CLIENT LIST. Default
	// "redistier".
	ClientName string

	// OnInvalidation, if set, is called with the handle of each session
	// whose copy this instance dropped because Redis reported it changed
	// (not for flushes): for metrics of how fast changes propagate. It runs
	// on a connection's reading goroutine and must return quickly.
	OnInvalidation func(h engine.Handle)

	// Logger receives connection losses and flushes; nil means
	// slog.Default(). It never receives a session ID.
	Logger *slog.Logger
}

const (
	defaultPrefix        = "sesscache:"
	defaultConnTimeout   = 2 * time.Second
	defaultDialTimeout   = 2 * time.Second
	defaultTouchFlush    = time.Second
	defaultTopology      = time.Second
	defaultClientName    = "redistier"
	defaultIdle          = 30 * time.Minute
	defaultAbsolute      = 12 * time.Hour
	defaultTouchInterval = time.Minute
	defaultOwnerKey      = "redistier owner hash"
)

func (o Options) withDefaults() (Options, error) {
	switch {
	case len(o.Addrs) == 0:
		return o, fmt.Errorf("redistier: %w: no Redis address in Options.Addrs", engine.ErrInvalid)
	case o.Local.Dir != "":
		return o, fmt.Errorf("redistier: %w: Options.Local.Dir must be empty (copies live in memory)", engine.ErrInvalid)
	case o.Local.OnTouch != nil:
		return o, fmt.Errorf("redistier: %w: Options.Local.OnTouch is the store's own", engine.ErrInvalid)
	case o.ConnTimeout < 0, o.DialTimeout < 0, o.ServeStale < 0, o.TouchFlushInterval < 0, o.TopologyInterval < 0:
		return o, fmt.Errorf("redistier: %w: negative duration in Options", engine.ErrInvalid)
	case o.Local.IdleTimeout < 0, o.Local.AbsoluteTimeout < 0, o.Local.TouchLogInterval < 0:
		return o, fmt.Errorf("redistier: %w: negative duration in Options.Local", engine.ErrInvalid)
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = defaultPrefix
	}
	if len(o.OwnerKey) == 0 {
		o.OwnerKey = []byte(defaultOwnerKey)
	}
	if o.ConnTimeout == 0 {
		o.ConnTimeout = defaultConnTimeout
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.TouchFlushInterval == 0 {
		o.TouchFlushInterval = defaultTouchFlush
	}
	if o.TopologyInterval == 0 {
		o.TopologyInterval = defaultTopology
	}
	if o.ClientName == "" {
		o.ClientName = defaultClientName
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Local.IdleTimeout == 0 {
		o.Local.IdleTimeout = defaultIdle
	}
	if o.Local.AbsoluteTimeout == 0 {
		o.Local.AbsoluteTimeout = defaultAbsolute
	}
	if o.Local.TouchLogInterval == 0 {
		o.Local.TouchLogInterval = defaultTouchInterval
	}
	o.Local.TouchLogInterval = max(o.Local.TouchLogInterval, time.Second)
	return o, nil
}
