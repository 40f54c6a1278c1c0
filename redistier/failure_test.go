package redistier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesscache/sesscache/engine"
)

// clientIDs returns the IDs of the connections named name on every node
// of tp, by node address.
func clientIDs(t testing.TB, adm rueidis.Client, name string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for addr, n := range adm.Nodes() {
		list, err := n.Do(ctx, n.B().ClientList().Build()).ToString()
		if err != nil {
			continue // a node that is down
		}
		for _, line := range strings.Split(list, "\n") {
			var id, nm string
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					id = v
				}
				if v, ok := strings.CutPrefix(f, "name="); ok {
					nm = v
				}
			}
			if nm == name && id != "" {
				out[addr] = append(out[addr], id)
			}
		}
	}
	return out
}

// TestClientKillFlushes kills the connections of an instance, and with
// them its invalidations: it must drop every copy at once, then reconnect
// by itself, and never serve what was revoked meanwhile.
func TestClientKillFlushes(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		prefix := freshPrefix()
		a := open(t, tp, Options{KeyPrefix: prefix})
		name := "rt-" + strings.TrimSuffix(freshPrefix(), ":")
		b := open(t, tp, Options{KeyPrefix: prefix, ClientName: name})
		adm := admin(t, tp)
		var ids []string
		for range 20 {
			s := mustCreate(t, a, engine.CreateOptions{UserID: "gina"})
			held(t, b, s.ID())
			ids = append(ids, s.ID())
		}
		// (A late invalidation of a creation may have taken a copy since:
		// correct, if wasteful.)
		if live := b.Stats().Local.Live; live == 0 {
			t.Fatal("B holds no copy")
		}
		conns := clientIDs(t, adm, name)
		if len(conns) == 0 {
			t.Fatal("no connection of B in CLIENT LIST")
		}
		flushes := b.Stats().Flushes
		for addr, list := range conns {
			n := adm.Nodes()[addr]
			for _, id := range list {
				if err := n.Do(ctx, n.B().ClientKill().Id(mustInt(t, id)).Build()).Error(); err != nil {
					t.Fatalf("CLIENT KILL: %v", err)
				}
			}
		}
		eventually(t, 5*time.Second, "B flushes", func() bool { return b.Stats().Flushes > flushes })
		if live := b.Stats().Local.Live; live != 0 {
			t.Fatalf("B still holds %d copies after losing its invalidations", live)
		}
		// Revoked while B's connections were gone: B must refuse.
		if _, err := a.RevokeUser(ctx, "gina"); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if _, err := b.Find(ctx, id, nil); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("B after the revocation: %v", err)
			}
		}
		// And B works again, keeping copies.
		s := mustCreate(t, a, engine.CreateOptions{})
		held(t, b, s.ID())
	})
}

// held reads id on s until s serves it from its own copy: the first read
// of a session just written elsewhere is not kept if the write's
// invalidation arrives while it is under way.
func held(t testing.TB, s *Store, id string) {
	t.Helper()
	eventually(t, 2*time.Second, "a copy is kept", func() bool {
		mustFind(t, s, id)
		reads := s.Stats().Reads
		mustFind(t, s, id)
		return s.Stats().Reads == reads
	})
}

