package crashcheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixture builds directories by hand, with an engine in the test, and
// verifies them against runs written by hand.
type fixture struct {
	t   *testing.T
	dir string
	m   Model
	cfg Config
}

func newFixture(t *testing.T, maxPerUser int) *fixture {
	dir := filepath.Join(t.TempDir(), "data")
	return &fixture{t: t, dir: dir, cfg: Config{Dir: dir, Sync: "always", Writers: 2, Users: 4, MaxPerUser: maxPerUser, Hot: 1}}
}

// open opens the directory as the child would; cap overrides the
// per-user cap (-1: the fixture's).
func (f *fixture) open(capOverride int) *engine.Engine {
	f.t.Helper()
	limit := f.cfg.MaxPerUser
	if capOverride >= 0 {
		limit = capOverride
	}
	e, err := engine.Open(engine.Options{Dir: f.dir, Logger: testLogger(f.t), MaxSessionsPerUser: limit,
		IdleTimeout: longTimeout, AbsoluteTimeout: longTimeout})
	require.NoError(f.t, err)
	return e
}

// do opens the directory, runs fn on it and closes it.
func (f *fixture) do(capOverride int, fn func(e *engine.Engine)) {
	f.t.Helper()
	e := f.open(capOverride)
	fn(e)
	require.NoError(f.t, e.Close())
}

// run makes a Run of ops, numbering their lines in order.
func (f *fixture) run(ops ...*Op) *Run {
	run := &Run{Plan: Plan{Config: f.cfg, LossWindow: DefaultLossWindow}, Ready: true, Ops: ops}
	line := 0
	for _, op := range ops {
		line++
		op.begun = line
		if op.Status != InFlight {
			line++
			op.ended = line
		}
	}
	return run
}

// verify verifies the directory against ops.
func (f *fixture) verify(ops ...*Op) Verdict {
	f.t.Helper()
	return f.verifyRun(f.run(ops...))
}

func (f *fixture) verifyRun(run *Run) Verdict {
	f.t.Helper()
	var trace strings.Builder
	v, err := f.m.Verify(f.dir, run, VerifyOptions{Logger: testLogger(f.t), TempDir: f.t.TempDir(), Trace: &trace})
	require.NoError(f.t, err)
	if len(v.Problems) > 0 {
		assert.Contains(f.t, trace.String(), "PROBLEM", "a cycle with problems is traced")
	}
	return v
}

// create makes session n in e, for user ("" for none), as writer w would,
// and returns the acknowledged operation.
func create(t *testing.T, e *engine.Engine, w, n int, user string) *Op {
	t.Helper()
	data := fmt.Sprintf("s%d-a", n)
	s, err := e.Create(context.Background(), engine.CreateOptions{UserID: user, Data: []byte(data),
		IdleTimeout: longTimeout, AbsoluteTimeout: longTimeout})
	require.NoError(t, err)
	op := &Op{Writer: w, Kind: Create, N: n, User: user, Data: data, Status: Acked, ID: s.ID()}
	if user != "" {
		op.AuthAt = s.AuthenticatedAt().UnixNano()
	}
	return op
}

// base makes the directory hold sessions 0..len(users)-1, for the given
// users, and the model know them; it returns their creations.
func (f *fixture) base(users ...string) []*Op {
	f.t.Helper()
	var ops []*Op
	f.do(0, func(e *engine.Engine) {
		for n, u := range users {
			w := 0
			if u != "" {
				w = f.cfg.owner(u)
			}
			ops = append(ops, create(f.t, e, w, n, u))
		}
	})
	v := f.verify(ops...)
	require.Empty(f.t, v.Problems)
	require.Equal(f.t, len(users), f.m.Live())
	return ops
}

// problems joins a verdict's problems for assertions on their text.
func problems(v Verdict) string { return strings.Join(v.Problems, "\n") }

// noIDs checks that no problem names a session by ID.
func noIDs(t *testing.T, v Verdict, ids ...string) {
	t.Helper()
	for _, id := range ids {
		assert.NotContains(t, problems(v), id, "problems name sessions by number, never by ID")
	}
}

