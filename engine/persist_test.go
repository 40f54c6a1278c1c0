package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/token"
	"github.com/sesscache/sesscache/wal"
	"github.com/sesscache/sesscache/wal/waltest"
)

// quiet discards the engine's recovery reports in tests.
var quiet = slog.New(slog.DiscardHandler)

// openDir opens a persistent engine on dir with a manual clock.
func openDir(t testing.TB, dir string, clock *Clock, o Options) *Engine {
	t.Helper()
	o.Dir = dir
	o.Clock = clock
	o.manualReap = true
	if o.SnapshotCPU == 0 {
		o.SnapshotCPU = 1 // unpaced: tests of pacing ask for it
	}
	if o.Logger == nil {
		o.Logger = quiet
	}
	e, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// state reads what the engine holds for each ID: its data, or nil if gone.
func state(t testing.TB, e *Engine, ids []string) map[string][]byte {
	t.Helper()
	m := make(map[string][]byte, len(ids))
	for _, id := range ids {
		s, err := e.Get(id)
		if errors.Is(err, ErrNotFound) {
			m[id] = nil
			continue
		}
		require.NoError(t, err)
		m[id] = s.DataCopy()
	}
	return m
}

func TestPersistRoundTrip(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncEverySecond, SyncAlways, SyncNo} {
		t.Run(sync.String(), func(t *testing.T) {
			dir := t.TempDir()
			clock := NewManualClock(epoch)
			e := openDir(t, dir, clock, Options{Sync: sync})

			kept := mustCreate(t, e, CreateOptions{UserID: "alice", Data: []byte("a1")})
			_, err := e.Update(bg, kept.ID(), 0, setData("a2"))
			require.NoError(t, err)
			deleted := mustCreate(t, e, CreateOptions{Data: []byte("d")})
			require.NoError(t, e.Delete(bg, deleted.ID()))
			old := mustCreate(t, e, CreateOptions{UserID: "alice", Data: []byte("r")})
			rotated, err := e.Rotate(bg, old.ID())
			require.NoError(t, err)
			revoked := mustCreate(t, e, CreateOptions{UserID: "mallory", Data: []byte("m")})
			_, err = e.RevokeUser(bg, "mallory")
			require.NoError(t, err)
			big := mustCreate(t, e, CreateOptions{Data: bytes.Repeat([]byte{7}, 60000)})
			ids := []string{kept.ID(), deleted.ID(), old.ID(), rotated.ID(), revoked.ID(), big.ID()}
			want := state(t, e, ids)
			require.NoError(t, e.Close())

			// Reopen twice: replaying the same log again gives the same state.
			for range 2 {
				e2 := openDir(t, dir, clock, Options{Sync: sync})
				assert.Equal(t, 3, e2.Len())
				assert.Equal(t, want, state(t, e2, ids))
				s, err := e2.Get(kept.ID())
				require.NoError(t, err)
				assert.Equal(t, "alice", s.UserID())
				assert.Equal(t, uint64(2), s.Version())
				assert.Equal(t, epoch, s.CreatedAt().UTC())
				assert.Equal(t, 2, e2.users.count("alice"))
				require.NoError(t, e2.Close())
			}
		})
	}
}

func TestRecoveredSessionsWorkFully(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{})
	a := mustCreate(t, e, CreateOptions{UserID: "u", Data: []byte("x")})
	b := mustCreate(t, e, CreateOptions{UserID: "u", Data: []byte("y")})
	c := mustCreate(t, e, CreateOptions{Data: []byte("z")})
	require.NoError(t, e.Close())

	e = openDir(t, dir, clock, Options{})
	// All sees recovered sessions, by the handles they had before.
	ranged := e.sessions()
	require.Len(t, ranged, 3)
	handles := map[Handle]bool{a.Handle(): true, b.Handle(): true, c.Handle(): true}
	for _, s := range ranged {
		assert.Empty(t, s.ID())
		assert.True(t, handles[s.Handle()], "a recovered session keeps its handle")
	}
	// Every write path finds a recovered session by its ID.
	_, err := e.Update(bg, a.ID(), 1, setData("x2"))
	require.NoError(t, err)
	r, err := e.Rotate(bg, c.ID())
	require.NoError(t, err)
	// RevokeUser reaches a session nobody has presented since the restart.
	n, err := e.RevokeUser(bg, "u")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for _, id := range []string{a.ID(), b.ID(), c.ID()} {
		_, err := e.Get(id)
		assert.ErrorIs(t, err, ErrNotFound)
	}
	_, err = e.Get(r.ID())
	require.NoError(t, err)
	require.NoError(t, e.Close())

	e = openDir(t, dir, clock, Options{})
	assert.Equal(t, 1, e.Len())
	got, err := e.Get(r.ID())
	require.NoError(t, err)
	assert.Equal(t, []byte("z"), got.Data())
}

