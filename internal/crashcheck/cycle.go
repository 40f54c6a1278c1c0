package crashcheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kind is an operation of a writer, as the protocol spells it.
type Kind string

// The writers' operations.
const (
	Create        Kind = "C" // Create, for a user or anonymous
	Update        Kind = "U" // Update, with a version or unconditionally
	Rotate        Kind = "R" // Rotate
	Login         Kind = "L" // RotateWith{UserID}
	Delete        Kind = "D" // Delete
	RevokeUser    Kind = "K" // RevokeUser
	RevokeOthers  Kind = "O" // RevokeOthers, keeping session N
	RevokeSession Kind = "X" // RevokeSession of session N
)

// String returns the operation's name, for reports.
func (k Kind) String() string {
	switch k {
	case Create:
		return "Create"
	case Update:
		return "Update"
	case Rotate:
		return "Rotate"
	case Login:
		return "Login"
	case Delete:
		return "Delete"
	case RevokeUser:
		return "RevokeUser"
	case RevokeOthers:
		return "RevokeOthers"
	case RevokeSession:
		return "RevokeSession"
	}
	return "Kind(" + string(k) + ")"
}

// structural reports whether the operation changes which sessions exist,
// under which IDs and users: everything but Update.
func (k Kind) structural() bool { return k != Update }

// durable reports whether the engine fsyncs the operation before it
// returns whatever the sync policy: removals and revocations.
func (k Kind) durable() bool {
	return k == Delete || k == RevokeUser || k == RevokeOthers || k == RevokeSession
}

// fsynced reports whether the operation, acknowledged, was fsynced before
// it returned, and with it everything logged before it: a removal or
// revocation that removed something. (One that ends nothing logs nothing.
// A writer deletes and revokes by handle only sessions it knows are live.)
func (o *Op) fsynced() bool {
	return o.Status == Acked && o.Kind.durable() && (o.Count > 0 || o.Kind == Delete || o.Kind == RevokeSession)
}

// Status is how an operation ended, as far as the parent saw.
type Status uint8

const (
	// InFlight: begun, never reported done: the kill (or the power cut)
	// came first. It may or may not have taken effect.
	InFlight Status = iota
	// Acked: the call returned successfully.
	Acked
	// Failed: the call returned an expected error (an update's version
	// conflict, or its session gone or rotated away) and must have left no
	// trace.
	Failed
)

// Op is one operation a writer reported.
type Op struct {
	Writer int
	Kind   Kind
	// N is the session: created, updated, rotated, logged in, deleted,
	// kept (RevokeOthers) or revoked (RevokeSession); -1 for RevokeUser.
	N    int
	User string // Create (may be ""), Login, the revocations
	Data string // Create, Update: the data written
	Base uint64 // Update: the version it was given, 0 for none
	// Status says how it ended; the rest is what an acknowledgement
	// reported.
	Status  Status
	ID      string // Create, Rotate, Login: the new ID
	Version uint64 // Update, Rotate, Login: the version after the call
	Result  string // Rotate, Login: the data after the call
	AuthAt  int64  // Create for a user, Login: the authentication time (Unix ns)
	Evicted []int  // Create, Login: the user's sessions the cap evicted
	Count   int    // RevokeUser, RevokeOthers: how many sessions it ended
	Reason  string // Failed: why

	begun, ended int // line numbers of the B and A/F lines
	endedAt      time.Time
}

// String describes the operation for a report: kind and logical numbers,
// never an ID.
func (o *Op) String() string {
	switch o.Kind {
	case RevokeUser:
		return fmt.Sprintf("RevokeUser(%s)", o.User)
	case RevokeOthers:
		return fmt.Sprintf("RevokeOthers(%s, keeping session %d)", o.User, o.N)
	case Create:
		if o.User != "" {
			return fmt.Sprintf("Create of session %d for %s", o.N, o.User)
		}
		return fmt.Sprintf("Create of anonymous session %d", o.N)
	case Login:
		return fmt.Sprintf("Login of session %d as %s", o.N, o.User)
	}
	return fmt.Sprintf("%s of session %d", o.Kind, o.N)
}

// Plan is what the parent does in one cycle.
type Plan struct {
	// Config is the child's; Cycle hands it over, Verify reads it back.
	Config Config
	// KillAfter: the child is killed once it has acknowledged this many
	// operations.
	KillAfter int
	// InOpen: the child is killed OpenDelay after it reports it is opening
	// the engine (O), which may be while recovery still runs, whatever it
	// acknowledged.
	InOpen    bool
	OpenDelay time.Duration
	// LossWindow applies to a power cut under SyncEverySecond: an
	// acknowledged write may be lost only if it was acknowledged at most
	// this long before the cut (and it was not fsynced otherwise: a
	// removal, or something a later fsync or snapshot covered).
	LossWindow time.Duration
}

