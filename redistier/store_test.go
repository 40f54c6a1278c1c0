package redistier

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
)

var _ httpsession.Store = (*Store)(nil)

var ctx = context.Background()

// pair returns two instances over tp sharing a fresh prefix.
func pair(t *testing.T, tp topology, opts Options) (*Store, *Store) {
	t.Helper()
	opts.KeyPrefix = freshPrefix()
	return open(t, tp, opts), open(t, tp, opts)
}

func mustCreate(t testing.TB, s *Store, o engine.CreateOptions) engine.Session {
	t.Helper()
	sess, err := s.Create(ctx, o)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return sess
}

func mustFind(t testing.TB, s *Store, id string) engine.Session {
	t.Helper()
	sess, err := s.Find(ctx, id, nil)
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	return sess
}

func TestCreateOnAReadOnB(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		a, b := pair(t, tp, Options{})
		s := mustCreate(t, a, engine.CreateOptions{UserID: "alice", Label: "laptop", Data: []byte("hello")})
		if s.Version() != 1 || s.UserID() != "alice" || s.ID() == "" || s.Handle().IsZero() {
			t.Fatalf("created %+v", s.State())
		}
		if got := mustFind(t, a, s.ID()); got.Version() != 1 || got.ID() != s.ID() {
			t.Fatalf("A reads back %+v", got.State())
		}
		settled(t, b, 1) // the creation's invalidation, so that it cannot take B's copy later
		got := mustFind(t, b, s.ID())
		if string(got.Data()) != "hello" || got.UserID() != "alice" || got.Label() != "laptop" ||
			got.Version() != 1 || got.Handle() != s.Handle() || got.ID() != s.ID() {
			t.Fatalf("B read %+v", got.State())
		}
		if !got.AuthenticatedAt().Equal(s.AuthenticatedAt().Truncate(time.Nanosecond)) {
			t.Fatalf("AuthenticatedAt %v, want %v", got.AuthenticatedAt(), s.AuthenticatedAt())
		}
		reads := b.Stats().Reads
		for range 100 {
			mustFind(t, b, s.ID())
		}
		// In a Cluster, the replica of the session's master, to which B
		// may be connected too, pushes the creation's invalidation again
		// once it has replicated it: it may take B's copy once.
		if st := b.Stats(); st.Reads > reads+1 {
			t.Fatalf("B went to Redis %d times for a session it holds", st.Reads-reads)
		}
	})
}

func TestUpdateOnBSeenOnA(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		a, b := pair(t, tp, Options{})
		s := mustCreate(t, a, engine.CreateOptions{Data: []byte("v1")})
		mustFind(t, b, s.ID())
		u, err := b.Update(ctx, s.ID(), 1, func(cur engine.Session) ([]byte, error) {
			return append(cur.DataCopy(), "+b"...), nil
		})
		if err != nil || u.Version() != 2 || string(u.Data()) != "v1+b" {
			t.Fatalf("Update on B: %v %v", u.State(), err)
		}
		// B reads its own write at once.
		if got := mustFind(t, b, s.ID()); got.Version() != 2 {
			t.Fatalf("B's copy is at version %d", got.Version())
		}
		eventually(t, 2*time.Second, "A sees version 2", func() bool {
			return mustFind(t, a, s.ID()).Version() == 2
		})
		if got := mustFind(t, a, s.ID()); string(got.Data()) != "v1+b" {
			t.Fatalf("A reads %q", got.Data())
		}
	})
}

func TestCompareAndSwapAcrossInstances(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		a, b := pair(t, tp, Options{})
		s := mustCreate(t, a, engine.CreateOptions{Data: []byte("0")})
		mustFind(t, b, s.ID())
		if _, err := a.Update(ctx, s.ID(), 1, func(engine.Session) ([]byte, error) { return []byte("a"), nil }); err != nil {
			t.Fatal(err)
		}
		// B's copy may still say version 1; Redis decides.
		_, err := b.Update(ctx, s.ID(), 1, func(engine.Session) ([]byte, error) { return []byte("b"), nil })
		if !errors.Is(err, engine.ErrVersionConflict) {
			t.Fatalf("stale CAS on B: %v, want ErrVersionConflict", err)
		}
		// Version 0 retries against the newest.
		u, err := b.Update(ctx, s.ID(), 0, func(cur engine.Session) ([]byte, error) {
			return append(cur.DataCopy(), 'b'), nil
		})
		if err != nil || string(u.Data()) != "ab" || u.Version() != 3 {
			t.Fatalf("Update(0): %q v%d %v", u.Data(), u.Version(), err)
		}

		// Many writers on two instances: no update is lost.
		var wg sync.WaitGroup
		for i := range 8 {
			st := []*Store{a, b}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					if _, err := st.Update(ctx, s.ID(), 0, func(cur engine.Session) ([]byte, error) {
						return append(cur.DataCopy(), '.'), nil
					}); err != nil && !errors.Is(err, engine.ErrVersionConflict) {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		got, err := a.read(ctx, s.ID(), s.Handle(), nil, true)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(got.Data()), "."); uint64(n) != got.Version()-3 {
			t.Fatalf("%d increments in %d versions: an update was lost", n, got.Version()-3)
		}
	})
}

