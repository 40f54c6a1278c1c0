package engine

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The crash test runs a writer in a child process (this test binary,
// re-executed into TestCrashChild), kills it with SIGKILL at a random moment
// and checks that recovery reflects every operation the child acknowledged,
// and nothing it did not at least begin. The child reports on its stdout:
//
//	B <op> <n> [data]    about to call the engine for logical session n
//	A <op> <n> [id]      the call returned successfully
//
// with op C(reate), U(pdate), R(otate) or D(elete). Ops are sequential, so at
// most one is in flight when the kill lands. Meanwhile another goroutine in
// the child takes snapshots back to back on small log segments, so kills
// also land while a snapshot is written, renamed, or old segments removed.
//
// SESSCACHE_CRASH_CYCLES=N runs N cycles per policy instead of the default.

const (
	envCrashDir  = "SESSCACHE_CRASH_DIR"
	envCrashSync = "SESSCACHE_CRASH_SYNC"
	envCrashSeed = "SESSCACHE_CRASH_SEED"
)

type crashSession struct {
	id   string // empty once the session can no longer be addressed
	data string
}

// crashModel is what the parent knows: live sessions by logical number, and
// the data of sessions that exist but whose ID it never learnt (a create or
// rotation acknowledged by the engine but killed before the child said so).
type crashModel struct {
	live         map[int]*crashSession
	next         int
	orphans      map[string]bool
	fromSnapshot int // recoveries that started from a snapshot
}

type crashOp struct {
	kind, data string
	n          int
	acked      bool
	id         string // for C and R: the ID the ack carried
}

func TestCrashRecovery(t *testing.T) {
	cycles := 20
	if v := os.Getenv("SESSCACHE_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		cycles = n
	}
	for _, sync := range []SyncPolicy{SyncAlways, SyncEverySecond} {
		t.Run(sync.String(), func(t *testing.T) {
			dir := t.TempDir()
			m := &crashModel{live: map[int]*crashSession{}, orphans: map[string]bool{}}
			r := rand.New(rand.NewPCG(uint64(sync), 1))
			acked := 0
			for cycle := range cycles {
				ops := runCrashChild(t, dir, sync, m, r.Uint64(), 5+r.IntN(150))
				for _, op := range ops {
					if op.acked {
						acked++
					}
				}
				verifyCrash(t, dir, m, ops, cycle)
			}
			t.Logf("%s: %d cycles (%d recovered from a snapshot), %d acknowledged operations checked, %d live sessions, 0 lost",
				sync, cycles, m.fromSnapshot, acked, len(m.live))
			require.Positive(t, m.fromSnapshot, "the kills must also test recovery from snapshots")
		})
	}
}

// runCrashChild starts a writer on dir, lets it acknowledge killAfter
// operations, kills it and returns what it reported.
func runCrashChild(t *testing.T, dir string, sync SyncPolicy, m *crashModel, seed uint64, killAfter int) []crashOp {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashSync+"="+sync.String(),
		envCrashSeed+"="+strconv.FormatUint(seed, 10))
	var in strings.Builder
	for n, s := range m.live {
		fmt.Fprintf(&in, "%d %s %s\n", n, s.id, s.data)
	}
	fmt.Fprintf(&in, "next %d\n", m.next)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())

	// A child that reports nothing for a minute is hung: make it dump its
	// goroutines (SIGQUIT) so the failure shows where, rather than wait for
	// the test binary's timeout.
	hung := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Signal(syscall.SIGQUIT) })
	defer hung.Stop()
	var ops []crashOp
	sc := bufio.NewScanner(out)
	acks := 0
	killed := false
	for sc.Scan() {
		hung.Reset(time.Minute)
		f := strings.Fields(sc.Text())
		if len(f) < 3 || (f[0] != "B" && f[0] != "A") {
			continue // test framework chatter
		}
		n, err := strconv.Atoi(f[2])
		require.NoError(t, err)
		if f[0] == "B" {
			op := crashOp{kind: f[1], n: n}
			if len(f) > 3 {
				op.data = f[3]
			}
			ops = append(ops, op)
			continue
		}
		last := &ops[len(ops)-1]
		require.Equal(t, last.kind, f[1])
		last.acked = true
		if len(f) > 3 {
			last.id = f[3]
		}
		if acks++; acks == killAfter && !killed {
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		require.NoError(t, err, "the child stopped before it was killed")
	}
	return ops
}