// Run is what the parent saw of one cycle.
type Run struct {
	Plan Plan
	// Ops are the operations in the order they began.
	Ops []*Op
	// Ready says the child opened the engine (R) before it died; OpenTime
	// is how long that took, from O to R.
	Ready    bool
	OpenTime time.Duration
	// Cut says the child cut the power (P) before it died.
	Cut bool
	// Snapshots counts the snapshots the child completed (N).
	Snapshots int

	cutLine int
	cutAt   time.Time
	// snapBegun holds the line number of the S of every completed
	// snapshot: what was acknowledged before it is in it, and so durable.
	snapBegun []int
}

// Launcher returns the command that runs RunChild with the encoded
// configuration (Config.Encode). Cycle sets its Stdin and Stdout; its
// Stderr is the caller's.
type Launcher func(config string) *exec.Cmd

// hungAfter is how long a silent child is given before it is made to dump
// its goroutines (SIGQUIT), so that a hang shows where rather than stalls
// until a test's timeout.
const hungAfter = time.Minute

// Cycle runs one child until it dies. It starts the child with m on its
// stdin, reads its reports, and ends it as p says: with SIGKILL, or, if
// p.Config.PowerCut, with SIGUSR1, on which the child cuts its power and
// kills itself. Reports that arrive between the signal and the child's
// death are kept: their acknowledgements are as real as the others.
//
// A child that breaks the protocol or stops before it is killed is an
// error. When ctx is done the child is killed and Cycle returns ctx.Err().
func Cycle(ctx context.Context, launch Launcher, m *Model, p Plan) (*Run, error) {
	cmd := launch(p.Config.Encode())
	cmd.Stdin = m.Stdin()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the child: %w", err)
	}
	hung := time.AfterFunc(hungAfter, func() { _ = cmd.Process.Signal(syscall.SIGQUIT) })
	defer hung.Stop()
	stopOnCancel := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stopOnCancel()
	// kill may run on the in-Open timer's goroutine as well as this one;
	// once the child is reaped it must not signal (the PID may be reused).
	var killMu sync.Mutex
	killed := false
	kill := func() {
		killMu.Lock()
		defer killMu.Unlock()
		if killed {
			return
		}
		killed = true
		sig := syscall.SIGKILL
		if p.Config.PowerCut {
			sig = syscall.SIGUSR1
		}
		_ = cmd.Process.Signal(sig) // if it fails, the child is gone already, which Wait tells
	}

	ps := parser{run: &Run{Plan: p}}
	var protoErr error
	var openedAt time.Time
	var inOpen *time.Timer
	acks := 0
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		hung.Reset(hungAfter)
		now := time.Now()
		ev, err := ps.line(sc.Text(), now)
		if err != nil {
			protoErr = err
			break
		}
		switch ev {
		case evOpening:
			openedAt = now
			if p.InOpen {
				inOpen = time.AfterFunc(p.OpenDelay, kill)
			}
		case evReady:
			ps.run.OpenTime = now.Sub(openedAt)
		case evAck:
			if acks++; acks == p.KillAfter && !p.InOpen {
				kill()
			}
		}
	}
	if err := sc.Err(); err != nil && protoErr == nil {
		protoErr = fmt.Errorf("reading the child's reports: %w", err)
	}
	if protoErr != nil {
		_ = cmd.Process.Kill()
	}
	werr := cmd.Wait()
	if inOpen != nil {
		inOpen.Stop()
	}
	killMu.Lock()
	killed = true
	killMu.Unlock()
	switch {
	case protoErr != nil:
		return nil, protoErr
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case !killedBySIGKILL(cmd):
		return nil, fmt.Errorf("the child stopped before it was killed (%v)", werr)
	case p.Config.PowerCut && !ps.run.Cut:
		// Killed, but not by its own hand after a power cut.
		return nil, errors.New("the child died without cutting the power")
	}
	return ps.run, nil
}

