package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/sesscache/sesscache/engine"
)

// The crash protocol, shared with engine/crash_test.go. The parent starts
// this binary as "sessbench crash-child", writes on its stdin the sessions
// it knows to be live, one "<n> <id> <data>" line each, then "next <n>", the
// next free logical number, and closes stdin. The child then writes on its
// stdout, one line each, without end:
//
//	B <op> <n> [data]    about to call the engine for logical session n
//	A <op> <n> [id]      the call returned successfully
//
// with op C(reate), U(pdate), R(otate) or D(elete). Ops are sequential, so
// at most one is in flight when the parent's SIGKILL lands. Meanwhile
// another goroutine takes snapshots back to back on small log segments, so
// kills also land while a snapshot is written or renamed, or old segments
// removed. Session IDs cross the pipe because the parent must look the
// sessions up; neither process ever prints one anywhere else.

// crashChildCommand is the hidden subcommand the crash command runs as its
// writer.
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
	// Snapshot whenever the writer has done something since the last one.
	kick := make(chan struct{}, 1)
	snapErr := make(chan error, 1)
	if c.snapshots {
		go func() {
			for range kick {
				if _, err := e.Snapshot(); err != nil {
					snapErr <- err
					return
				}
			}
		}()
	}
	live := map[int]string{}
	var order []int
	next := 0
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "next":
			next, _ = strconv.Atoi(f[1])
		case len(f) >= 2:
			n, _ := strconv.Atoi(f[0])
			live[n] = f[1]
			order = append(order, n)
		}
	}
	r := rand.New(rand.NewPCG(c.seed, 2))
	out := bufio.NewWriter(stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush() // one write per line: the parent counts acks as they come
	}
	data := func(n int) string { return fmt.Sprintf("s%d-%x", n, r.Uint64()) }
	for {
		if c.snapshots {
			select {
			case kick <- struct{}{}:
			case err := <-snapErr:
				return fmt.Errorf("snapshot: %w", err)
			default:
			}
		}
		p := r.Float64()
		if len(order) == 0 || p < 0.3 {
			n := next
			next++
			d := data(n)
			say("B C %d %s", n, d)
			s, err := e.Create(engine.CreateOptions{UserID: "crash", Data: []byte(d)})
			if err != nil {
				return fmt.Errorf("create: %w", err)
			}
			say("A C %d %s", n, s.ID())
			live[n] = s.ID()
			order = append(order, n)
			continue
		}
		i := r.IntN(len(order))
		n := order[i]
		switch {
		case p < 0.65:
			d := data(n)
			say("B U %d %s", n, d)
			_, err = e.Update(live[n], 0, func(engine.Session) ([]byte, error) { return []byte(d), nil })
			if err == nil {
				say("A U %d", n)
			}
		case p < 0.85:
			say("B R %d", n)
			var s engine.Session
			if s, err = e.Rotate(live[n]); err == nil {
				live[n] = s.ID()
				say("A R %d %s", n, s.ID())
			}
		default:
			say("B D %d", n)
			if err = e.Delete(live[n]); err == nil {
				delete(live, n)
				order = append(order[:i], order[i+1:]...)
				say("A D %d", n)
			}
		}
		if err != nil {
			return err
		}
	}
}