// TestVerifyCatchesALostWrite pins that the checker can fail: an
// acknowledged update that never reached the directory is reported lost.
func TestVerifyCatchesALostWrite(t *testing.T) {
	f := newFixture(t, 0)
	b := f.base("")
	v := f.verify(&Op{Writer: 0, Kind: Update, N: 0, Data: "s0-b", Status: Acked, Version: 2}) // claimed, never written
	assert.Equal(t, 1, v.Lost)
	assert.Contains(t, problems(v), "session 0 lost an acknowledged write")
	noIDs(t, v, b[0].ID)

	f = newFixture(t, 0)
	f.base("u1")
	v = f.verify(&Op{Writer: f.cfg.owner("u1"), Kind: Create, N: 1, User: "u1", Data: "s1-a", Status: Acked, ID: b[0].ID, AuthAt: 1})
	assert.Positive(t, v.Lost)
	assert.Contains(t, problems(v), "acknowledged Create of session 1 for u1 was lost")
}

// TestVerifyCatchesAHalfAppliedRotation: a rotation in flight must leave
// exactly one of the old and new IDs live.
func TestVerifyCatchesAHalfAppliedRotation(t *testing.T) {
	f := newFixture(t, 0)
	b := f.base("")
	rotate := &Op{Writer: 0, Kind: Rotate, N: 0}
	// Both IDs live: the old session, and the same session under a new ID.
	f.do(-1, func(e *engine.Engine) { create(t, e, 0, 0, "") })
	v := f.verify(rotate)
	assert.Contains(t, problems(v), "session 0 is live 2 times")
	assert.Contains(t, problems(v), "Rotate of session 0, in flight at the kill: both the old and the new ID are live")
	noIDs(t, v, b[0].ID)

	// Neither: the session is gone.
	f = newFixture(t, 0)
	b = f.base("")
	f.do(-1, func(e *engine.Engine) { require.NoError(t, e.Delete(context.Background(), b[0].ID)) })
	v = f.verify(&Op{Writer: 0, Kind: Rotate, N: 0})
	assert.Contains(t, problems(v), "neither the old nor the new ID is live")
}

// TestVerifyCatchesAHalfAppliedRevocation: a revocation in flight ends all
// of the user's sessions or none; an acknowledged one that ended fewer
// than the user had is caught as it is reported.
func TestVerifyCatchesAHalfAppliedRevocation(t *testing.T) {
	for gone, want := range map[int]string{
		0: "",
		1: "RevokeUser(u1), in flight at the kill: 1 of the 3 sessions it ends are gone",
		2: "RevokeUser(u1), in flight at the kill: 2 of the 3 sessions it ends are gone",
		3: "",
	} {
		f := newFixture(t, 0)
		b := f.base("u1", "u1", "u1", "u3")
		f.do(-1, func(e *engine.Engine) {
			for _, op := range b[:gone] {
				require.NoError(t, e.Delete(context.Background(), op.ID))
			}
		})
		v := f.verify(&Op{Writer: 1, Kind: RevokeUser, N: -1, User: "u1"})
		if want == "" {
			assert.Empty(t, v.Problems, "%d of 3 gone", gone)
			assert.Equal(t, 4-gone, f.m.Live(), "the model settles on what happened")
		} else {
			assert.Contains(t, problems(v), want)
		}
	}

	f := newFixture(t, 0)
	b := f.base("u1", "u1", "u1")
	f.do(-1, func(e *engine.Engine) { require.NoError(t, e.Delete(context.Background(), b[0].ID)) })
	v := f.verify(&Op{Writer: 1, Kind: RevokeUser, N: -1, User: "u1", Status: Acked, Count: 1})
	assert.Contains(t, problems(v), "RevokeUser(u1) reported ending 1 sessions; the user had 3 to end")

	f = newFixture(t, 0)
	b = f.base("u1", "u1", "u1")
	f.do(-1, func(e *engine.Engine) {
		require.NoError(t, e.Delete(context.Background(), b[1].ID))
	})
	v = f.verify(&Op{Writer: 1, Kind: RevokeOthers, N: 0, User: "u1"})
	assert.Contains(t, problems(v), "RevokeOthers(u1, keeping session 0), in flight at the kill: 1 of the 2 sessions it ends are gone")
}

