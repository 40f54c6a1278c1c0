package engine

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/internal/leakcheck"
	"github.com/sesscache/sesscache/token"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// bg is the context the tests' writes run under.
var bg = context.Background()

// open returns an engine on a manual clock that reaps only when the test
// calls reap, closed when the test ends.
func open(t testing.TB, o Options) (*Engine, *Clock) {
	t.Helper()
	if o.Clock == nil {
		o.Clock = NewManualClock(epoch)
	}
	o.manualReap = true
	e, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e, o.Clock
}

func mustCreate(t testing.TB, e *Engine, o CreateOptions) Session {
	t.Helper()
	s, err := e.Create(bg, o)
	require.NoError(t, err)
	return s
}

func setData(data string) func(Session) ([]byte, error) {
	return func(Session) ([]byte, error) { return []byte(data), nil }
}

func TestCreateAndGet(t *testing.T) {
	e, _ := open(t, Options{})
	s := mustCreate(t, e, CreateOptions{UserID: "alice", Data: []byte("cart=1")})
	require.Len(t, s.ID(), token.Len)
	assert.Equal(t, "alice", s.UserID())
	assert.Equal(t, []byte("cart=1"), s.Data())
	assert.Equal(t, uint64(1), s.Version())
	assert.Equal(t, epoch, s.CreatedAt().UTC())
	assert.Equal(t, epoch, s.LastAccess().UTC())
	assert.Equal(t, 30*time.Minute, s.IdleTimeout())
	assert.Equal(t, epoch.Add(12*time.Hour), s.AbsoluteExpiry().UTC(), "ASVS 3.3.2: re-authenticate every 12 hours")
	assert.Equal(t, epoch.Add(30*time.Minute), s.Deadline().UTC())

	got, err := e.Get(s.ID())
	require.NoError(t, err)
	assert.Equal(t, s.ID(), got.ID())
	assert.Equal(t, []byte("cart=1"), got.Data())
	assert.Equal(t, 1, e.Len())
}

func TestCreateCopiesData(t *testing.T) {
	e, _ := open(t, Options{})
	data := []byte("abc")
	s := mustCreate(t, e, CreateOptions{Data: data})
	data[0] = 'X'
	got, err := e.Get(s.ID())
	require.NoError(t, err)
	assert.Equal(t, []byte("abc"), got.Data())
	cp := got.DataCopy()
	cp[0] = 'Y'
	assert.Equal(t, []byte("abc"), got.Data())
}

func TestZeroSession(t *testing.T) {
	var s Session
	assert.True(t, s.IsZero())
	assert.Equal(t, "", s.ID())
	assert.Nil(t, s.Data())
	assert.Equal(t, uint64(0), s.Version())
	assert.True(t, s.CreatedAt().IsZero())
	assert.True(t, s.Deadline().IsZero())
}

func TestGetErrors(t *testing.T) {
	e, _ := open(t, Options{})
	_, err := e.Get("not a token")
	assert.ErrorIs(t, err, ErrMalformedToken)
	_, err = e.Get(token.New().String())
	assert.ErrorIs(t, err, ErrNotFound)
	assert.NotErrorIs(t, err, ErrExpired)
	st := e.Stats()
	assert.Equal(t, uint64(2), st.Misses, "a malformed token is a miss too: it is what guessing IDs drives")
}

func TestErrorsNeverContainTheID(t *testing.T) {
	e, clock := open(t, Options{MaxDataSize: 4})
	s := mustCreate(t, e, CreateOptions{})
	errs := []error{}
	_, err := e.Update(bg, s.ID(), 0, setData("too large"))
	errs = append(errs, err)
	_, err = e.Update(bg, s.ID(), 99, setData("x"))
	errs = append(errs, err)
	clock.Advance(time.Hour)
	_, err = e.Get(s.ID())
	errs = append(errs, err)
	err = e.Delete(bg, s.ID()[:10])
	errs = append(errs, err)
	_, err = e.Get(s.ID()[:10])
	errs = append(errs, err)
	for _, err := range errs {
		require.Error(t, err)
		assert.NotContains(t, err.Error(), s.ID())
		assert.NotContains(t, err.Error(), s.ID()[:10])
	}
}

