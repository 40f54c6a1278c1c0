package main

import (
	"context"
	"io"
	"os"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/internal/crashcheck"
)

// crashChildCommand is the hidden subcommand the crash command runs as its
// writer: crashcheck.Writer on the directory, speaking crashcheck's protocol
// on stdin and stdout.
const crashChildCommand = "crash-child"

type crashChildConfig struct {
	dir         string
	sync        string
	seed        uint64
	segmentSize int64
	snapshots   bool
}

func parseCrashChild(args []string, stderr io.Writer) (func(context.Context, io.Writer) error, error) {
	var c crashChildConfig
	fs := newFlagSet(crashChildCommand, "The writer the crash command kills; not for use by hand.", stderr)
	fs.StringVar(&c.dir, "dir", "", "data directory")
	fs.StringVar(&c.sync, "sync", "always", "sync policy")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the operation mix")
	seg := byteSize(32 << 10)
	fs.Var(&seg, "segment-size", "log segment size")
	fs.BoolVar(&c.snapshots, "snapshots", true, "take snapshots back to back while writing")
	if err := fs.parse(args); err != nil {
		return nil, err
	}
	c.segmentSize = int64(seg)
	if c.dir == "" {
		return nil, badUsage(stderr, crashChildCommand, "-dir is required")
	}
	return func(_ context.Context, stdout io.Writer) error { return crashChild(c, os.Stdin, stdout) }, nil
}

// crashChild writes until it is killed; it returns only on failure.
func crashChild(c crashChildConfig, stdin io.Reader, stdout io.Writer) error {
	policy, _, err := parseSync(c.sync)
	if err != nil {
		return err
	}
	e, err := engine.Open(engine.Options{Dir: c.dir, Sync: policy, SegmentSize: c.segmentSize, Logger: quietLogger(os.Stderr)})
	if err != nil {
		return err
	}
	defer e.Close()
	return crashcheck.Writer{Seed: c.seed, Snapshots: c.snapshots}.Run(e, stdin, stdout)
}