// killedBySIGKILL reports whether the child died of SIGKILL.
func killedBySIGKILL(cmd *exec.Cmd) bool {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// event is what a line meant to Cycle.
type event uint8

const (
	evNone event = iota
	evOpening
	evReady
	evAck
)

// parser turns the child's stdout into a Run, a line at a time.
type parser struct {
	run     *Run
	n       int         // lines read
	current map[int]*Op // each writer's operation in flight
	snap    int         // line of the S of the snapshot in flight, 0 if none
}

// line takes one line of the child's stdout.
func (p *parser) line(s string, at time.Time) (event, error) {
	p.n++
	f := strings.Fields(s)
	if len(f) == 0 {
		return evNone, nil
	}
	switch {
	case s == "O":
		return evOpening, nil
	case s == "R":
		p.run.Ready = true
		return evReady, nil
	case s == "P":
		p.run.Cut, p.run.cutLine, p.run.cutAt = true, p.n, at
		return evNone, nil
	case s == "S":
		p.snap = p.n
		return evNone, nil
	case s == "N":
		if p.snap == 0 {
			return evNone, errors.New("the child completed a snapshot it did not begin")
		}
		p.run.Snapshots++
		p.run.snapBegun = append(p.run.snapBegun, p.snap)
		p.snap = 0
		return evNone, nil
	case len(f) < 4 || (f[0] != "B" && f[0] != "A" && f[0] != "F"):
		return evNone, nil // not the protocol: a test binary's own output
	}
	w, err := strconv.Atoi(f[1])
	if err != nil || w < 0 {
		return evNone, fmt.Errorf("the child named writer %q", f[1])
	}
	kind := Kind(f[2])
	if !slices.Contains([]Kind{Create, Update, Rotate, Login, Delete, RevokeUser, RevokeOthers, RevokeSession}, kind) {
		return evNone, fmt.Errorf("the child reported an unknown operation %q", f[2])
	}
	if p.current == nil {
		p.current = map[int]*Op{}
	}
	bad := func() (event, error) { return evNone, fmt.Errorf("the child said %q", s) }
	if f[0] == "B" {
		if p.current[w] != nil {
			return evNone, fmt.Errorf("writer %d began an operation before its last one returned", w)
		}
		op := &Op{Writer: w, Kind: kind, N: -1, begun: p.n}
		args := f[4:]
		if kind == RevokeUser {
			op.User = f[3]
		} else if op.N, err = strconv.Atoi(f[3]); err != nil || op.N < 0 {
			return bad()
		}
		want := map[Kind]int{Create: 2, Update: 2, Login: 1, RevokeOthers: 1, RevokeSession: 1}[kind]
		if len(args) != want {
			return bad()
		}
		switch kind {
		case Create:
			op.User, op.Data = dash(args[0]), args[1]
		case Update:
			op.Data = args[0]
			if op.Base, err = strconv.ParseUint(args[1], 10, 64); err != nil {
				return bad()
			}
		case Login, RevokeOthers, RevokeSession:
			op.User = args[0]
		}
		if op.Data != "" {
			if n, ok := logical(op.Data); !ok || n != op.N {
				return evNone, fmt.Errorf("writer %d wrote data %q to session %d", w, op.Data, op.N)
			}
		}
		p.current[w] = op
		p.run.Ops = append(p.run.Ops, op)
		return evNone, nil
	}
	op := p.current[w]
	if op == nil || op.Kind != kind || (kind == RevokeUser && f[3] != op.User) || (kind != RevokeUser && f[3] != strconv.Itoa(op.N)) {
		return evNone, fmt.Errorf("writer %d reported the end of an operation it did not begin: %q", w, s)
	}
	delete(p.current, w)
	op.ended, op.endedAt = p.n, at
	args := f[4:]
	if f[0] == "F" {
		if kind != Update || len(args) != 1 {
			return bad()
		}
		op.Status, op.Reason = Failed, args[0]
		return evNone, nil
	}
	op.Status = Acked
	want := map[Kind]int{Create: 3, Update: 1, Rotate: 3, Login: 5, RevokeUser: 1, RevokeOthers: 1}[kind]
	if len(args) != want {
		return bad()
	}
	num := func(s string) int64 {
		v, e := strconv.ParseInt(s, 10, 64)
		if e != nil || v < 0 {
			err = e
			if err == nil {
				err = errors.New("negative")
			}
		}
		return v
	}
	switch kind {
	case Create:
		op.ID, op.AuthAt = args[0], num(args[1])
		op.Evicted, err = numbers(args[2])
	case Update:
		op.Version = uint64(num(args[0]))
	case Rotate:
		op.ID, op.Version, op.Result = args[0], uint64(num(args[1])), args[2]
	case Login:
		op.ID, op.Version, op.Result, op.AuthAt = args[0], uint64(num(args[1])), args[2], num(args[3])
		if err == nil {
			op.Evicted, err = numbers(args[4])
		}
	case RevokeUser, RevokeOthers:
		op.Count = int(num(args[0]))
	}
	if err != nil {
		return bad()
	}
	return evAck, nil
}

// numbers reads a protocol list of logical numbers: "3,7", or "-".
func numbers(s string) ([]int, error) {
	if s == "-" {
		return nil, nil
	}
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad list %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}