func TestDeleteEverywhere(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		a, b := pair(t, tp, Options{})
		s := mustCreate(t, a, engine.CreateOptions{UserID: "u"})
		mustFind(t, b, s.ID())
		if err := a.Delete(ctx, s.ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Find(ctx, s.ID(), nil); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("A after its Delete: %v", err)
		}
		eventually(t, 2*time.Second, "B refuses the deleted ID", func() bool {
			_, err := b.Find(ctx, s.ID(), nil)
			return errors.Is(err, engine.ErrNotFound)
		})
		if err := b.Delete(ctx, s.ID()); err != nil {
			t.Fatalf("Delete of what is gone: %v", err)
		}
		if err := a.Delete(ctx, "not a token"); !errors.Is(err, engine.ErrMalformedToken) {
			t.Fatalf("Delete of garbage: %v", err)
		}
		if n, err := a.UserSessions(ctx, "u"); err != nil || len(n) != 0 {
			t.Fatalf("the owner's index still lists %d (%v)", len(n), err)
		}
	})
}

func TestErrors(t *testing.T) {
	eachLayout(t, topologies()[0], func(t *testing.T, tp topology) {
		a, _ := pair(t, tp, Options{Local: engine.Options{MaxDataSize: 100}})
		if _, err := a.Find(ctx, "garbage", nil); !errors.Is(err, engine.ErrMalformedToken) {
			t.Fatalf("garbage: %v", err)
		}
		other := a.local.NewID() // well formed, never stored
		if _, err := a.Find(ctx, other, nil); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		if _, err := a.Create(ctx, engine.CreateOptions{Data: make([]byte, 101)}); !errors.Is(err, engine.ErrTooLarge) ||
			!strings.HasPrefix(err.Error(), "redistier: ") {
			t.Fatalf("too large: %v", err)
		}
		if _, err := a.Create(ctx, engine.CreateOptions{IdleTimeout: -1}); !errors.Is(err, engine.ErrInvalid) ||
			!strings.HasPrefix(err.Error(), "redistier: ") {
			t.Fatalf("negative timeout: %v", err)
		}
		s := mustCreate(t, a, engine.CreateOptions{})
		if _, err := a.Update(ctx, s.ID(), 0, func(engine.Session) ([]byte, error) { return make([]byte, 101), nil }); !errors.Is(err, engine.ErrTooLarge) {
			t.Fatalf("update too large: %v", err)
		}
		boom := errors.New("boom")
		if _, err := a.Update(ctx, s.ID(), 0, func(engine.Session) ([]byte, error) { return nil, boom }); err != boom {
			t.Fatalf("fn's error: %v", err)
		}
		if _, err := a.SetDeadline(ctx, s.ID(), a.local.Now().Add(-time.Second)); !errors.Is(err, engine.ErrInvalid) {
			t.Fatalf("deadline in the past: %v", err)
		}
		if _, err := a.RevokeUser(ctx, ""); !errors.Is(err, engine.ErrInvalid) {
			t.Fatalf("revoke of no one: %v", err)
		}
		if _, err := a.Update(ctx, other, 0, func(engine.Session) ([]byte, error) { return nil, nil }); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("update of unknown: %v", err)
		}
		// No error holds a session ID.
		for _, err := range []error{
			func() error { _, err := a.Find(ctx, other, nil); return err }(),
			func() error { _, err := a.RotateWith(ctx, other, engine.RotateOptions{UserID: "u"}); return err }(),
			func() error { _, err := a.SetDeadline(ctx, s.ID(), time.Time{}); return err }(),
			func() error {
				_, err := a.Update(ctx, s.ID(), 99, func(engine.Session) ([]byte, error) { return nil, nil })
				return err
			}(),
		} {
			if err == nil || strings.Contains(err.Error(), other) || strings.Contains(err.Error(), s.ID()) {
				t.Fatalf("error %v", err)
			}
		}
		if _, err := New(ctx, Options{}); !errors.Is(err, engine.ErrInvalid) {
			t.Fatalf("no address: %v", err)
		}
		if _, err := New(ctx, Options{Addrs: []string{"127.0.0.1:1"}, DialTimeout: 200 * time.Millisecond}); !errors.Is(err, ErrUnavailable) ||
			!strings.HasPrefix(err.Error(), "redistier:") {
			t.Fatalf("nothing listening: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Find(ctx, s.ID(), nil); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
		if err := a.Close(); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestSetDeadline(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		clock := engine.NewManualClock(time.Now())
		a, b := pair(t, tp, Options{Local: engine.Options{Clock: clock}})
		s := mustCreate(t, a, engine.CreateOptions{})
		mustFind(t, b, s.ID())
		d := clock.Now().Add(time.Minute)
		u, err := a.SetDeadline(ctx, s.ID(), d)
		if err != nil || !u.AbsoluteExpiry().Equal(d) || u.Version() != 2 {
			t.Fatalf("SetDeadline: %v %v", u.AbsoluteExpiry(), err)
		}
		eventually(t, 2*time.Second, "B sees the new deadline", func() bool {
			return mustFind(t, b, s.ID()).AbsoluteExpiry().Equal(d)
		})
		clock.Advance(61 * time.Second)
		for _, st := range []*Store{a, b} {
			if _, err := st.Find(ctx, s.ID(), nil); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("past the deadline: %v", err)
			}
		}
	})
}

func TestFingerprintBinding(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		a, b := pair(t, tp, Options{})
		fp := []byte("Firefox")
		s := mustCreate(t, a, engine.CreateOptions{Fingerprint: fp})
		for _, st := range []*Store{a, b} {
			if _, err := st.Find(ctx, s.ID(), nil); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("no fingerprint: %v", err)
			}
			if _, err := st.Find(ctx, s.ID(), []byte("curl")); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("other fingerprint: %v", err)
			}
			if _, err := st.Find(ctx, s.ID(), fp); err != nil {
				t.Fatalf("its fingerprint: %v", err)
			}
		}
		// Writes do not take a fingerprint, as the engine's do not.
		if _, err := b.Update(ctx, s.ID(), 0, func(engine.Session) ([]byte, error) { return []byte("x"), nil }); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRevocation(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		clock := engine.NewManualClock(time.Now())
		a, b := pair(t, tp, Options{Local: engine.Options{Clock: clock}})
		var ids []engine.Session
		for i := range 4 {
			clock.Advance(time.Millisecond)
			ids = append(ids, mustCreate(t, []*Store{a, b}[i%2], engine.CreateOptions{UserID: "bob", Label: string(rune('A' + i))}))
		}
		anon := mustCreate(t, a, engine.CreateOptions{})
		carol := mustCreate(t, a, engine.CreateOptions{UserID: "carol"})
		for _, s := range ids {
			mustFind(t, a, s.ID())
			mustFind(t, b, s.ID())
		}
		list, err := b.UserSessions(ctx, "bob")
		if err != nil || len(list) != 4 {
			t.Fatalf("UserSessions: %d %v", len(list), err)
		}
		for i, l := range list {
			if l.ID() != "" || l.Handle() != ids[i].Handle() || l.Label() != string(rune('A'+i)) || l.UserID() != "bob" {
				t.Fatalf("listed %d: id %q handle %v label %q", i, l.ID(), l.Handle(), l.Label())
			}
		}
		// One device.
		if err := a.RevokeSession(ctx, "bob", ids[0].Handle()); err != nil {
			t.Fatal(err)
		}
		if err := a.RevokeSession(ctx, "carol", ids[1].Handle()); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("a handle of another user's session: %v", err)
		}
		// The others.
		n, err := b.RevokeOthers(ctx, "bob", ids[3].Handle())
		if err != nil || n != 2 {
			t.Fatalf("RevokeOthers: %d %v", n, err)
		}
		for _, st := range []*Store{a, b} {
			for i, s := range ids[:3] {
				eventually(t, 2*time.Second, "revoked sessions refused", func() bool {
					_, err := st.Find(ctx, s.ID(), nil)
					return errors.Is(err, engine.ErrNotFound)
				})
				_ = i
			}
			mustFind(t, st, ids[3].ID())
		}
		// Everyone.
		n, err = a.RevokeUser(ctx, "bob")
		if err != nil || n != 1 {
			t.Fatalf("RevokeUser: %d %v", n, err)
		}
		if _, err := a.Find(ctx, ids[3].ID(), nil); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("A after its own RevokeUser: %v", err)
		}
		eventually(t, 2*time.Second, "B refuses", func() bool {
			_, err := b.Find(ctx, ids[3].ID(), nil)
			return errors.Is(err, engine.ErrNotFound)
		})
		mustFind(t, b, anon.ID())
		mustFind(t, b, carol.ID())
		if n, err := a.RevokeUser(ctx, "bob"); err != nil || n != 0 {
			t.Fatalf("second RevokeUser: %d %v", n, err)
		}
	})
}

