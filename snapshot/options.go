package snapshot

import (
	"log/slog"
	"runtime"
	"time"

	"github.com/sesscache/sesscache/wal"
)

// Options configure Write, List, Load and Prune. The zero value is a safe
// default: the operating system's file system, GOMAXPROCS workers,
// slog.Default().
type Options struct {
	// FS is the file system; nil means wal.OSFS. Tests inject faults here.
	FS wal.FS
	// Workers is how many goroutines Write runs fill calls on and Load
	// decodes chunks on; zero or negative means runtime.GOMAXPROCS(0).
	Workers int
	// Logger receives reports of removed leftovers and failed clean-ups;
	// nil means slog.Default(). Record contents are never logged.
	Logger *slog.Logger
	// OnePass makes Load check and apply each chunk in one pass instead of
	// checking the whole file before the first apply call: half the
	// decoding, but a damaged file is found after some apply calls, and
	// the caller must then discard what it applied. The engine does, and
	// loads faster.
	OnePass bool
	// BeforePublish, if set, runs in Write once the snapshot's temporary
	// file is complete and fsynced and before it is renamed to its final
	// name. An error fails the Write, which then removes the file. The
	// engine makes the log durable there through every record the snapshot
	// may hold, so that no snapshot is ever ahead of the log.
	BeforePublish func() error

	// chunkTarget and lookahead override defaultChunkTarget and
	// lookaheadBytes so that tests can make many chunks out of few records
	// and fill a look-ahead queue quickly, and benchmarks can compare sizes.
	chunkTarget int
	lookahead   int
}

func (o Options) fs() wal.FS {
	if o.FS == nil {
		return wal.OSFS{}
	}
	return o.FS
}

func (o Options) workers() int {
	if o.Workers <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return o.Workers
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

func (o Options) target() int {
	if o.chunkTarget <= 0 {
		return defaultChunkTarget
	}
	return min(o.chunkTarget, MaxChunkSize)
}

func (o Options) lookaheadBytes() int {
	if o.lookahead <= 0 {
		return lookaheadBytes
	}
	return o.lookahead
}

// Info describes a snapshot file.
type Info struct {
	// Path is the file's path: the directory joined with its name.
	Path string
	// LSN is the snapshot's log sequence number: recovery replays the log
	// from LSN+1.
	LSN uint64
	// Created is the creation time given to Write, to the nanosecond and
	// without a monotonic reading; the zero Time if none was given. List
	// leaves it zero.
	Created time.Time
	// Sessions is the number of records in the file. List leaves it zero.
	Sessions uint64
	// Bytes is the file's size.
	Bytes int64
	// Duration is how long Write or Load took; List leaves it zero.
	Duration time.Duration
}
