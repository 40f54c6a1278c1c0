package redistier

import (
	"errors"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, hd := range []header{
		{kind: 's', version: 1, x: 1_700_000_000_000, idle: 1_800_000, w: 1_699_999_000_000,
			owner: "0123456789abcdef0123456789abcdef", auth: 1_699_999_000_000_123},
		{kind: 'g', version: 9_999_999_999_999_999, x: 1},
	} {
		b := appendHeader(nil, hd)
		if len(b) != hdrLen {
			t.Fatalf("header of %d bytes", len(b))
		}
		got, ok := parseHeader(string(b))
		if !ok || got != hd {
			t.Fatalf("round trip: %+v %v, want %+v", got, ok, hd)
		}
	}
	// Out of range values keep the layout.
	b := appendHeader(nil, header{kind: 's', version: 1 << 62, x: -5, w: 1 << 62})
	if got, ok := parseHeader(string(b)); len(b) != hdrLen || !ok || got.x != 0 || got.version != 9_999_999_999_999_999 {
		t.Fatalf("clamped: %+v %v", got, ok)
	}
	for _, bad := range []string{"", "B", string(b[:hdrLen-1]), "X" + string(b[1:]), string(b[:1]) + "z" + string(b[2:])} {
		if _, ok := parseHeader(bad); ok {
			t.Fatalf("parsed %q", bad)
		}
	}
}

// TestStringLayoutCommands: in LayoutString, an anonymous Create is one
// SET, a lookup that misses one MGET, a Delete one DEL, and none runs a
// script.
func TestStringLayoutCommands(t *testing.T) {
	tp := topologies()[0]
	tp.layout = LayoutString
	a, b := pair(t, tp, Options{})
	adm := admin(t, tp)
	before := profileRedis(t, adm)
	const n = 10
	for range n {
		s := mustCreate(t, a, engine.CreateOptions{Data: []byte("x")})
		if got := mustFind(t, b, s.ID()); string(got.Data()) != "x" {
			t.Fatalf("B reads %q", got.Data())
		}
		if err := a.Delete(ctx, s.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if ca, cb := a.Stats().Commands, b.Stats().Commands; ca != 2*n || cb != n {
		t.Errorf("A sent %d commands, B %d; want %d and %d", ca, cb, 2*n, n)
	}
	d := profileRedis(t, adm).since(before)
	for cmd, want := range map[string]int64{"set": n, "mget": n, "del": n, "evalsha": 0, "eval": 0} {
		if got := d.cmds[cmd].calls; got != want {
			t.Errorf("%s: %d calls, want %d (%v)", cmd, got, want, d.cmds)
		}
	}
}

// TestStringLayoutOwnerIndex: LayoutString's owner index scores sessions
// by absolute expiry and lives as long as its longest-lived member; a
// Delete leaves its member, which a listing drops; an admission drops the
// members past their absolute expiry; SetDeadline moves a member's score.
func TestStringLayoutOwnerIndex(t *testing.T) {
	for _, tp := range topologies() {
		tp.layout = LayoutString
		t.Run(tp.name, func(t *testing.T) { stringLayoutOwnerIndex(t, tp) })
	}
}

func stringLayoutOwnerIndex(t *testing.T, tp topology) {
	clock := engine.NewManualClock(time.Now())
	a, _ := pair(t, tp, Options{Local: engine.Options{Clock: clock}})
	adm := admin(t, tp)
	ik := a.keyOf(kindOwner, a.ownerHash("olga"))
	card := func() int64 {
		t.Helper()
		n, err := adm.Do(ctx, adm.B().Zcard().Key(ik).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var ss []engine.Session
	for range 3 {
		ss = append(ss, mustCreate(t, a, engine.CreateOptions{UserID: "olga", AbsoluteTimeout: 10 * time.Minute}))
	}
	if pttl, _ := adm.Do(ctx, adm.B().Pttl().Key(ik).Build()).AsInt64(); pttl < (9*time.Minute).Milliseconds() || pttl > (10*time.Minute).Milliseconds() {
		t.Fatalf("the index lives %d ms, want its members' absolute expiry", pttl)
	}
	if err := a.Delete(ctx, ss[0].ID()); err != nil {
		t.Fatal(err)
	}
	if n := card(); n != 3 {
		t.Fatalf("%d members after a Delete, want 3 (Delete does not visit the index)", n)
	}
	if list, err := a.UserSessions(ctx, "olga"); err != nil || len(list) != 2 {
		t.Fatalf("UserSessions: %d %v", len(list), err)
	}
	if n := card(); n != 2 {
		t.Fatalf("%d members after a listing, want 2", n)
	}
	d := clock.Now().Add(time.Hour)
	if _, err := a.SetDeadline(ctx, ss[1].ID(), d); err != nil {
		t.Fatal(err)
	}
	score, err := adm.Do(ctx, adm.B().Zscore().Key(ik).Member(ss[1].Handle().String()).Build()).AsFloat64()
	if err != nil || int64(score) != d.UnixMilli() {
		t.Fatalf("score %v after SetDeadline, want %d (%v)", int64(score), d.UnixMilli(), err)
	}
	if pttl, _ := adm.Do(ctx, adm.B().Pttl().Key(ik).Build()).AsInt64(); pttl < (59 * time.Minute).Milliseconds() {
		t.Fatalf("the index lives %d ms after SetDeadline", pttl)
	}
	clock.Advance(11 * time.Minute)
	mustCreate(t, a, engine.CreateOptions{UserID: "olga"})
	if n := card(); n != 2 {
		t.Fatalf("%d members, want 2: the one past its absolute expiry dropped", n)
	}
	if list, err := a.UserSessions(ctx, "olga"); err != nil || len(list) != 2 {
		t.Fatalf("UserSessions: %d %v", len(list), err)
	}
}

// TestMixedLayoutsFailClosed: instances that disagree on the layout do
// not share sessions, and neither serves the other's records.
func TestMixedLayoutsFailClosed(t *testing.T) {
	tp := topologies()[0]
	prefix := freshPrefix()
	h := open(t, tp, Options{KeyPrefix: prefix, Layout: LayoutHash})
	tp.layout = LayoutString
	s := open(t, tp, Options{KeyPrefix: prefix})
	a := mustCreate(t, h, engine.CreateOptions{Data: []byte("a")})
	if _, err := s.Find(ctx, a.ID(), nil); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("a hash record read by a string store: %v", err)
	}
	b := mustCreate(t, s, engine.CreateOptions{Data: []byte("b")})
	if _, err := h.Find(ctx, b.ID(), nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a string record read by a hash store: %v", err)
	}
}
