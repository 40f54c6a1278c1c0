package crashcheck

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lines feeds a parser the given lines and returns its run.
func lines(t *testing.T, ls ...string) *Run {
	t.Helper()
	p := parser{run: &Run{}}
	for _, l := range ls {
		_, err := p.line(l, time.Now())
		require.NoError(t, err, l)
	}
	return p.run
}

func TestParserReadsTheProtocol(t *testing.T) {
	run := lines(t,
		"=== RUN   TestCrashChild", // a test binary's chatter
		"O", "R", "S",
		"B 0 C 3 u1 s3-a",
		"B 1 U 2 s2-b 4",
		"A 0 C 3 id3 1700 1,2",
		"F 1 U 2 conflict",
		"N",
		"B 0 K u1",
		"B 1 L 2 u5",
		"A 0 K u1 3",
		"A 1 L 2 id2b 6 s2-a 1800 -",
		"B 0 O 4 u1",
		"A 0 O 4 0",
		"B 1 X 7 u5",
		"B 0 R 4",
		"P",
		"A 0 R 4 id4 3 s4-c",
	)
	assert.True(t, run.Ready)
	assert.True(t, run.Cut)
	assert.Equal(t, 1, run.Snapshots)
	assert.Equal(t, []int{4}, run.snapBegun)
	ops := make([]Op, len(run.Ops))
	for i, op := range run.Ops {
		ops[i] = *op
		ops[i].begun, ops[i].ended, ops[i].endedAt = 0, 0, time.Time{}
	}
	assert.Equal(t, []Op{
		{Writer: 0, Kind: Create, N: 3, User: "u1", Data: "s3-a", Status: Acked, ID: "id3", AuthAt: 1700, Evicted: []int{1, 2}},
		{Writer: 1, Kind: Update, N: 2, Data: "s2-b", Base: 4, Status: Failed, Reason: "conflict"},
		{Writer: 0, Kind: RevokeUser, N: -1, User: "u1", Status: Acked, Count: 3},
		{Writer: 1, Kind: Login, N: 2, User: "u5", Status: Acked, ID: "id2b", Version: 6, Result: "s2-a", AuthAt: 1800},
		{Writer: 0, Kind: RevokeOthers, N: 4, User: "u1", Status: Acked},
		{Writer: 1, Kind: RevokeSession, N: 7, User: "u5"},
		{Writer: 0, Kind: Rotate, N: 4, Status: Acked, ID: "id4", Version: 3, Result: "s4-c"},
	}, ops)
	assert.Greater(t, run.Ops[6].ended, run.cutLine, "an acknowledgement may follow the cut")
}

func TestParserRejectsBrokenProtocol(t *testing.T) {
	for name, ls := range map[string][]string{
		"end without begin":        {"A 0 C 0 id0 0 -"},
		"end of another op":        {"B 0 U 0 s0-b 0", "A 0 D 0"},
		"end of another session":   {"B 0 U 0 s0-b 0", "A 0 U 1 2"},
		"ended twice":              {"B 0 U 0 s0-b 0", "A 0 U 0 2", "A 0 U 0 2"},
		"two at once in a writer":  {"B 0 U 0 s0-b 0", "B 0 U 0 s0-c 0"},
		"unknown operation":        {"B 0 Z 0"},
		"not a session":            {"B 0 C zero - s0-a"},
		"data of another session":  {"B 0 C 1 - s0-a"},
		"missing fields":           {"B 0 C 1 s1-a"},
		"a failed create":          {"B 0 C 1 - s1-a", "F 0 C 1 full"},
		"a bad eviction list":      {"B 0 C 1 u1 s1-a", "A 0 C 1 id1 5 x"},
		"snapshot never begun":     {"N"},
		"not a writer":             {"B w U 0 s0-b 0"},
		"revocation of other user": {"B 0 K u1", "A 0 K u2 0"},
	} {
		t.Run(name, func(t *testing.T) {
			p := parser{run: &Run{}}
			var err error
			for _, l := range ls {
				if _, err = p.line(l, time.Now()); err != nil {
					break
				}
			}
			assert.Error(t, err)
		})
	}
}

// script returns a Launcher running a shell script in place of the child.
func script(t *testing.T, s string) Launcher {
	t.Helper()
	sh, err := exec.LookPath("sh")
	require.NoError(t, err, "the test needs a POSIX shell")
	return func(string) *exec.Cmd { return exec.Command(sh, "-c", s) }
}