// TestVerifyChecksTheCap: a capped creation evicts the session that
// authenticated longest ago, in the same step, or does nothing.
func TestVerifyChecksTheCap(t *testing.T) {
	f := newFixture(t, 3)
	f.base("u1", "u1", "u1")
	v := f.verify(&Op{Writer: 1, Kind: Create, N: 3, User: "u1", Data: "s3-a"})
	assert.Empty(t, v.Problems, "not applied")

	f = newFixture(t, 3)
	f.base("u1", "u1", "u1")
	f.do(-1, func(e *engine.Engine) { create(t, e, 1, 3, "u1") }) // the engine's own eviction
	v = f.verify(&Op{Writer: 1, Kind: Create, N: 3, User: "u1", Data: "s3-a"})
	assert.Empty(t, v.Problems, "applied with its eviction")
	assert.Equal(t, 3, f.m.Live())

	f = newFixture(t, 3)
	f.base("u1", "u1", "u1")
	f.do(0, func(e *engine.Engine) { create(t, e, 1, 3, "u1") }) // no cap: no eviction
	v = f.verify(&Op{Writer: 1, Kind: Create, N: 3, User: "u1", Data: "s3-a"})
	assert.Contains(t, problems(v), "Create of session 3 for u1, in flight at the kill: the new session is live; 0 of the 1 sessions the cap evicts are gone")

	f = newFixture(t, 3)
	b := f.base("u1", "u1", "u1")
	f.do(0, func(e *engine.Engine) {
		create(t, e, 1, 3, "u1")
		require.NoError(t, e.Delete(context.Background(), b[2].ID)) // the newest, not the oldest
	})
	v = f.verify(&Op{Writer: 1, Kind: Create, N: 3, User: "u1", Data: "s3-a"})
	assert.Contains(t, problems(v), "session 0 is live, expected gone")

	// As reported by the child: the acknowledgement names the wrong one.
	f = newFixture(t, 3)
	f.base("u1", "u1", "u1")
	var op *Op
	f.do(-1, func(e *engine.Engine) { op = create(t, e, 1, 3, "u1") })
	op.Evicted = []int{2}
	v = f.verify(op)
	assert.Contains(t, problems(v), "Create of session 3 for u1 evicted sessions [2]; the cap of 3 called for [0]")
}

// TestVerifyCatchesWhatNobodyWrote: data nobody wrote, the data of a
// failed update, and sessions nobody created are all reported.
func TestVerifyCatchesWhatNobodyWrote(t *testing.T) {
	update := func(e *engine.Engine, id, data string) {
		_, err := e.Update(context.Background(), id, 0, func(engine.Session) ([]byte, error) { return []byte(data), nil })
		require.NoError(t, err)
	}
	f := newFixture(t, 0)
	b := f.base("", "")
	f.do(-1, func(e *engine.Engine) {
		update(e, b[0].ID, "s0-nobody")
		update(e, b[1].ID, "s1-failed")
		create(t, e, 0, 7, "")
		_, err := e.Create(context.Background(), engine.CreateOptions{Data: []byte("junk"), IdleTimeout: longTimeout, AbsoluteTimeout: longTimeout})
		require.NoError(t, err)
	})
	v := f.verify(&Op{Writer: 1, Kind: Update, N: 1, Data: "s1-failed", Base: 1, Status: Failed, Reason: "conflict"})
	p := problems(v)
	assert.Contains(t, p, "session 0 holds data nobody wrote")
	assert.Contains(t, p, "session 1 holds the data of an update that failed")
	assert.Contains(t, p, "recovery holds session 7, which nobody created")
	assert.Contains(t, p, "recovery holds 1 sessions whose data nobody wrote")
	assert.Equal(t, 1, v.Failed)
}