func TestIdleExpiryAndSlidingTouch(t *testing.T) {
	e, clock := open(t, Options{IdleTimeout: 10 * time.Minute})
	s := mustCreate(t, e, CreateOptions{})

	clock.Advance(9 * time.Minute)
	got, err := e.Get(s.ID())
	require.NoError(t, err, "still inside the idle timeout")
	assert.Equal(t, epoch.Add(9*time.Minute), got.LastAccess().UTC(), "Get records the access")

	clock.Advance(9 * time.Minute) // 18 min after creation, 9 after the touch
	_, err = e.Get(s.ID())
	require.NoError(t, err, "the touch moved the deadline")

	clock.Advance(10 * time.Minute)
	_, err = e.Get(s.ID())
	assert.ErrorIs(t, err, ErrExpired)
	assert.ErrorIs(t, err, ErrNotFound, "expired also matches not found")
	assert.Equal(t, 1, e.Len(), "invisible before the janitor reaps it")
	assert.Equal(t, 1, e.reapNow())
	assert.Equal(t, 0, e.Len())
	_, err = e.Get(s.ID())
	assert.ErrorIs(t, err, ErrNotFound)
	st := e.Stats()
	assert.Equal(t, uint64(1), st.Expired, "one session expired once, however often it was read after")
	assert.Equal(t, uint64(2), st.Misses, "each read after the deadline is a miss")
}

func TestAbsoluteExpiryBeatsActivity(t *testing.T) {
	e, clock := open(t, Options{IdleTimeout: time.Hour, AbsoluteTimeout: 2 * time.Hour})
	s := mustCreate(t, e, CreateOptions{})
	for range 7 {
		clock.Advance(15 * time.Minute)
		_, err := e.Get(s.ID())
		require.NoError(t, err)
	}
	clock.Advance(15 * time.Minute) // exactly 2 h
	_, err := e.Get(s.ID())
	assert.ErrorIs(t, err, ErrExpired)
}

