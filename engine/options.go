package engine

import (
	"fmt"
	"math/bits"
	"runtime"
	"time"

	"github.com/sesscache/sesscache/shard"
)

// Options configures an Engine. The zero value is a safe, fast in-memory
// store; every field documents its default.
type Options struct {
	// IdleTimeout ends a session that has not been used for this long.
	// Default 30 minutes. A session may override it at creation.
	IdleTimeout time.Duration

	// AbsoluteTimeout ends a session this long after its creation, however
	// active. Default 24 hours. A session may override it at creation.
	AbsoluteTimeout time.Duration

	// MaxSessions caps the number of sessions; Create returns ErrFull beyond
	// it. Zero means no cap.
	MaxSessions int

	// MaxDataSize caps a session's data in bytes; larger writes return
	// ErrTooLarge. Default 64 KiB.
	MaxDataSize int

	// MaxUserIDSize caps an owner ID in bytes. Default 256.
	MaxUserIDSize int

	// Shards is the number of lock stripes, rounded up to a power of two.
	// Default 16 × GOMAXPROCS, at least 64.
	Shards int

	// Clock, when set, replaces the engine's coarse clock; see NewManualClock.
	Clock *Clock

	// ClockResolution is how often the engine's own clock advances, and so
	// how late past its deadline a session may still be seen. Default 10 ms.
	ClockResolution time.Duration

	// ReapBudget is the most sessions the janitor examines per shard per
	// visit, bounding how long it holds a shard's lock. Default 256.
	ReapBudget int

	// manualReap stops the janitor from reaping, so that this package's
	// tests decide exactly when reaping happens.
	manualReap bool
}

const (
	defaultIdle        = 30 * time.Minute
	defaultAbsolute    = 24 * time.Hour
	defaultMaxData     = 64 << 10
	defaultMaxUserID   = 256
	defaultResolution  = 10 * time.Millisecond
	defaultReapBudget  = 256
	minShards          = 64
	maxShards          = 1 << 16 // a shard is chosen by the 16-bit hint stored on disk
	maxDataSizeAllowed = shard.MaxData
)

// withDefaults returns o with every zero field set to its default, or an
// error naming the first field out of range.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.IdleTimeout < 0, o.AbsoluteTimeout < 0, o.ClockResolution < 0:
		return o, fmt.Errorf("%w: negative duration in Options", ErrInvalid)
	case o.MaxSessions < 0, o.MaxDataSize < 0, o.MaxUserIDSize < 0, o.Shards < 0, o.ReapBudget < 0:
		return o, fmt.Errorf("%w: negative limit in Options", ErrInvalid)
	case o.MaxDataSize > maxDataSizeAllowed:
		return o, fmt.Errorf("%w: MaxDataSize above %d", ErrInvalid, maxDataSizeAllowed)
	case o.MaxUserIDSize > shard.MaxUserID:
		return o, fmt.Errorf("%w: MaxUserIDSize above %d", ErrInvalid, shard.MaxUserID)
	case o.Shards > maxShards:
		return o, fmt.Errorf("%w: Shards above %d", ErrInvalid, maxShards)
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = defaultIdle
	}
	if o.AbsoluteTimeout == 0 {
		o.AbsoluteTimeout = defaultAbsolute
	}
	if o.MaxDataSize == 0 {
		o.MaxDataSize = defaultMaxData
	}
	if o.MaxUserIDSize == 0 {
		o.MaxUserIDSize = defaultMaxUserID
	}
	if o.Shards == 0 {
		o.Shards = max(16*runtime.GOMAXPROCS(0), minShards)
	}
	o.Shards = 1 << bits.Len(uint(o.Shards-1))
	if o.ClockResolution == 0 {
		o.ClockResolution = defaultResolution
	}
	if o.ReapBudget == 0 {
		o.ReapBudget = defaultReapBudget
	}
	return o, nil
}