func mustInt(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRedisRestart stops the standalone server and starts it again on the
// same data: writes fail with ErrUnavailable meanwhile, reads fail closed
// (or, with ServeStale, serve copies), and the stores reconnect by
// themselves and find the sessions written before.
func TestRedisRestart(t *testing.T) {
	eachLayout(t, topologies()[0], func(t *testing.T, tp topology) {
		prefix := freshPrefix()
		a := open(t, tp, Options{KeyPrefix: prefix})
		c := open(t, tp, Options{KeyPrefix: prefix, ServeStale: time.Minute})
		s := mustCreate(t, a, engine.CreateOptions{UserID: "hank", Data: []byte("kept")})
		settled(t, c, 1) // the creation's invalidation, which would take C's copy if it came later
		held(t, c, s.ID())
		port := tp.addrs[0][strings.LastIndexByte(tp.addrs[0], ':')+1:]

		adm := admin(t, tp)
		// SHUTDOWN writes and fsyncs the append-only file before it exits.
		adm.Do(ctx, adm.B().Shutdown().Nosave().Build())
		restarted := false
		t.Cleanup(func() {
			if !restarted {
				redisScript(t, "restart", redisDir, port)
			}
		})
		eventually(t, 5*time.Second, "A notices", func() bool { return a.Stats().Flushes > 0 })

		tctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if _, err := a.Find(tctx, s.ID(), nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("A's read while Redis is down: %v, want ErrUnavailable", err)
		}
		if _, err := a.Create(tctx, engine.CreateOptions{}); !errors.Is(err, ErrUnavailable) || !strings.HasPrefix(err.Error(), "redistier: ") {
			t.Fatalf("A's write while Redis is down: %v", err)
		}
		if err := a.Delete(tctx, s.ID()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("A's delete while Redis is down: %v", err)
		}
		// ServeStale: C serves its copy from memory meanwhile.
		if got, err := c.Find(ctx, s.ID(), nil); err != nil || string(got.Data()) != "kept" {
			t.Fatalf("C under ServeStale: %v", err)
		}

		redisScript(t, "restart", redisDir, port)
		restarted = true
		eventually(t, 10*time.Second, "A reads again", func() bool {
			got, err := a.Find(ctx, s.ID(), nil)
			return err == nil && string(got.Data()) == "kept"
		})
		eventually(t, 10*time.Second, "C drops its unverified copies", func() bool {
			return c.degradedSince.Load() == 0 && c.Stats().Flushes > 0
		})
		if _, err := c.Update(ctx, s.ID(), 0, func(engine.Session) ([]byte, error) { return []byte("new"), nil }); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, "A sees the update", func() bool {
			got, err := a.Find(ctx, s.ID(), nil)
			return err == nil && string(got.Data()) == "new"
		})
	})
}

// masterOf returns the address of the master that serves key.
func masterOf(t *testing.T, adm rueidis.Client, key string) string {
	t.Helper()
	slot, err := adm.Do(ctx, adm.B().ClusterKeyslot().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := adm.Do(ctx, adm.B().ClusterNodes().Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			l, _ := strconv.ParseInt(lo, 10, 64)
			h, _ := strconv.ParseInt(hi, 10, 64)
			if slot >= l && slot <= h {
				return f[1][:strings.IndexByte(f[1], '@')]
			}
		}
	}
	t.Fatalf("no master for slot %d", slot)
	return ""
}