func TestMaxSessionsPerUser(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		clock := engine.NewManualClock(time.Now())
		a, b := pair(t, tp, Options{Local: engine.Options{MaxSessionsPerUser: 2, Clock: clock}})
		first := mustCreate(t, a, engine.CreateOptions{UserID: "dave"})
		clock.Advance(time.Second)
		second := mustCreate(t, b, engine.CreateOptions{UserID: "dave"})
		mustFind(t, b, first.ID())
		clock.Advance(time.Second)
		// A login of an anonymous session takes dave past the cap: the
		// session that authenticated longest ago ends in the same step.
		anon := mustCreate(t, a, engine.CreateOptions{Data: []byte("cart")})
		third, err := a.RotateWith(ctx, anon.ID(), engine.RotateOptions{UserID: "dave"})
		if err != nil {
			t.Fatal(err)
		}
		if string(third.Data()) != "cart" || third.UserID() != "dave" {
			t.Fatalf("login kept %q for %q", third.Data(), third.UserID())
		}
		if _, err := a.Find(ctx, first.ID(), nil); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("the oldest on A: %v", err)
		}
		eventually(t, 2*time.Second, "the oldest refused on B", func() bool {
			_, err := b.Find(ctx, first.ID(), nil)
			return errors.Is(err, engine.ErrNotFound)
		})
		mustFind(t, b, second.ID())
		mustFind(t, b, third.ID())
		if _, err := b.Find(ctx, anon.ID(), nil); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("the anonymous ID after the login: %v", err)
		}
		list, _ := b.UserSessions(ctx, "dave")
		if len(list) != 2 {
			t.Fatalf("dave has %d sessions", len(list))
		}
	})
}