func TestRecoveryDropsExpiredAndNeverRevives(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{IdleTimeout: 10 * time.Minute, TouchLogInterval: time.Minute})
	idle := mustCreate(t, e, CreateOptions{})
	active := mustCreate(t, e, CreateOptions{})
	for range 5 {
		clock.Advance(3 * time.Minute)
		_, err := e.Get(active.ID())
		require.NoError(t, err)
	}
	require.NoError(t, e.Close())

	// 15 min after creation: idle has expired; active was last used 0 min
	// ago and its touches were logged.
	e = openDir(t, dir, clock, Options{IdleTimeout: 10 * time.Minute})
	_, err := e.Get(idle.ID())
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = e.Get(active.ID())
	assert.NoError(t, err)
	assert.Equal(t, 1, e.Stats().Recovery.ExpiredOnLoad)
	require.NoError(t, e.Close())

	clock.Advance(11 * time.Minute)
	e = openDir(t, dir, clock, Options{IdleTimeout: 10 * time.Minute})
	_, err = e.Get(active.ID())
	assert.ErrorIs(t, err, ErrNotFound, "a restart never revives an expired session")
	assert.Equal(t, 0, e.Len())
}

func TestTouchesAreCoalesced(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{TouchLogInterval: time.Minute})
	s := mustCreate(t, e, CreateOptions{})
	before := e.Stats().Log.Records
	for range 120 { // two minutes of reads, one a second
		clock.Advance(time.Second)
		_, err := e.Get(s.ID())
		require.NoError(t, err)
	}
	assert.Equal(t, uint64(2), e.Stats().Log.Records-before, "one touch record per minute")
}

func TestSecondEngineOnSameDirFails(t *testing.T) {
	dir := t.TempDir()
	openDir(t, dir, NewManualClock(epoch), Options{})
	_, err := Open(Options{Dir: dir})
	assert.ErrorIs(t, err, ErrLocked)
}

func TestFilesHoldNoToken(t *testing.T) {
	dir := t.TempDir()
	e := openDir(t, dir, NewManualClock(epoch), Options{})
	var ids []string
	for range 50 {
		s := mustCreate(t, e, CreateOptions{UserID: "u", Data: []byte("data")})
		ids = append(ids, s.ID())
	}
	r, err := e.Rotate(bg, ids[0])
	require.NoError(t, err)
	ids = append(ids, r.ID())
	require.NoError(t, e.Close())
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, id := range ids {
			raw, err := token.Parse(id)
			require.NoError(t, err)
			assert.False(t, bytes.Contains(b, []byte(id)), "%s holds a token", path)
			assert.False(t, bytes.Contains(b, raw[:]), "%s holds a raw ID", path)
		}
		return nil
	}))
}

// TestWriteFailureMakesEngineReadOnly injects a full disk, then a failed
// fsync: the writer gets the error, later writes fail, reads go on, and a
// reopen recovers every write that was acknowledged.
func TestWriteFailureMakesEngineReadOnly(t *testing.T) {
	for _, fault := range []waltest.Fault{
		{Op: waltest.FaultWrite, Pattern: "*.wal", Err: syscall.ENOSPC},
		{Op: waltest.FaultWrite, Pattern: "*.wal", Err: syscall.EIO, Short: true},
		{Op: waltest.FaultSync, Pattern: "*.wal", Err: syscall.EIO},
	} {
		t.Run(fault.Err.Error(), func(t *testing.T) {
			dir := t.TempDir()
			clock := NewManualClock(epoch)
			fsys := &waltest.FS{}
			e := openDir(t, dir, clock, Options{Sync: SyncAlways, FS: fsys})
			acked := mustCreate(t, e, CreateOptions{Data: []byte("safe")})

			fsys.Inject(fault)
			_, err := e.Create(bg, CreateOptions{Data: []byte("lost")})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrReadOnly)
			assert.ErrorIs(t, err, fault.Err)

			_, err = e.Update(bg, acked.ID(), 0, setData("refused"))
			assert.ErrorIs(t, err, ErrReadOnly)
			_, err = e.Create(bg, CreateOptions{})
			assert.ErrorIs(t, err, ErrReadOnly)
			got, err := e.Get(acked.ID())
			require.NoError(t, err, "reads go on")
			assert.Equal(t, []byte("safe"), got.Data())

			_ = e.Close()
			require.NoError(t, fsys.DropUnsynced(), "the machine crashes")
			e2 := openDir(t, dir, clock, Options{Sync: SyncAlways})
			got, err = e2.Get(acked.ID())
			require.NoError(t, err)
			assert.Equal(t, []byte("safe"), got.Data())
			assert.Equal(t, 1, e2.Len())
		})
	}
}