// TestCycleEndsTheChildAsPlanned runs the parent's side against shell
// scripts standing in for the child.
func TestCycleEndsTheChildAsPlanned(t *testing.T) {
	var m Model
	run, err := Cycle(t.Context(), script(t, `printf 'O\nR\nB 0 C 0 - s0-a\nA 0 C 0 id0 0 -\nB 0 U 0 s0-b 0\n'; exec sleep 60`), &m, Plan{KillAfter: 1})
	require.NoError(t, err)
	require.Len(t, run.Ops, 2)
	assert.Equal(t, Acked, run.Ops[0].Status)
	assert.Equal(t, InFlight, run.Ops[1].Status)
	assert.True(t, run.Ready)

	// Killed inside Open: after the O, before any R.
	run, err = Cycle(t.Context(), script(t, `printf 'O\n'; exec sleep 60`), &m, Plan{InOpen: true, OpenDelay: time.Millisecond})
	require.NoError(t, err)
	assert.False(t, run.Ready)

	// A power cut: SIGUSR1, to which the child answers P and its own
	// SIGKILL.
	cut := Plan{Config: Config{PowerCut: true}, KillAfter: 1}
	run, err = Cycle(t.Context(), script(t,
		`trap 'echo P; kill -KILL $$' USR1; printf 'O\nR\nB 0 D 3\nA 0 D 3\n'; while :; do sleep 0.01; done`), &m, cut)
	require.NoError(t, err)
	assert.True(t, run.Cut)
	_, err = Cycle(t.Context(), script(t, `trap 'kill -KILL $$' USR1; printf 'O\nR\nB 0 D 3\nA 0 D 3\n'; while :; do sleep 0.01; done`), &m, cut)
	assert.ErrorContains(t, err, "without cutting the power")

	_, err = Cycle(t.Context(), script(t, `printf 'O\nR\nB 0 C 0 - s0-a\nA 0 C 0 id0 0 -\n'`), &m, Plan{KillAfter: 2})
	assert.ErrorContains(t, err, "stopped before it was killed")

	_, err = Cycle(t.Context(), script(t, `printf 'A 0 C 0 id0 0 -\n'; exec sleep 60`), &m, Plan{KillAfter: 1})
	assert.ErrorContains(t, err, "did not begin")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = Cycle(ctx, script(t, `exec sleep 60`), &m, Plan{KillAfter: 1})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestConfigRoundTrip(t *testing.T) {
	c := Config{Dir: "/d", Sync: "everysec", Writers: 3, Users: 6, Seed: 9, SegmentSize: 4096,
		SnapshotMin: time.Millisecond, SnapshotMax: 2 * time.Millisecond, MaxPerUser: 3,
		RotateGrace: time.Second, PowerCut: true, Mix: DefaultMix(), Hot: 2}
	got, err := DecodeConfig(c.Encode())
	require.NoError(t, err)
	assert.Equal(t, c, got)

	for name, bad := range map[string]Config{
		"sync no":    {Sync: "no", Writers: 1, Users: 1, Hot: 1},
		"no writers": {Sync: "always", Users: 1, Hot: 1},
	} {
		_, err := DecodeConfig(bad.Encode())
		assert.Error(t, err, name)
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix("revoke-user=0, update=50")
	require.NoError(t, err)
	want := DefaultMix()
	want.RevokeUser, want.Update = 0, 50
	assert.Equal(t, want, m)
	again, err := ParseMix(m.String())
	require.NoError(t, err)
	assert.Equal(t, m, again)
	for _, bad := range []string{"create=0", "frob=1", "update", "update=-1", "contended=101"} {
		_, err := ParseMix(bad)
		assert.Error(t, err, bad)
	}
}

// TestScheduleSharesAreExact: a share of cycles is exactly that, so a
// short run still kills inside Open and cuts the power as often as asked.
func TestScheduleSharesAreExact(t *testing.T) {
	s := NewSchedule(Config{MaxPerUser: 3, RotateGrace: time.Minute}, 1)
	s.InOpen, s.PowerCut, s.Uncapped, s.Grace, s.MaxAcks = 0.25, 0.5, 0.25, 1, 10
	inOpen, cuts, uncapped, grace := 0, 0, 0, 0
	for range 8 {
		p := s.Next(nil)
		if p.InOpen {
			inOpen++
			assert.LessOrEqual(t, p.OpenDelay, 25*time.Millisecond)
		}
		if p.Config.PowerCut {
			cuts++
		}
		if p.Config.MaxPerUser == 0 {
			uncapped++
		}
		if p.Config.RotateGrace > 0 {
			grace++
		}
		assert.True(t, p.KillAfter >= 5 && p.KillAfter <= 10, "kill after %d", p.KillAfter)
	}
	assert.Equal(t, []int{2, 4, 2, 8}, []int{inOpen, cuts, uncapped, grace})
}