// verifyCrash opens the directory the killed child left and checks it
// against the model advanced by ops, then settles the model on what
// recovery shows for the operation that was in flight.
func verifyCrash(t *testing.T, dir string, m *crashModel, ops []crashOp, cycle int) {
	t.Helper()
	var inflight *crashOp
	for i := range ops {
		op := &ops[i]
		if !op.acked {
			require.Equal(t, len(ops)-1, i, "only the last operation can be unacknowledged")
			inflight = op
			break
		}
		switch op.kind {
		case "C":
			m.live[op.n] = &crashSession{id: op.id, data: op.data}
			m.next = max(m.next, op.n+1)
		case "U":
			m.live[op.n].data = op.data
		case "R":
			m.live[op.n].id = op.id
		case "D":
			delete(m.live, op.n)
		}
	}
	e, err := Open(Options{Dir: dir, Logger: quiet})
	require.NoError(t, err, "cycle %d: recovery failed", cycle)
	if e.Stats().Recovery.SnapshotLSN > 0 {
		m.fromSnapshot++
	}
	defer e.Close()

	// What the engine holds, by data (every state of every session has
	// distinct data).
	recovered := map[string]bool{}
	require.NoError(t, e.Range(func(s Session) bool {
		recovered[string(s.Data())] = true
		return true
	}))
	expect := map[string]bool{}
	for n, s := range m.live {
		if inflight != nil && inflight.n == n && inflight.kind != "C" {
			continue // settled below
		}
		got, err := e.Get(s.id)
		require.NoError(t, err, "cycle %d: acknowledged session %d lost", cycle, n)
		require.Equal(t, s.data, string(got.Data()), "cycle %d: session %d lost an acknowledged write", cycle, n)
		expect[s.data] = true
	}
	for d := range m.orphans {
		require.True(t, recovered[d], "cycle %d: a session whose ack was lost disappeared", cycle)
		expect[d] = true
	}
	if inflight != nil {
		settleInflight(t, e, m, inflight, recovered, expect, cycle)
	}
	for d := range recovered {
		require.True(t, expect[d], "cycle %d: recovery holds a session state nobody wrote: %q", cycle, d)
	}
	require.Equal(t, len(expect), e.Len(), "cycle %d", cycle)
}

func settleInflight(t *testing.T, e *Engine, m *crashModel, op *crashOp, recovered, expect map[string]bool, cycle int) {
	t.Helper()
	switch op.kind {
	case "C":
		if recovered[op.data] {
			m.orphans[op.data] = true // created, ID never reported
			expect[op.data] = true
		}
		m.next = max(m.next, op.n+1)
	case "U":
		s := m.live[op.n]
		got, err := e.Get(s.id)
		require.NoError(t, err, "cycle %d: session lost during an update", cycle)
		require.Contains(t, []string{s.data, op.data}, string(got.Data()), "cycle %d", cycle)
		s.data = string(got.Data())
		expect[s.data] = true
	case "D":
		s := m.live[op.n]
		if _, err := e.Get(s.id); err == nil {
			expect[s.data] = true
		} else {
			require.ErrorIs(t, err, ErrNotFound)
			delete(m.live, op.n)
		}
	case "R":
		s := m.live[op.n]
		_, err := e.Get(s.id)
		switch {
		case err == nil:
		case errors.Is(err, ErrNotFound):
			// Rotated to an ID the child never reported.
			delete(m.live, op.n)
			m.orphans[s.data] = true
		default:
			require.NoError(t, err)
		}
		require.True(t, recovered[s.data], "cycle %d: session lost during a rotation", cycle)
		expect[s.data] = true
	}
}

// TestCrashChild is the writer that TestCrashRecovery kills. It does nothing
// unless started by that test.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		return
	}
	sync := SyncAlways
	if os.Getenv(envCrashSync) == SyncEverySecond.String() {
		sync = SyncEverySecond
	}
	seed, _ := strconv.ParseUint(os.Getenv(envCrashSeed), 10, 64)
	e, err := Open(Options{Dir: dir, Sync: sync, SegmentSize: 32 << 10, Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	// Snapshot whenever the writer has done something since the last one.
	kick := make(chan struct{}, 1)
	go func() {
		for range kick {
			if _, err := e.Snapshot(); err != nil {
				fmt.Fprintln(os.Stderr, "crash child: snapshot:", err)
				os.Exit(3)
			}
		}
	}()
	live := map[int]string{}
	var order []int
	next := 0
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if f[0] == "next" {
			next, _ = strconv.Atoi(f[1])
			continue
		}
		n, _ := strconv.Atoi(f[0])
		live[n] = f[1]
		order = append(order, n)
	}
	r := rand.New(rand.NewPCG(seed, 2))
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush() // one write per line: the parent counts acks as they come
	}
	data := func(n int) string { return fmt.Sprintf("s%d-%x", n, r.Uint64()) }
	for {
		select {
		case kick <- struct{}{}:
		default:
		}
		p := r.Float64()
		if len(order) == 0 || p < 0.3 {
			n := next
			next++
			d := data(n)
			say("B C %d %s", n, d)
			s, err := e.Create(CreateOptions{UserID: "crash", Data: []byte(d)})
			if err != nil {
				fmt.Fprintln(os.Stderr, "crash child:", err)
				os.Exit(3)
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
			_, err = e.Update(live[n], 0, func(Session) ([]byte, error) { return []byte(d), nil })
			say("A U %d", n)
		case p < 0.85:
			say("B R %d", n)
			var s Session
			s, err = e.Rotate(live[n])
			if err == nil {
				live[n] = s.ID()
				say("A R %d %s", n, s.ID())
			}
		default:
			say("B D %d", n)
			err = e.Delete(live[n])
			delete(live, n)
			order = append(order[:i], order[i+1:]...)
			say("A D %d", n)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(3)
		}
	}
}