// TestClusterFailover kills the master that holds a session; its replica
// takes over, and both instances go on working, having dropped the copies
// whose invalidations they lost.
func TestClusterFailover(t *testing.T) {
	tp := topologies()[1]
	a, b := pair(t, tp, Options{})
	adm := admin(t, tp)
	var ids []engine.Session
	for i := range 30 {
		s := mustCreate(t, a, engine.CreateOptions{UserID: fmt.Sprintf("user%d", i), Data: []byte("d")})
		mustFind(t, b, s.ID())
		ids = append(ids, s)
	}
	victim := masterOf(t, adm, a.keyOf(kindRecord, ids[0].Handle()))
	// Replication is asynchronous: wait until the replica has what was
	// acknowledged, as an application that needs it would (WAIT).
	n := adm.Nodes()[victim]
	if got, err := n.Do(ctx, n.B().Wait().Numreplicas(1).Timeout(5000).Build()).AsInt64(); err != nil || got < 1 {
		t.Fatalf("WAIT: %d %v", got, err)
	}
	port := victim[strings.LastIndexByte(victim, ':')+1:]
	flushes := b.Stats().Flushes
	redisScript(t, "kill", redisDir, port)
	t.Cleanup(func() {
		redisScript(t, "restart", redisDir, port)
		// Back as a replica of the promoted node, and the cluster whole.
		eventually(t, 30*time.Second, "the killed node rejoins", func() bool {
			c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{victim}, DisableCache: true, ForceSingleClient: true})
			if err != nil {
				return false
			}
			defer c.Close()
			info, err := c.Do(ctx, c.B().Info().Section("replication").Build()).ToString()
			ci, err2 := c.Do(ctx, c.B().ClusterInfo().Build()).ToString()
			return err == nil && err2 == nil && strings.Contains(info, "master_link_status:up") && strings.Contains(ci, "cluster_state:ok")
		})
	})
	eventually(t, 5*time.Second, "B drops its copies", func() bool { return b.Stats().Flushes > flushes })
	eventually(t, 30*time.Second, "the session is served again", func() bool {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := b.Find(tctx, ids[0].ID(), nil)
		return err == nil
	})
	for _, s := range ids {
		eventually(t, 10*time.Second, "every session readable", func() bool {
			_, err := b.Find(ctx, s.ID(), nil)
			return err == nil
		})
	}
	// Writes and revocations work, and reach the other instance. A's
	// first command to the dead master fails and makes its client refresh
	// the slot map (it also does every TopologyInterval).
	var u engine.Session
	eventually(t, 5*time.Second, "A writes again", func() bool {
		var err error
		u, err = a.Update(ctx, ids[0].ID(), 0, func(engine.Session) ([]byte, error) { return []byte("after"), nil })
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
		return err == nil
	})
	eventually(t, 2*time.Second, "B sees the update", func() bool {
		got, err := b.Find(ctx, ids[0].ID(), nil)
		return err == nil && got.Version() == u.Version()
	})
	if _, err := a.RevokeUser(ctx, "user0"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "B refuses the revoked session", func() bool {
		_, err := b.Find(ctx, ids[0].ID(), nil)
		return errors.Is(err, engine.ErrNotFound)
	})
}

// TestReadInvalidationRace writes on A while B reads the same sessions
// from many goroutines: whatever the interleaving of B's reads and the
// invalidations, once the writes stop B must converge to the last version
// (a read that stored its reply after the invalidation for it would keep a
// stale copy forever).
func TestReadInvalidationRace(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		a, b := pair(t, tp, Options{})
		var ss []engine.Session
		for range 4 {
			ss = append(ss, mustCreate(t, a, engine.CreateOptions{}))
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					b.Find(ctx, ss[(g+i)%len(ss)].ID(), nil) //nolint:errcheck
				}
			}()
		}
		final := make([]uint64, len(ss))
		for i := range 200 {
			k := i % len(ss)
			u, err := a.Update(ctx, ss[k].ID(), 0, func(cur engine.Session) ([]byte, error) {
				return []byte(strconv.Itoa(i)), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			final[k] = u.Version()
		}
		close(stop)
		wg.Wait()
		for k, s := range ss {
			eventually(t, 2*time.Second, "B converges", func() bool {
				got, err := b.Find(ctx, s.ID(), nil)
				return err == nil && got.Version() == final[k]
			})
		}
		if b.Stats().Invalidations == 0 {
			t.Fatal("B received no invalidation")
		}
	})
}

// TestTTLExpiry lets Redis expire a session by its own clock: the record
// goes, and every instance refuses it.
func TestTTLExpiry(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		a, b := pair(t, tp, Options{})
		adm := admin(t, tp)
		s := mustCreate(t, a, engine.CreateOptions{AbsoluteTimeout: time.Second})
		mustFind(t, b, s.ID())
		rk := a.keyOf(kindRecord, s.Handle())
		if n, _ := adm.Do(ctx, adm.B().Exists().Key(rk).Build()).AsInt64(); n != 1 {
			t.Fatal("no record in Redis")
		}
		eventually(t, 10*time.Second, "Redis expires the record", func() bool {
			n, err := adm.Do(ctx, adm.B().Exists().Key(rk).Build()).AsInt64()
			return err == nil && n == 0
		})
		// Refused once the expiry's invalidation arrives, or the copy's
		// own deadline passes on the engine's coarse clock (up to a
		// ClockResolution late), whichever comes first.
		for _, st := range []*Store{a, b} {
			eventually(t, 2*time.Second, "refused after expiry", func() bool {
				_, err := st.Find(ctx, s.ID(), nil)
				return errors.Is(err, engine.ErrNotFound)
			})
		}
	})
}

