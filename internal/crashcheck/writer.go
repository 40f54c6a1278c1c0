package crashcheck

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/sesscache/sesscache/engine"
)

// Writer is the process that a cycle kills. The zero Writer takes no
// snapshots.
type Writer struct {
	// Seed chooses the operations and their data: the same seed on the same
	// model makes the same calls.
	Seed uint64
	// Snapshots has another goroutine take a snapshot whenever the writer
	// has written since the last one began, so snapshots run back to back.
	Snapshots bool
}

// Run reads the model from stdin, then creates, updates, rotates and
// deletes sessions of e at random, one call at a time, reporting each on
// stdout as the protocol says, until the process is killed. It returns only
// on failure: an engine call or a snapshot failed, or stdout could not be
// written. It never closes e.
func (w Writer) Run(e *engine.Engine, stdin io.Reader, stdout io.Writer) error {
	s, err := readModel(stdin)
	if err != nil {
		return err
	}
	kick := make(chan struct{}, 1)
	snapErr := make(chan error, 1)
	if w.Snapshots {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range kick {
				if _, err := e.Snapshot(context.Background()); err != nil {
					snapErr <- err
					return
				}
			}
		}()
		defer func() { close(kick); <-done }()
	}
	r := rand.New(rand.NewPCG(w.Seed, 2))
	out := bufio.NewWriter(stdout)
	for {
		if w.Snapshots {
			select {
			case kick <- struct{}{}:
			case err := <-snapErr:
				return fmt.Errorf("snapshot: %w", err)
			default:
			}
		}
		op, i := s.choose(r)
		if err := report(out, "B", op, op.Data); err != nil {
			return err
		}
		id, err := s.apply(e, op, i)
		if err != nil {
			return fmt.Errorf("operation %s on session %d: %w", op.Kind, op.N, err)
		}
		if err := report(out, "A", op, id); err != nil {
			return err
		}
	}
}

// writerState is what the writer knows: the IDs of the live sessions by
// logical number, those numbers in an order to draw from, and the next
// free number.
type writerState struct {
	live  map[int]string
	order []int
	next  int
}

func readModel(stdin io.Reader) (*writerState, error) {
	s := &writerState{live: map[int]string{}}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "next":
			s.next, _ = strconv.Atoi(f[1])
		case len(f) >= 2:
			n, _ := strconv.Atoi(f[0])
			s.live[n] = f[1]
			s.order = append(s.order, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the model: %w", err)
	}
	return s, nil
}

// choose draws the next operation: a create 30% of the time or when there
// is nothing to write to, else an update (35%), rotation (20%) or delete
// (15%) of a random live session, whose place in order it also returns.
func (s *writerState) choose(r *rand.Rand) (Op, int) {
	data := func(n int) string { return fmt.Sprintf("s%d-%x", n, r.Uint64()) }
	p := r.Float64()
	if len(s.order) == 0 || p < 0.3 {
		n := s.next
		s.next++
		return Op{Kind: Create, N: n, Data: data(n)}, -1
	}
	i := r.IntN(len(s.order))
	n := s.order[i]
	switch {
	case p < 0.65:
		return Op{Kind: Update, N: n, Data: data(n)}, i
	case p < 0.85:
		return Op{Kind: Rotate, N: n}, i
	}
	return Op{Kind: Delete, N: n}, i
}

// apply makes op's call and, if it succeeds, advances the state; it returns
// the new ID of a create or rotation.
func (s *writerState) apply(e *engine.Engine, op Op, i int) (string, error) {
	switch op.Kind {
	case Create:
		sess, err := e.Create(context.Background(), engine.CreateOptions{UserID: "crash", Data: []byte(op.Data)})
		if err != nil {
			return "", err
		}
		s.live[op.N] = sess.ID()
		s.order = append(s.order, op.N)
		return sess.ID(), nil
	case Update:
		_, err := e.Update(context.Background(), s.live[op.N], 0, func(engine.Session) ([]byte, error) { return []byte(op.Data), nil })
		return "", err
	case Rotate:
		sess, err := e.Rotate(context.Background(), s.live[op.N])
		if err != nil {
			return "", err
		}
		s.live[op.N] = sess.ID()
		return sess.ID(), nil
	default:
		if err := e.Delete(context.Background(), s.live[op.N]); err != nil {
			return "", err
		}
		delete(s.live, op.N)
		s.order = append(s.order[:i], s.order[i+1:]...)
		return "", nil
	}
}

// report writes one protocol line and flushes it: the parent counts acks as
// they come.
func report(out *bufio.Writer, what string, op Op, extra string) error {
	fmt.Fprintf(out, "%s %s %d", what, op.Kind, op.N)
	if extra != "" {
		out.WriteString(" " + extra)
	}
	out.WriteByte('\n')
	if err := out.Flush(); err != nil {
		return fmt.Errorf("reporting to the parent: %w", err)
	}
	return nil
}