func TestPerSessionTimeouts(t *testing.T) {
	e, clock := open(t, Options{})
	short := mustCreate(t, e, CreateOptions{IdleTimeout: time.Minute})
	brief := mustCreate(t, e, CreateOptions{AbsoluteTimeout: 5 * time.Minute})
	normal := mustCreate(t, e, CreateOptions{})
	clock.Advance(2 * time.Minute)
	_, err := e.Get(short.ID())
	assert.ErrorIs(t, err, ErrExpired)
	_, err = e.Get(brief.ID())
	assert.NoError(t, err)
	clock.Advance(4 * time.Minute)
	_, err = e.Get(brief.ID())
	assert.ErrorIs(t, err, ErrExpired)
	_, err = e.Get(normal.ID())
	assert.NoError(t, err)

	_, err = e.Create(bg, CreateOptions{IdleTimeout: -time.Second})
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestTouchedSessionIsRepushedNotReaped(t *testing.T) {
	e, clock := open(t, Options{IdleTimeout: 10 * time.Minute})
	s := mustCreate(t, e, CreateOptions{})
	clock.Advance(8 * time.Minute)
	_, err := e.Get(s.ID())
	require.NoError(t, err)
	clock.Advance(5 * time.Minute) // past the deadline the heap holds
	assert.Equal(t, 0, e.reapNow(), "the janitor re-pushes a touched session")
	_, err = e.Get(s.ID())
	require.NoError(t, err)
	clock.Advance(11 * time.Minute)
	assert.Equal(t, 1, e.reapNow())
}

func TestReapingIsBudgeted(t *testing.T) {
	e, clock := open(t, Options{Shards: 1, ReapBudget: 10, IdleTimeout: time.Minute})
	for range 35 {
		mustCreate(t, e, CreateOptions{})
	}
	clock.Advance(2 * time.Minute)
	assert.Equal(t, 10, e.reapNow(), "one visit removes at most the budget")
	assert.Equal(t, 10, e.reapNow())
	assert.Equal(t, 10, e.reapNow())
	assert.Equal(t, 5, e.reapNow())
	assert.Equal(t, 0, e.Len())
}

func TestJanitorReapsOnItsOwn(t *testing.T) {
	// With the engine's own clock the janitor both advances time and reaps;
	// a 1 ms idle timeout expires within a few ticks.
	e, err := Open(Options{IdleTimeout: time.Millisecond, ClockResolution: time.Millisecond})
	require.NoError(t, err)
	defer e.Close()
	mustCreate(t, e, CreateOptions{})
	require.Eventually(t, func() bool { return e.Len() == 0 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, uint64(1), e.Stats().Expired)
}

func TestUpdate(t *testing.T) {
	e, clock := open(t, Options{})
	s := mustCreate(t, e, CreateOptions{UserID: "u", Data: []byte("v1")})
	clock.Advance(time.Minute)
	var seen []byte
	u, err := e.Update(bg, s.ID(), 0, func(cur Session) ([]byte, error) {
		seen = cur.Data()
		return append(cur.DataCopy(), "+v2"...), nil
	})
	require.NoError(t, err)
	assert.Equal(t, []byte("v1"), seen)
	assert.Equal(t, []byte("v1+v2"), u.Data())
	assert.Equal(t, uint64(2), u.Version())
	assert.Equal(t, "u", u.UserID(), "the owner is kept")
	assert.Equal(t, epoch.Add(time.Minute), u.LastAccess().UTC(), "a write is an access")
	assert.Equal(t, []byte("v1"), s.Data(), "a Session already returned does not change")

	got, err := e.Get(s.ID())
	require.NoError(t, err)
	assert.Equal(t, []byte("v1+v2"), got.Data())
}

func TestUpdateErrorsLeaveStateAsItWas(t *testing.T) {
	e, clock := open(t, Options{MaxDataSize: 8})
	s := mustCreate(t, e, CreateOptions{Data: []byte("keep")})
	boom := errors.New("boom")
	cases := []struct {
		name    string
		id      string
		version uint64
		fn      func(Session) ([]byte, error)
		want    error
	}{
		{"fn fails", s.ID(), 0, func(Session) ([]byte, error) { return nil, boom }, boom},
		{"too large", s.ID(), 0, setData("123456789"), ErrTooLarge},
		{"stale version", s.ID(), 7, setData("x"), ErrVersionConflict},
		{"unknown", token.New().String(), 0, setData("x"), ErrNotFound},
		{"malformed", "!", 0, setData("x"), ErrMalformedToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.Update(bg, c.id, c.version, c.fn)
			assert.ErrorIs(t, err, c.want)
			got, err := e.Get(s.ID())
			require.NoError(t, err)
			assert.Equal(t, []byte("keep"), got.Data())
			assert.Equal(t, uint64(1), got.Version())
		})
	}
	clock.Advance(time.Hour)
	_, err := e.Update(bg, s.ID(), 0, setData("x"))
	assert.ErrorIs(t, err, ErrExpired)
}

// TestUpdateCompareAndSwap has many goroutines increment one counter with
// read, compute, write-if-unchanged; no increment may be lost.
func TestUpdateCompareAndSwap(t *testing.T) {
	e, _ := open(t, Options{})
	s := mustCreate(t, e, CreateOptions{Data: []byte{0, 0}})
	const workers, each = 8, 200
	var wg sync.WaitGroup
	var conflicts sync.Map
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				for {
					cur, err := e.Get(s.ID())
					if !assert.NoError(t, err) {
						return
					}
					n := int(cur.Data()[0]) | int(cur.Data()[1])<<8
					_, err = e.Update(bg, s.ID(), cur.Version(), setData(string([]byte{byte(n + 1), byte((n + 1) >> 8)})))
					if errors.Is(err, ErrVersionConflict) {
						conflicts.Store(w, true)
						continue
					}
					if !assert.NoError(t, err) {
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	got, err := e.Get(s.ID())
	require.NoError(t, err)
	n := int(got.Data()[0]) | int(got.Data()[1])<<8
	assert.Equal(t, workers*each, n)
	assert.Equal(t, uint64(workers*each+1), got.Version())
}

// TestUpdateWithoutVersionRetries checks that fn is re-run on the newer
// session when another write lands between read and write, so a
// read-modify-write without a version loses nothing either.
func TestUpdateWithoutVersionRetries(t *testing.T) {
	e, _ := open(t, Options{})
	s := mustCreate(t, e, CreateOptions{Data: []byte("a")})
	calls := 0
	_, err := e.Update(bg, s.ID(), 0, func(cur Session) ([]byte, error) {
		calls++
		if calls == 1 {
			// Another writer gets in first; fn may call the engine because
			// it runs without a lock.
			_, err := e.Update(bg, s.ID(), 0, func(c Session) ([]byte, error) {
				return append(c.DataCopy(), 'b'), nil
			})
			require.NoError(t, err)
		}
		return append(cur.DataCopy(), 'c'), nil
	})
	require.NoError(t, err)
	assert.Equal(t, 2, calls)
	got, err := e.Get(s.ID())
	require.NoError(t, err)
	assert.Equal(t, []byte("abc"), got.Data())
	assert.Equal(t, uint64(3), got.Version())
}

func TestDelete(t *testing.T) {
	e, clock := open(t, Options{})
	s := mustCreate(t, e, CreateOptions{UserID: "u"})
	require.NoError(t, e.Delete(bg, s.ID()))
	_, err := e.Get(s.ID())
	assert.ErrorIs(t, err, ErrNotFound)
	assert.NoError(t, e.Delete(bg, s.ID()), "deleting what is gone succeeds, as scs's stores do")
	assert.NoError(t, e.Delete(bg, token.New().String()), "so does deleting what never was")
	assert.ErrorIs(t, e.Delete(bg, "not a token"), ErrMalformedToken)
	assert.Equal(t, 0, e.Len())
	assert.Equal(t, 0, e.users.count("u"))

	old := mustCreate(t, e, CreateOptions{})
	clock.Advance(time.Hour)
	assert.NoError(t, e.Delete(bg, old.ID()), "an expired session too")
	assert.Equal(t, 0, e.Len(), "and it is removed")
	st := e.Stats()
	assert.Equal(t, uint64(1), st.Deleted)
	assert.Equal(t, uint64(1), st.Expired, "counted as expired, not deleted")
}

func TestRotate(t *testing.T) {
	e, clock := open(t, Options{})
	s := mustCreate(t, e, CreateOptions{UserID: "alice", Data: []byte("d")})
	clock.Advance(time.Minute)
	r, err := e.Rotate(bg, s.ID())
	require.NoError(t, err)
	assert.NotEqual(t, s.ID(), r.ID())
	assert.Equal(t, []byte("d"), r.Data())
	assert.Equal(t, "alice", r.UserID())
	assert.Equal(t, s.CreatedAt(), r.CreatedAt(), "rotation keeps the creation time")
	assert.Equal(t, s.AbsoluteExpiry(), r.AbsoluteExpiry(), "and so the absolute deadline")
	assert.Equal(t, uint64(2), r.Version())

	_, err = e.Get(s.ID())
	assert.ErrorIs(t, err, ErrNotFound, "the old ID is gone at once")
	got, err := e.Get(r.ID())
	require.NoError(t, err)
	assert.Equal(t, []byte("d"), got.Data())
	assert.Equal(t, 1, e.Len())
	assert.Equal(t, 1, e.users.count("alice"))

	_, err = e.Rotate(bg, s.ID())
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestRevokeUser(t *testing.T) {
	e, _ := open(t, Options{})
	var alice []Session
	for range 50 {
		alice = append(alice, mustCreate(t, e, CreateOptions{UserID: "alice"}))
	}
	bob := mustCreate(t, e, CreateOptions{UserID: "bob"})
	anon := mustCreate(t, e, CreateOptions{})

	n, err := e.RevokeUser(bg, "alice")
	require.NoError(t, err)
	assert.Equal(t, 50, n)
	for _, s := range alice {
		_, err := e.Get(s.ID())
		assert.ErrorIs(t, err, ErrNotFound)
	}
	for _, s := range []Session{bob, anon} {
		_, err := e.Get(s.ID())
		assert.NoError(t, err)
	}
	assert.Equal(t, 2, e.Len())
	n, err = e.RevokeUser(bg, "alice")
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	_, err = e.RevokeUser(bg, "")
	assert.ErrorIs(t, err, ErrInvalid)
}

// TestRevokeUserRacesRotate rotates a user's sessions from many goroutines
// while RevokeUser runs. Every session that existed before the revoke must
// be gone after it, whichever ID it had moved to.
func TestRevokeUserRacesRotate(t *testing.T) {
	for round := range 20 {
		e, _ := open(t, Options{Shards: 16})
		const n = 40
		ids := make([]string, n)
		for i := range ids {
			ids[i] = mustCreate(t, e, CreateOptions{UserID: "victim"}).ID()
		}
		other := mustCreate(t, e, CreateOptions{UserID: "bystander"})
		start := make(chan struct{})
		var wg sync.WaitGroup
		latest := make([]string, n)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				id := ids[i]
				for range 5 {
					r, err := e.Rotate(bg, id)
					if err != nil {
						assert.ErrorIs(t, err, ErrNotFound)
						break
					}
					id = r.ID()
				}
				latest[i] = id
			}()
		}
		close(start)
		_, err := e.RevokeUser(bg, "victim")
		require.NoError(t, err)
		wg.Wait()
		for i, id := range latest {
			_, err := e.Get(id)
			assert.ErrorIs(t, err, ErrNotFound, "round %d session %d survived a revoke", round, i)
		}
		_, err = e.Get(other.ID())
		assert.NoError(t, err)
		assert.Equal(t, 0, e.users.count("victim"))
		require.NoError(t, e.Close())
	}
}

func TestLimits(t *testing.T) {
	e, _ := open(t, Options{MaxSessions: 3, MaxDataSize: 10, MaxUserIDSize: 5})
	_, err := e.Create(bg, CreateOptions{Data: bytes.Repeat([]byte("x"), 11)})
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = e.Create(bg, CreateOptions{UserID: "sixsix"})
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Equal(t, 0, e.Len(), "a refused create stores nothing")

	// Three authenticated sessions fill it: only then is a Create refused.
	var ss []Session
	for _, u := range []string{"a", "b", "c"} {
		ss = append(ss, mustCreate(t, e, CreateOptions{UserID: u}))
	}
	_, err = e.Create(bg, CreateOptions{})
	assert.ErrorIs(t, err, ErrFull)
	_, err = e.Create(bg, CreateOptions{UserID: "d"})
	assert.ErrorIs(t, err, ErrFull)
	assert.Equal(t, 3, e.Len(), "a refused create reserves nothing")
	require.NoError(t, e.Delete(bg, ss[0].ID()))
	mustCreate(t, e, CreateOptions{})
	assert.Equal(t, 3, e.Len())
}

func TestOptionsValidation(t *testing.T) {
	for name, o := range map[string]Options{
		"negative idle":     {IdleTimeout: -1},
		"negative absolute": {AbsoluteTimeout: -1},
		"negative max":      {MaxSessions: -1},
		"data too large":    {MaxDataSize: 1 << 40},
		"too many shards":   {Shards: 1<<16 + 1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(o)
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
	o, err := Options{Shards: 100}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 128, o.Shards, "rounded up to a power of two")
	o, err = Options{}.withDefaults()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, o.Shards, 64)
	assert.Equal(t, 30*time.Minute, o.IdleTimeout)
	assert.Equal(t, 12*time.Hour, o.AbsoluteTimeout)
}

func TestAll(t *testing.T) {
	e, clock := open(t, Options{IdleTimeout: time.Minute})
	want := map[Handle]string{}
	for range 20 {
		s := mustCreate(t, e, CreateOptions{IdleTimeout: time.Hour, Label: "l"})
		want[s.Handle()] = s.ID()
	}
	mustCreate(t, e, CreateOptions{}) // expires before All
	clock.Advance(2 * time.Minute)
	got := map[Handle]bool{}
	for h, s := range e.All() {
		assert.Empty(t, s.ID(), "a listing never hands out tokens")
		assert.Equal(t, h, s.Handle())
		assert.Equal(t, "l", s.Label())
		got[h] = true
		// All holds no lock while the loop body runs.
		_, err := e.Get(want[h])
		assert.NoError(t, err)
	}
	assert.Len(t, got, len(want))
	for h := range want {
		assert.True(t, got[h])
	}

	calls := 0
	for range e.All() {
		calls++
		break
	}
	assert.Equal(t, 1, calls)
}

func TestStats(t *testing.T) {
	e, _ := open(t, Options{Shards: 16})
	a := mustCreate(t, e, CreateOptions{})
	b := mustCreate(t, e, CreateOptions{})
	for range 3 {
		_, err := e.Get(a.ID())
		require.NoError(t, err)
	}
	_, _ = e.Get(token.New().String())
	require.NoError(t, e.Delete(bg, b.ID()))
	st := e.Stats()
	assert.Equal(t, 1, st.Live)
	assert.Equal(t, uint64(3), st.Hits)
	assert.Equal(t, uint64(1), st.Misses)
	assert.Equal(t, uint64(2), st.Created)
	assert.Equal(t, uint64(1), st.Deleted)
	require.Len(t, st.ShardSizes, 16)
	sum := 0
	for _, n := range st.ShardSizes {
		sum += n
	}
	assert.Equal(t, 1, sum)
}

func TestClose(t *testing.T) {
	e, err := Open(Options{})
	require.NoError(t, err)
	s := mustCreate(t, e, CreateOptions{UserID: "u"})
	const mine = "created by github.com/sesscache/sesscache/engine.Open"
	require.Contains(t, goroutineStacks(), mine)
	require.NoError(t, e.Close())
	assert.Empty(t, leakcheck.Stacks(func(g string) bool { return strings.Contains(g, mine) }),
		"no goroutine outlives Close")
	assert.ErrorIs(t, e.Close(), ErrClosed)

	_, err = e.Get(s.ID())
	assert.ErrorIs(t, err, ErrClosed)
	_, err = e.Create(bg, CreateOptions{})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = e.Update(bg, s.ID(), 0, setData("x"))
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, e.Delete(bg, s.ID()), ErrClosed)
	_, err = e.Rotate(bg, s.ID())
	assert.ErrorIs(t, err, ErrClosed)
	_, err = e.RevokeUser(bg, "u")
	assert.ErrorIs(t, err, ErrClosed)
	assert.Empty(t, e.sessions(), "a closed engine yields nothing")
}

func goroutineStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