func TestCorruptLogFailsOpenUnlessSkipped(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{SegmentSize: 4096})
	for range 200 { // several segments
		mustCreate(t, e, CreateOptions{Data: bytes.Repeat([]byte("d"), 100)})
	}
	require.NoError(t, e.Close())
	segs, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	require.NoError(t, err)
	require.Greater(t, len(segs), 2)
	b, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	b[100] ^= 0x40
	require.NoError(t, os.WriteFile(segs[0], b, 0o600))

	_, err = Open(Options{Dir: dir, Clock: clock})
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), filepath.Base(segs[0]))
	var ce *wal.CorruptError
	require.ErrorAs(t, err, &ce)

	e = openDir(t, dir, clock, Options{SkipDamaged: true})
	assert.Less(t, e.Len(), 200)
	assert.Greater(t, e.Len(), 150, "only the damaged segment's tail is lost")
	assert.Equal(t, 1, e.Stats().Recovery.Skipped)
}

// Replay hands records to a worker per processor, by shard. Whatever the
// number of workers, a log of many sessions in every shard, each written
// several times and some deleted, rotated or revoked, replays to the state
// the engine had: data, versions, owners, and last accesses (which decide
// who is still alive an idle timeout later).
func TestParallelReplayMatchesState(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	opts := Options{TouchLogInterval: time.Second, IdleTimeout: time.Hour, SnapshotInterval: -1}
	e := openDir(t, dir, clock, opts)
	type view struct {
		Data    []byte
		Version uint64
		User    string
	}
	viewOf := func(s Session) view { return view{s.DataCopy(), s.Version(), s.UserID()} }
	want := map[string]view{} // the model: what the engine holds
	lastAccess := map[string]time.Time{}
	users := []string{"", "ann", "bob", "cy"}
	var ids []string
	for i := range 2000 {
		s := mustCreate(t, e, CreateOptions{UserID: users[i%len(users)], Data: []byte{byte(i), 0}})
		ids = append(ids, s.ID())
		want[s.ID()] = viewOf(s)
		lastAccess[s.ID()] = clock.Now()
	}
	for round := range 3 {
		clock.Advance(2 * time.Second)
		for i, id := range ids {
			if _, ok := want[id]; !ok {
				continue
			}
			switch {
			case i%7 == round:
				s, err := e.Update(bg, id, 0, setData(fmt.Sprint(i, "/", round)))
				require.NoError(t, err)
				want[id] = viewOf(s)
			case i%11 == round:
				_, err := e.Get(id) // a logged touch
				require.NoError(t, err)
			case i%13 == round:
				require.NoError(t, e.Delete(bg, id))
				delete(want, id)
				continue
			case i%17 == round:
				s, err := e.Rotate(bg, id)
				require.NoError(t, err)
				delete(want, id)
				ids = append(ids, s.ID())
				want[s.ID()] = viewOf(s)
				lastAccess[s.ID()] = clock.Now()
				continue
			default:
				continue
			}
			lastAccess[id] = clock.Now()
		}
	}
	_, err := e.RevokeUser(bg, "bob")
	require.NoError(t, err)
	for id, v := range want {
		if v.User == "bob" {
			delete(want, id)
		}
	}
	require.Equal(t, len(want), e.Len())
	require.NoError(t, e.Close())
	// Alive an hour after the last round: those accessed in it.
	wantAlive := 0
	for id := range want {
		if lastAccess[id].Equal(clock.Now()) {
			wantAlive++
		}
	}
	require.NotZero(t, wantAlive)
	require.Less(t, wantAlive, len(want))

	for _, procs := range []int{1, 4} {
		t.Run(fmt.Sprint("GOMAXPROCS=", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			copyDir := func() string {
				d := t.TempDir()
				require.NoError(t, os.CopyFS(d, os.DirFS(dir)))
				return d
			}
			e := openDir(t, copyDir(), NewManualClock(clock.Now()), opts)
			assert.Equal(t, len(want), e.Len())
			got := map[string]view{}
			for _, id := range ids {
				if s, err := e.Get(id); err == nil {
					got[id] = viewOf(s)
				} else {
					require.ErrorIs(t, err, ErrNotFound)
				}
			}
			assert.Equal(t, want, got)
			owned := map[string]int{}
			for _, v := range want {
				owned[v.User]++
			}
			for _, u := range users[1:] {
				assert.Equal(t, owned[u], e.users.count(u), "sessions of %q", u)
			}
			require.NoError(t, e.Close())

			later := NewManualClock(clock.Now().Add(time.Hour - time.Second))
			e = openDir(t, copyDir(), later, opts)
			alive := 0
			for id := range want {
				if _, err := e.Get(id); err == nil {
					alive++
					assert.Equal(t, clock.Now(), lastAccess[id], "alive, so accessed in the last round")
				}
			}
			assert.Equal(t, wantAlive, alive)
			require.NoError(t, e.Close())
		})
	}
}