func TestRotation(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		a, b := pair(t, tp, Options{Local: engine.Options{RotateGrace: time.Minute}})
		s := mustCreate(t, a, engine.CreateOptions{UserID: "erin", Data: []byte("d"), Fingerprint: []byte("fp")})
		mustFindFP(t, b, s.ID(), []byte("fp"))
		r, err := a.Rotate(ctx, s.ID())
		if err != nil || r.ID() == s.ID() || r.Version() != 2 || r.UserID() != "erin" || string(r.Data()) != "d" {
			t.Fatalf("Rotate: %v", err)
		}
		for _, st := range []*Store{a, b} {
			var g engine.Session
			eventually(t, 2*time.Second, "the old ID gives a grace view", func() bool {
				g, err = st.Find(ctx, s.ID(), []byte("fp"))
				return err == nil && g.Rotated()
			})
			if g.ID() != s.ID() || g.UserID() != "" || !g.Handle().IsZero() || string(g.Data()) != "d" || g.Version() != r.Version() ||
				!g.AuthenticatedAt().IsZero() || strings.Contains(g.ID(), r.ID()) {
				t.Fatalf("grace view: id same %v user %q handle %v", g.ID() == s.ID(), g.UserID(), g.Handle())
			}
			if _, err := st.Find(ctx, s.ID(), []byte("other")); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("grace view with another fingerprint: %v", err)
			}
			if _, err := st.Update(ctx, s.ID(), 0, func(engine.Session) ([]byte, error) { return nil, nil }); !errors.Is(err, engine.ErrRotated) {
				t.Fatalf("write through the old ID: %v", err)
			}
			if _, err := st.RotateWith(ctx, s.ID(), engine.RotateOptions{}); !errors.Is(err, engine.ErrRotated) {
				t.Fatalf("rotation of the old ID: %v", err)
			}
			mustFindFP(t, st, r.ID(), []byte("fp"))
		}
		// Delete of the old ID ends only its grace.
		if err := b.Delete(ctx, s.ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Find(ctx, s.ID(), []byte("fp")); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("old ID after Delete: %v", err)
		}
		if _, err := a.Find(ctx, r.ID(), []byte("fp")); err != nil {
			t.Fatalf("new ID after the old one's Delete: %v", err)
		}
		// A privileged rotation ends the old ID at once, grace or not.
		p, err := b.RotateWith(ctx, r.ID(), engine.RotateOptions{Privileged: true, Label: "new label"})
		if err != nil || p.Label() != "new label" {
			t.Fatalf("privileged: %v", err)
		}
		if _, err := b.Find(ctx, r.ID(), []byte("fp")); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("after a privileged rotation, on the rotating instance: %v", err)
		}
		eventually(t, 2*time.Second, "A refuses the old ID", func() bool {
			_, err := a.Find(ctx, r.ID(), []byte("fp"))
			return errors.Is(err, engine.ErrNotFound)
		})
		// A login of another user's session moves it to the new owner.
		l, err := a.RotateWith(ctx, p.ID(), engine.RotateOptions{UserID: "frank"})
		if err != nil || l.UserID() != "frank" || !l.AuthenticatedAt().After(s.AuthenticatedAt()) && !l.AuthenticatedAt().Equal(s.AuthenticatedAt()) {
			t.Fatalf("login: %v", err)
		}
		if list, _ := b.UserSessions(ctx, "erin"); len(list) != 0 {
			t.Fatalf("erin still lists %d", len(list))
		}
		if list, _ := b.UserSessions(ctx, "frank"); len(list) != 1 || list[0].Handle() != l.Handle() {
			t.Fatalf("frank lists %d", len(list))
		}
		if !bytes.Equal(mustFindFP(t, b, l.ID(), []byte("fp")).Data(), []byte("d")) {
			t.Fatal("data lost in the login")
		}
	})
}

