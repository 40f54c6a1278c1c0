package crashcheck

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/wal/waltest"
)

// longTimeout is every session's idle and absolute timeout: nothing may
// expire during a run, or recovery could rightly drop what the model
// expects.
const longTimeout = 10000 * time.Hour

// RunChild is the process that a cycle kills. It reads the model from
// stdin, reports O, opens the engine on c.Dir, reports R, then runs
// c.Writers writers and a snapshot loop, reporting every call on stdout as
// the protocol says (see the package documentation), until the process is
// killed. With c.PowerCut, SIGUSR1 cuts the power first.
//
// It returns only on failure (an engine call failed unexpectedly, or
// stdout could not be written: the parent hung up) or when ctx is done;
// then it stops its goroutines and closes the engine. After a power cut it
// does not return: it waits to be killed.
func RunChild(ctx context.Context, c Config, stdin io.Reader, stdout io.Writer, logger *slog.Logger) error {
	policy, err := c.policy()
	if err != nil {
		return err
	}
	st, err := readState(stdin, c)
	if err != nil {
		return err
	}
	ch := &child{cfg: c, out: &reporter{w: bufio.NewWriter(stdout)}, st: st, halt: make(chan struct{})}
	opts := engine.Options{Dir: c.Dir, Sync: policy, SegmentSize: c.SegmentSize, Logger: logger,
		MaxSessionsPerUser: c.MaxPerUser, RotateGrace: c.RotateGrace,
		IdleTimeout: longTimeout, AbsoluteTimeout: longTimeout,
		SnapshotInterval: -1, SnapshotAfterBytes: -1} // only the forced snapshots, at the chosen pace
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Every goroutine stops before the engine closes: a writer's call
	// begun is finished, not cut short by the Close.
	var e *engine.Engine
	defer func() {
		cancel()
		wg.Wait()
		if e != nil {
			_ = e.Close() // after a power cut it cannot write, which is the point
		}
	}()
	if c.PowerCut {
		fsys := &waltest.FS{NeedDirSync: true, Mappable: c.Mapped}
		opts.FS = fsys
		requests, die := c.cut, c.die
		if requests == nil {
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGUSR1)
			defer signal.Stop(sig)
			req := make(chan struct{})
			wg.Go(func() {
				select {
				case <-sig:
					close(req)
				case <-ctx.Done():
				}
			})
			requests = req
			die = func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
		}
		wg.Go(func() {
			select {
			case <-requests:
			case <-ctx.Done():
				return
			}
			// P first: an acknowledgement the parent reads after it may
			// still be for a write that reached the disk before the cut.
			_ = ch.out.line("P")
			ch.cut.Store(true)
			_ = fsys.PowerCut() // an error here leaves more on disk, never less
			die()
		})
	}
	if err := ch.out.line("O"); err != nil {
		return err
	}
	e, err = engine.Open(opts)
	if err != nil {
		return ch.failed(ctx, fmt.Errorf("opening the engine: %w", err))
	}
	ch.e = e
	if err := ch.out.line("R"); err != nil {
		return err
	}
	errs := make(chan error, c.Writers+1)
	for w := range c.Writers {
		wr := ch.writer(w)
		wg.Go(func() { errs <- wr.run(ctx) })
	}
	if c.SnapshotMax > 0 {
		wg.Go(func() { errs <- ch.snapshots(ctx) })
	}
	var first error
	select {
	case first = <-errs:
	case <-ctx.Done():
		first = ctx.Err()
	}
	cancel()
	return first
}

// child is the state the writers share.
type child struct {
	cfg  Config
	e    *engine.Engine
	out  *reporter
	st   *childState
	cut  atomic.Bool   // the power is off: every write fails from now on
	halt chan struct{} // never closed: what a writer waits on after the cut
}

// failed returns err, unless the power was cut: then the failure is the
// cut's doing, and the child waits to be killed, reporting nothing more.
func (ch *child) failed(ctx context.Context, err error) error {
	if !ch.cut.Load() {
		return err
	}
	select {
	case <-ch.halt:
	case <-ctx.Done():
	}
	return ctx.Err()
}

// snapshots forces a snapshot after every random pause between SnapshotMin
// and SnapshotMax, reporting S before each call and N after each success.
// The pauses are the workload's pace, not synchronisation.
func (ch *child) snapshots(ctx context.Context) error {
	r := rand.New(rand.NewPCG(ch.cfg.Seed, 1<<32))
	t := time.NewTimer(0) // the first at once: cycles are short
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := ch.out.line("S"); err != nil {
			return err
		}
		if _, err := ch.e.Snapshot(context.WithoutCancel(ctx)); err != nil {
			return ch.failed(ctx, fmt.Errorf("snapshot: %w", err))
		}
		if err := ch.out.line("N"); err != nil {
			return err
		}
		lo, hi := ch.cfg.SnapshotMin, ch.cfg.SnapshotMax
		t.Reset(lo + time.Duration(r.Int64N(int64(max(hi-lo, 0))+1)))
	}
}

// reporter writes protocol lines, one at a time, each flushed at once: the
// parent counts acknowledgements as they come, and a line must be out
// before the kill for its call to count.
type reporter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (r *reporter) line(fields ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// bufio.Writer keeps its first error: Flush reports it.
	_, _ = r.w.WriteString(strings.Join(fields, " "))
	_ = r.w.WriteByte('\n')
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("reporting to the parent: %w", err)
	}
	return nil
}

// childState is what the child knows of the sessions: each writer's own
// (its domain), the IDs every writer may update, and the next free
// logical number.
type childState struct {
	next atomic.Int64
	own  []map[int]*childSession // by writer

	mu  sync.Mutex
	ids map[int]string // live sessions with a known ID, for contended updates
}

// childSession is one session as its owner knows it.
type childSession struct {
	id   string // "" if nobody learnt it (an orphan)
	user string
}

// readState reads the model the parent wrote (Model.Stdin) and gives each
// session to its owner: a user's sessions to the user's writer, an
// anonymous session to writer n % Writers.
func readState(stdin io.Reader, c Config) (*childState, error) {
	st := &childState{own: make([]map[int]*childSession, c.Writers), ids: map[int]string{}}
	for w := range st.own {
		st.own[w] = map[int]*childSession{}
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "next":
			n, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, fmt.Errorf("reading the model: %q", sc.Text())
			}
			st.next.Store(int64(n))
		case len(f) == 4 && f[0] == "s":
			n, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, fmt.Errorf("reading the model: bad session number %q", f[1])
			}
			s := &childSession{id: dash(f[2]), user: dash(f[3])}
			w := n % c.Writers
			if s.user != "" {
				if w = c.owner(s.user); w < 0 {
					return nil, fmt.Errorf("reading the model: session %d has user %q, not one of the run's", n, s.user)
				}
			}
			st.own[w][n] = s
			if s.id != "" {
				st.ids[n] = s.id
			}
		default:
			return nil, fmt.Errorf("reading the model: %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the model: %w", err)
	}
	return st, nil
}

// dash turns the protocol's "-" (none) into "".
func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// undash turns "" into the protocol's "-".
func undash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