// TestVerifyAfterAPowerCutUnderEverysec: an acknowledged write may be
// lost only if it is recent and nothing fsynced it since, and what is lost
// is a tail of the log.
func TestVerifyAfterAPowerCutUnderEverysec(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name string
		// ackedAgo is how long before the cut the lost update of session 0
		// was acknowledged.
		ackedAgo time.Duration
		// later, if set, is another writer's operation begun after that
		// acknowledgement, which the directory shows applied.
		later func(f *fixture, b []*Op) *Op
		// snapshot: a snapshot begun after it completed.
		snapshot bool
		want     string
	}{
		{name: "recent: may be lost", ackedAgo: 100 * time.Millisecond},
		{name: "old: must survive", ackedAgo: 3 * time.Second, want: "session 0 lost an acknowledged write"},
		{name: "a later update survived", ackedAgo: 100 * time.Millisecond, want: "the log kept is not a prefix",
			later: func(f *fixture, b []*Op) *Op {
				f.do(-1, func(e *engine.Engine) {
					_, err := e.Update(context.Background(), b[1].ID, 1, func(engine.Session) ([]byte, error) { return []byte("s1-b"), nil })
					require.NoError(t, err)
				})
				return &Op{Writer: 1, Kind: Update, N: 1, Data: "s1-b", Base: 1, Status: Acked, Version: 2}
			}},
		{name: "a later deletion was fsynced", ackedAgo: 100 * time.Millisecond, want: "session 0 lost an acknowledged write",
			later: func(f *fixture, b []*Op) *Op {
				f.do(-1, func(e *engine.Engine) { require.NoError(t, e.Delete(context.Background(), b[1].ID)) })
				return &Op{Writer: 1, Kind: Delete, N: 1, Status: Acked}
			}},
		{name: "a later snapshot completed", ackedAgo: 100 * time.Millisecond, snapshot: true, want: "session 0 lost an acknowledged write"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 0)
			f.cfg.Sync = "everysec"
			b := f.base("", "")
			ops := []*Op{{Writer: 0, Kind: Update, N: 0, Data: "s0-b", Base: 1, Status: Acked, Version: 2}} // never written
			if c.later != nil {
				ops = append(ops, c.later(f, b))
			}
			run := f.run(ops...)
			run.Cut, run.cutAt, run.cutLine = true, now, 99
			ops[0].endedAt = now.Add(-c.ackedAgo)
			if c.snapshot {
				run.snapBegun = []int{ops[0].ended + 1}
			}
			v := f.verifyRun(run)
			if c.want == "" {
				assert.Empty(t, v.Problems)
				assert.Zero(t, v.Lost)
			} else {
				assert.Contains(t, problems(v), c.want)
			}
		})
	}
	// Under SyncAlways the same recent write must survive a power cut.
	f := newFixture(t, 0)
	f.base("")
	op := &Op{Writer: 0, Kind: Update, N: 0, Data: "s0-b", Base: 1, Status: Acked, Version: 2}
	run := f.run(op)
	run.Cut, run.cutAt, op.endedAt = true, now, now
	v := f.verifyRun(run)
	assert.Equal(t, 1, v.Lost)
}

// TestVerifyCatchesABrokenFallback: with a stretch of log between the
// two snapshots gone, recovery from the newest works and from the older
// does not give the same sessions.
func TestVerifyCatchesABrokenFallback(t *testing.T) {
	f := newFixture(t, 0)
	f.base()
	var ops []*Op
	var lsns []uint64
	e, err := engine.Open(engine.Options{Dir: f.dir, SegmentSize: 4 << 10, Logger: testLogger(t)})
	require.NoError(t, err)
	for n := range 300 {
		ops = append(ops, create(t, e, 0, n, ""))
		if n == 100 || n == 250 {
			st, err := e.Snapshot(context.Background())
			require.NoError(t, err)
			lsns = append(lsns, st.LSN)
		}
	}
	require.NoError(t, e.Close())
	// A segment wholly between the snapshots: only the fallback needs it.
	segs, err := filepath.Glob(filepath.Join(f.dir, "wal", "*.wal"))
	require.NoError(t, err)
	removed := false
	for i := 0; i+1 < len(segs) && !removed; i++ {
		var first, next uint64
		_, err1 := fmt.Sscanf(filepath.Base(segs[i]), "%x.wal", &first)
		_, err2 := fmt.Sscanf(filepath.Base(segs[i+1]), "%x.wal", &next)
		require.NoError(t, err1)
		require.NoError(t, err2)
		if first > lsns[0] && next <= lsns[1] {
			require.NoError(t, os.Remove(segs[i]))
			removed = true
		}
	}
	require.True(t, removed, "no segment between LSNs %v in %v", lsns, segs)
	v := f.verify(ops...)
	assert.True(t, v.Fallback)
	assert.True(t, v.FromSnapshot)
	assert.Contains(t, problems(v), "older snapshot")
	t.Log(problems(v))
}