// settled waits until s has received n invalidations: those of writes
// made so far, which would otherwise take copies made after them.
func settled(t testing.TB, s *Store, n uint64) {
	t.Helper()
	eventually(t, 5*time.Second, "invalidations arrive", func() bool { return s.Stats().Invalidations >= n })
}

func mustFindFP(t *testing.T, s *Store, id string, fp []byte) engine.Session {
	t.Helper()
	sess, err := s.Find(ctx, id, fp)
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	return sess
}

// TestReadYourDelete: on the instance that deleted a session, no lookup
// that began after Delete returned finds it, however many lookups of it
// were under way (their round trips began before, and a lookup may share
// one only if nothing changed since it began). The window it guards is
// narrow: this test catches gross regressions, not every interleaving.
func TestReadYourDelete(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		a, b := pair(t, tp, Options{})
		for round := range 20 {
			s := mustCreate(t, b, engine.CreateOptions{})
			var wg sync.WaitGroup
			var deleted atomic.Int64 // unix ns when Delete returned; 0 before
			stop := make(chan struct{})
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						began := time.Now().UnixNano()
						_, err := a.Find(ctx, s.ID(), nil)
						if d := deleted.Load(); err == nil && d != 0 && began > d {
							t.Errorf("round %d: a lookup that began after Delete returned found the session", round)
							return
						}
					}
				}()
			}
			eventually(t, 2*time.Second, "lookups find it", func() bool {
				_, err := a.Find(ctx, s.ID(), nil)
				return err == nil
			})
			if err := a.Delete(ctx, s.ID()); err != nil {
				t.Fatal(err)
			}
			deleted.Store(time.Now().UnixNano())
			eventually(t, 2*time.Second, "lookups refuse it", func() bool {
				_, err := a.Find(ctx, s.ID(), nil)
				return errors.Is(err, engine.ErrNotFound)
			})
			close(stop)
			wg.Wait()
		}
	})
}

// TestThreeInstances: a session created on A is read on B and C; C logs
// its user out everywhere, and A and B refuse it.
func TestThreeInstances(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		opts := Options{KeyPrefix: freshPrefix()}
		a, b, c := open(t, tp, opts), open(t, tp, opts), open(t, tp, opts)
		s := mustCreate(t, a, engine.CreateOptions{UserID: "ivy", Data: []byte("x")})
		for _, st := range []*Store{a, b, c} {
			if got := mustFind(t, st, s.ID()); got.UserID() != "ivy" {
				t.Fatalf("read %q", got.UserID())
			}
		}
		if n, err := c.RevokeUser(ctx, "ivy"); err != nil || n != 1 {
			t.Fatalf("RevokeUser: %d %v", n, err)
		}
		for _, st := range []*Store{c, a, b} {
			eventually(t, 2*time.Second, "the revoked session is refused", func() bool {
				_, err := st.Find(ctx, s.ID(), nil)
				return errors.Is(err, engine.ErrNotFound)
			})
		}
	})
}
