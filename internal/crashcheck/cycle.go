package crashcheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kind is an operation of the writer, as the protocol spells it.
type Kind string

// The writer's operations.
const (
	Create Kind = "C"
	Update Kind = "U"
	Rotate Kind = "R"
	Delete Kind = "D"
)

// Op is one operation the writer reported.
type Op struct {
	Kind Kind
	N    int    // the logical session
	Data string // for Create and Update: the data written
	// Acked says the writer reported that the call returned; ID is then,
	// for Create and Rotate, the session's new ID.
	Acked bool
	ID    string
}

// hungAfter is how long a silent writer is given before it is made to dump
// its goroutines (SIGQUIT), so that a hang shows where rather than stalls
// until a test's timeout.
const hungAfter = time.Minute

// Cycle runs one writer until it is killed. It starts cmd, which must run
// Writer.Run on the directory to verify, with m on its stdin (Cycle sets
// cmd.Stdin and cmd.Stdout; cmd.Stderr is the caller's), reads its reports,
// kills it with SIGKILL once it has acknowledged killAfter operations, and
// returns every operation it reported, for m.Verify. Operations reported
// between the kill and the writer's death are included: their
// acknowledgements are as real as the others.
//
// A writer that breaks the protocol or stops before it is killed is an
// error. When ctx is done the writer is killed and Cycle returns ctx.Err().
func Cycle(ctx context.Context, cmd *exec.Cmd, m *Model, killAfter int) ([]Op, error) {
	cmd.Stdin = m.Stdin()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the writer: %w", err)
	}
	hung := time.AfterFunc(hungAfter, func() { _ = cmd.Process.Signal(syscall.SIGQUIT) })
	defer hung.Stop()
	stopOnCancel := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stopOnCancel()

	var p parser
	var protoErr error
	acks, killed := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		hung.Reset(hungAfter)
		acked, err := p.line(sc.Text())
		if err != nil {
			protoErr = err
			break
		}
		if !acked {
			continue
		}
		if acks++; acks == killAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				protoErr = fmt.Errorf("killing the writer: %w", err)
				break
			}
			killed = true
		}
	}
	if err := sc.Err(); err != nil && protoErr == nil {
		protoErr = fmt.Errorf("reading the writer's reports: %w", err)
	}
	if protoErr != nil && !killed {
		_ = cmd.Process.Kill()
		killed = true
	}
	err = cmd.Wait()
	switch {
	case protoErr != nil:
		return nil, protoErr
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case !killed:
		return nil, fmt.Errorf("the writer stopped before it was killed (%v)", err)
	}
	return p.ops, nil
}

// parser turns the writer's stdout into operations, a line at a time.
type parser struct {
	ops []Op
}

// line takes one line of the writer's stdout and reports whether it
// acknowledged an operation.
func (p *parser) line(s string) (acked bool, err error) {
	f := strings.Fields(s)
	if len(f) < 3 || (f[0] != "B" && f[0] != "A") {
		return false, nil // not the protocol: a test binary's own output
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return false, fmt.Errorf("the writer said %q", f[0]+" "+f[1]+" "+f[2])
	}
	kind := Kind(f[1])
	switch kind {
	case Create, Update, Rotate, Delete:
	default:
		return false, fmt.Errorf("the writer reported an unknown operation %q", f[1])
	}
	if f[0] == "B" {
		op := Op{Kind: kind, N: n}
		if len(f) > 3 {
			op.Data = f[3]
		}
		p.ops = append(p.ops, op)
		return false, nil
	}
	if len(p.ops) == 0 {
		return false, errors.New("the writer acknowledged an operation it did not begin")
	}
	last := &p.ops[len(p.ops)-1]
	if last.Acked || last.Kind != kind || last.N != n {
		return false, errors.New("the writer acknowledged an operation it did not begin")
	}
	last.Acked = true
	if len(f) > 3 {
		last.ID = f[3]
	}
	return true, nil
}