// TestVerifySettlesTheOperationInFlight runs each operation the kill can
// interrupt both ways, taking effect and not, and checks that the verdict
// accepts either and that the settled model matches the directory: a
// second Verify with no new operations finds nothing wrong.
func TestVerifySettlesTheOperationInFlight(t *testing.T) {
	type result struct{ live, orphans int }
	cases := []struct {
		name string
		op   Op
		// done makes the in-flight call's effect on sessions 0 (u1's, the
		// one operated on) and 1 (u1's too).
		done func(e *engine.Engine, b []*Op) error
		want result
	}{
		{name: "create", op: Op{Writer: 1, Kind: Create, N: 2, User: "u1", Data: "s2-a"},
			done: func(e *engine.Engine, _ []*Op) error { create(t, e, 1, 2, "u1"); return nil }, want: result{3, 1}},
		{name: "update", op: Op{Writer: 0, Kind: Update, N: 0, Data: "s0-b", Base: 1},
			done: func(e *engine.Engine, b []*Op) error {
				_, err := e.Update(context.Background(), b[0].ID, 1, func(engine.Session) ([]byte, error) { return []byte("s0-b"), nil })
				return err
			}, want: result{2, 0}},
		{name: "rotate", op: Op{Writer: 1, Kind: Rotate, N: 0},
			done: func(e *engine.Engine, b []*Op) error { _, err := e.Rotate(context.Background(), b[0].ID); return err },
			want: result{2, 1}},
		{name: "login", op: Op{Writer: 1, Kind: Login, N: 0, User: "u1"},
			done: func(e *engine.Engine, b []*Op) error {
				_, err := e.RotateWith(context.Background(), b[0].ID, engine.RotateOptions{UserID: "u1"})
				return err
			}, want: result{2, 1}},
		{name: "delete", op: Op{Writer: 1, Kind: Delete, N: 0},
			done: func(e *engine.Engine, b []*Op) error { return e.Delete(context.Background(), b[0].ID) }, want: result{1, 0}},
		{name: "revoke user", op: Op{Writer: 1, Kind: RevokeUser, N: -1, User: "u1"},
			done: func(e *engine.Engine, _ []*Op) error { _, err := e.RevokeUser(context.Background(), "u1"); return err }},
		{name: "revoke others", op: Op{Writer: 1, Kind: RevokeOthers, N: 0, User: "u1"},
			done: func(e *engine.Engine, b []*Op) error {
				h, err := e.HandleOf(b[0].ID)
				if err == nil {
					_, err = e.RevokeOthers(context.Background(), "u1", h)
				}
				return err
			}, want: result{1, 0}},
	}
	for _, c := range cases {
		for _, done := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s done %v", c.name, done), func(t *testing.T) {
				f := newFixture(t, 0)
				b := f.base("u1", "u1")
				want := result{2, 0}
				if done {
					f.do(-1, func(e *engine.Engine) { require.NoError(t, c.done(e, b)) })
					want = c.want
				}
				op := c.op
				v := f.verify(&op)
				assert.Empty(t, v.Problems)
				assert.Equal(t, 1, v.InFlight)
				assert.Equal(t, want, result{f.m.Live(), f.m.Orphans()})
				if op.Kind == Create {
					assert.Equal(t, 3, f.m.next, "a create in flight uses up its number either way")
				}
				v = f.verify()
				assert.Empty(t, v.Problems, "the settled model matches the directory")
			})
		}
	}
}

// TestVerifyRejectsOpsThatDoNotFit pins that a broken harness is an error,
// not a verdict.
func TestVerifyRejectsOpsThatDoNotFit(t *testing.T) {
	for name, ops := range map[string][]*Op{
		"unknown session":     {{Writer: 0, Kind: Update, N: 7, Data: "s7-a", Status: Acked, Version: 2}},
		"used number":         {{Writer: 0, Kind: Create, N: 0, Data: "s0-b", Status: Acked}},
		"rotation of nothing": {{Writer: 0, Kind: Rotate, N: 9}},
		"two writers, one user": {
			{Writer: 0, Kind: RevokeUser, N: -1, User: "u1", Status: Acked},
			{Writer: 1, Kind: RevokeUser, N: -1, User: "u1", Status: Acked}},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, 0)
			f.base("")
			_, err := f.m.Verify(f.dir, f.run(ops...), VerifyOptions{Logger: testLogger(t)})
			assert.Error(t, err)
		})
	}
}

func TestEvictionChoicesAllowTies(t *testing.T) {
	v := &verifier{cfg: Config{MaxPerUser: 3}}
	st := state{0: {user: "u", authAt: 5}, 1: {user: "u", authAt: 5}, 2: {user: "u", authAt: 9}, 3: {user: "v", authAt: 1}}
	assert.Equal(t, [][]int{{0}, {1}}, v.evictions(st, &Op{Kind: Create, N: 4, User: "u"}))
	st[4] = slot{user: "u", authAt: 2}
	assert.Equal(t, [][]int{{0, 4}, {1, 4}}, v.evictions(st, &Op{Kind: Create, N: 5, User: "u"}))
	assert.Equal(t, [][]int{nil}, v.evictions(st, &Op{Kind: Login, N: 2, User: "u"}), "a user's own session authenticating afresh evicts nothing")
	assert.Equal(t, [][]int{nil}, v.evictions(st, &Op{Kind: Create, N: 5, User: "w"}))
}