// TestSlidingExpiry uses a manual clock: a session used every minute on A
// only stays alive on B too, because A writes its accesses behind (about
// one write per minute), and those writes do not evict B's copy. Once
// unused past its idle timeout, it is gone on both.
func TestSlidingExpiry(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		clock := engine.NewManualClock(time.Now())
		opts := Options{TouchFlushInterval: 5 * time.Millisecond,
			Local: engine.Options{Clock: clock, IdleTimeout: 10 * time.Minute, TouchLogInterval: time.Minute}}
		a, b := pair(t, tp, opts)
		s := mustCreate(t, a, engine.CreateOptions{})
		settled(t, a, ownEchoes(a)) // the creation's invalidation, on both
		settled(t, b, 1)
		mustFind(t, a, s.ID())
		mustFind(t, b, s.ID())
		inval := b.Stats().Invalidations
		writes := func() uint64 { st := a.Stats(); return st.Touches + st.Reads }
		start := writes()
		for range 30 {
			clock.Advance(time.Minute)
			before := writes()
			mustFind(t, a, s.ID())
			// A hit writes the access behind; a miss (a replica's late
			// duplicate invalidation may have taken A's copy) records it
			// in the read.
			eventually(t, 2*time.Second, "A records the access in Redis", func() bool { return writes() > before })
		}
		if n := writes() - start; n > 31 {
			t.Fatalf("%d access writes in 30 minutes of use", n)
		}
		// (One may be a replica's late copy of the creation's invalidation.)
		if got := b.Stats().Invalidations; got > inval+1 {
			t.Fatalf("touches invalidated B's copy %d times", got-inval)
		}
		// 30 minutes on, 20 past the idle timeout of B's own copy: B asks
		// Redis, which has A's accesses.
		got, err := b.Find(ctx, s.ID(), nil)
		if err != nil {
			t.Fatalf("B after 30 minutes of use on A: %v", err)
		}
		if la := got.LastAccess(); clock.Now().Sub(la) > 2*time.Minute {
			t.Fatalf("B sees the last access %v ago", clock.Now().Sub(la))
		}
		clock.Advance(10*time.Minute + a.opts.Local.TouchLogInterval + time.Duration(a.slackMS)*time.Millisecond)
		for _, st := range []*Store{a, b} {
			if _, err := st.Find(ctx, s.ID(), nil); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("idle past its timeout: %v", err)
			}
		}
	})
}

// TestHitAllocs: a lookup that hits the local copy allocates nothing.
func TestHitAllocs(t *testing.T) {
	eachLayout(t, topologies()[0], func(t *testing.T, tp topology) {
		a, _ := pair(t, tp, Options{})
		s := mustCreate(t, a, engine.CreateOptions{Data: []byte("x")})
		settled(t, a, ownEchoes(a)) // its own creation's invalidation, if it comes
		mustFind(t, a, s.ID())
		reads := a.Stats().Reads
		n := testing.AllocsPerRun(1000, func() {
			if _, err := a.Find(ctx, s.ID(), nil); err != nil {
				t.Fatal(err)
			}
		})
		if a.Stats().Reads != reads {
			t.Fatal("the lookups went to Redis")
		}
		if !raceEnabled && n != 0 {
			t.Fatalf("%v allocations per hit", n)
		}
	})
}

// TestCloseStopsGoroutines: every goroutine a Store starts, its client's
// included, is gone after Close.
func TestCloseStopsGoroutines(t *testing.T) {
	if left := leftover(); len(left) > 0 {
		t.Fatalf("goroutines of earlier tests:\n%s", strings.Join(left, "\n\n"))
	}
	for _, tp := range topologies() {
		for _, l := range layouts {
			s, err := New(ctx, Options{Addrs: tp.addrs, Layout: l, KeyPrefix: freshPrefix(), TouchFlushInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			sess, err := s.Create(ctx, engine.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s.Find(ctx, sess.ID(), nil) //nolint:errcheck
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if left := leftover(); len(left) > 0 {
		t.Fatalf("%d goroutines outlived Close:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

// TestCloseRacingLookups closes stores while lookups are under way on
// connections just killed, so that the lookups dial new ones as Close
// runs: no connection, and no goroutine of one, outlives Close. (rueidis
// closes its connections from goroutines of its own, and a dial under way
// then used to install a connection nothing closed.)
func TestCloseRacingLookups(t *testing.T) {
	if left := leftover(); len(left) > 0 {
		t.Fatalf("goroutines of earlier tests:\n%s", strings.Join(left, "\n\n"))
	}
	for _, tp := range topologies() {
		adm, closeAdmin, err := newAdmin(tp)
		if err != nil {
			t.Fatal(err)
		}
		for round := range 30 {
			name := "cr-" + strings.TrimSuffix(freshPrefix(), ":")
			s, err := New(ctx, Options{Addrs: tp.addrs, KeyPrefix: freshPrefix(), ClientName: name})
			if err != nil {
				closeAdmin()
				t.Fatal(err)
			}
			var ids []string
			for range 16 {
				ids = append(ids, mustCreate(t, s, engine.CreateOptions{}).ID())
			}
			for addr, list := range clientIDs(t, adm, name) {
				n := adm.Nodes()[addr]
				for _, id := range list {
					n.Do(ctx, n.B().ClientKill().Id(mustInt(t, id)).Build()) //nolint:errcheck // gone already is fine
				}
			}
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := g; ; i++ {
						if _, err := s.Find(ctx, ids[i%len(ids)], nil); errors.Is(err, engine.ErrClosed) {
							return
						}
					}
				})
			}
			for range round % 5 { // vary where in the reconnection Close lands
				s.Find(ctx, ids[0], nil) //nolint:errcheck
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			wg.Wait()
			if n := s.conns.open(); n != 0 {
				t.Errorf("%s: %d connections open after Close", tp.name, n)
			}
		}
		closeAdmin()
	}
	if left := leftover(); len(left) > 0 {
		t.Fatalf("%d goroutines outlived Close:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

// TestLoginAcrossSlotsUndoes: a login that moves an anonymous session into
// its owner's slot places the new record first and commits by a
// compare-and-swap on the old one. When that fails (A's copy was behind a
// write on B), the placed record is deleted again, and the retry, against
// Redis, moves the newest data: no orphan, nothing half-applied.
func TestLoginAcrossSlotsUndoes(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		a, b := pair(t, tp, Options{})
		s := mustCreate(t, a, engine.CreateOptions{Data: []byte("v1")})
		user := ""
		for i := 0; user == ""; i++ {
			if u := "user-" + strconv.Itoa(i); a.ownerHash(u)[0] != s.Handle()[0] {
				user = u // an owner in another slot than the session
			}
		}
		old, err := a.read(ctx, s.ID(), s.Handle(), nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Update(ctx, s.ID(), 1, func(engine.Session) ([]byte, error) { return []byte("v2"), nil }); err != nil {
			t.Fatal(err)
		}
		// Put A's copy back at version 1, as if B's invalidation were late.
		settled(t, a, ownEchoes(a)+1) // its creation's (if it comes) and B's update's
		st := old.State()
		sh := a.shardOf(s.Handle())
		sh.mu.Lock()
		a.local.DropReplica(s.ID())
		if _, err := a.local.PutReplica(s.ID(), st); err != nil {
			t.Fatal(err)
		}
		sh.ids[s.Handle()] = s.ID()
		sh.mu.Unlock()
		if got, _ := a.local.Find(ctx, s.ID(), nil); got.Version() != 1 {
			t.Fatal("A's copy is not behind")
		}

		undos := a.stats.undos.Load()
		l, err := a.RotateWith(ctx, s.ID(), engine.RotateOptions{UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		if a.stats.undos.Load() != undos+1 {
			t.Fatal("the first attempt was not undone: A's copy was not used")
		}
		if string(l.Data()) != "v2" || l.Version() != 3 || l.UserID() != user {
			t.Fatalf("login moved %q at version %d", l.Data(), l.Version())
		}
		list, err := b.UserSessions(ctx, user)
		if err != nil || len(list) != 1 || list[0].Handle() != l.Handle() {
			t.Fatalf("the owner lists %d sessions (%v)", len(list), err)
		}
		records := 0
		for k := range everything(t, admin(t, tp), a.prefix+"s:") {
			records++
			if k != a.keyOf(kindRecord, l.Handle()) {
				t.Fatalf("a record left behind")
			}
		}
		if records != 1 {
			t.Fatalf("%d records", records)
		}
		if _, err := b.Find(ctx, s.ID(), nil); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("the anonymous ID after the login: %v", err)
		}
	})
}

// BenchmarkInvalidationLoss measures how long an instance whose
// connections to Redis are killed (and with them its invalidations) can
// still serve a local copy: from the first CLIENT KILL to the flush that
// drops every copy, after which each lookup asks Redis, so a revocation
// made elsewhere meanwhile is refused (TestClientKillFlushes checks that).
// The time includes the CLIENT KILL round trips, so it bounds the window
// from above. Reported: p50, p99 and max over b.N kills, in µs (run with
// -benchtime 200x). BenchmarkHungRedis measures a connection that hangs
// open instead.
func BenchmarkInvalidationLoss(b *testing.B) {
	tp := benchTopology()
	prefix := freshPrefix()
	a := open(b, tp, Options{KeyPrefix: prefix})
	name := "rt-" + strings.TrimSuffix(freshPrefix(), ":")
	// Quiet: each flush is logged, which would break the benchmark's lines.
	inst := open(b, tp, Options{KeyPrefix: prefix, ClientName: name, Logger: slog.New(slog.DiscardHandler)})
	adm := admin(b, tp)
	s := mustCreate(b, a, engine.CreateOptions{})
	window := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		held(b, inst, s.ID())
		conns := clientIDs(b, adm, name)
		if len(conns) == 0 {
			b.Fatal("no connection of the instance in CLIENT LIST")
		}
		flushes := inst.Stats().Flushes
		b.StartTimer()
		start := time.Now()
		for addr, list := range conns {
			n := adm.Nodes()[addr]
			for _, id := range list {
				if err := n.Do(ctx, n.B().ClientKill().Id(mustInt(b, id)).Build()).Error(); err != nil {
					b.Fatalf("CLIENT KILL: %v", err)
				}
			}
		}
		window = append(window, awaitFlush(b, inst, flushes, start, 10*time.Second, "losing the connections"))
	}
	b.StopTimer()
	reportWindow(b, window, time.Microsecond, "us")
}

// awaitFlush spins until s has flushed since it counted flushes, and
// returns the time since start; it fails b if that takes longer than
// limit after start, which what names.
func awaitFlush(b *testing.B, s *Store, flushes uint64, start time.Time, limit time.Duration, what string) time.Duration {
	deadline := start.Add(limit)
	for s.Stats().Flushes == flushes {
		if time.Now().After(deadline) {
			b.Fatalf("no flush within %v of %s", limit, what)
		}
		runtime.Gosched()
	}
	return time.Since(start)
}

// reportWindow reports the p50, p99 and max of window in unit (named by
// suffix), and returns the max.
func reportWindow(b *testing.B, window []time.Duration, unit time.Duration, suffix string) time.Duration {
	slices.Sort(window)
	in := func(d time.Duration) float64 { return float64(d) / float64(unit) }
	top := window[len(window)-1]
	b.ReportMetric(in(window[len(window)/2]), "p50-"+suffix)
	b.ReportMetric(in(window[min(len(window)-1, len(window)*99/100)]), "p99-"+suffix)
	b.ReportMetric(in(top), "max-"+suffix)
	return top
}
