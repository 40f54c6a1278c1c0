package engine

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/wal"
	"github.com/sesscache/sesscache/wal/waltest"
)

// Regression tests for the reliability review's findings. Each failed on
// 02740a8; the note of that change quotes the failures.

// shardIndex returns the shard the session with token id lives in.
func shardIndex(e *Engine, id string) int { return int(shard.HashText(id[:22]) & e.mask) }

// state returns every live session's data by handle: what two recoveries
// of one directory must agree on.
func stateByHandle(e *Engine) map[Handle]string {
	m := map[Handle]string{}
	for h, s := range e.All() {
		m[h] = string(s.Data())
	}
	return m
}

// TestSnapshotNeverAheadOfLogEverySecond: rotations and a revocation land
// in the middle of a snapshot's copy, acknowledged under SyncEverySecond
// (written, not fsynced), and the power goes right after the snapshot is
// published. On 02740a8 the snapshot held half of each such write while the
// log lost the records that would have completed them: rotated sessions
// came back under both IDs or neither, the revoked user kept sessions.
func TestSnapshotNeverAheadOfLogEverySecond(t *testing.T) {
	for trial := range 5 {
		dir := t.TempDir()
		fsys := &waltest.FS{}
		var e *Engine
		var armed atomic.Bool
		var victims []string
		rotated := map[string]string{}
		const shards = 16
		e = openDir(t, dir, NewManualClock(epoch), Options{Shards: shards, FS: fsys, beforeSnapshotChunk: func(i int) {
			if i != shards/2 || !armed.CompareAndSwap(true, false) {
				return
			}
			for _, id := range victims {
				s, err := e.Rotate(bg, id)
				require.NoError(t, err)
				rotated[id] = s.ID()
			}
			_, err := e.RevokeUser(bg, "multi")
			require.NoError(t, err)
		}})
		var all []string
		for i := range 64 {
			s := mustCreate(t, e, CreateOptions{Data: []byte(fmt.Sprintf("s%d", i))})
			all = append(all, s.ID())
			if shardIndex(e, s.ID()) > shards/2 {
				victims = append(victims, s.ID()) // its old ID is copied after the hook
			}
		}
		for range 8 {
			mustCreate(t, e, CreateOptions{UserID: "multi"})
		}
		_, err := e.Snapshot(bg) // everything so far durable
		require.NoError(t, err)
		mustCreate(t, e, CreateOptions{Data: []byte("extra")}) // something for the next snapshot to take
		armed.Store(true)
		_, err = e.Snapshot(bg)
		require.NoError(t, err)
		require.False(t, armed.Load(), "the writes landed inside the snapshot")
		require.NotEmpty(t, rotated)
		require.NoError(t, fsys.PowerCut())
		_ = e.Close() // the power is off: nothing more reaches the disk

		e2 := openDir(t, dir, NewManualClock(epoch), Options{Shards: shards})
		for i, id := range all {
			want := fmt.Sprintf("s%d", i)
			if nid, ok := rotated[id]; ok {
				_, err := e2.Get(id)
				assert.ErrorIs(t, err, ErrNotFound, "trial %d: session %d is back under its old ID", trial, i)
				id = nid
			}
			got, err := e2.Get(id)
			if assert.NoError(t, err, "trial %d: session %d lost", trial, i) {
				assert.Equal(t, want, string(got.Data()))
			}
		}
		n, err := e2.UserSessions(bg, "multi")
		require.NoError(t, err)
		assert.Empty(t, n, "trial %d: a revoked user's sessions came back", trial)
		assert.Equal(t, len(all)+1, e2.Len())
		require.NoError(t, e2.Close())
	}
}

// TestSnapshotNeverAheadOfLogAlways: under SyncAlways, rotations whose
// fsync has not happened yet (so not acknowledged) are in flight while a
// snapshot copies, and the power goes. On 02740a8 their effect was in
// memory, so in the snapshot, which was published without waiting for the
// log: recovery then held half of each (a session under both IDs, or under
// neither: acknowledged data lost). Now either the rotations and the
// snapshot are both durable, or neither.
func TestSnapshotNeverAheadOfLogAlways(t *testing.T) {
	dir := t.TempDir()
	var walFsyncs atomic.Int64
	blockWAL := make(chan struct{})
	var blocking atomic.Bool
	entered := make(chan struct{}, 1)
	fsys := &waltest.FS{BeforeSync: func(path string) error {
		if filepath.Ext(path) == ".wal" && blocking.Load() {
			walFsyncs.Add(1)
			select {
			case entered <- struct{}{}:
			default:
			}
			<-blockWAL
		}
		return nil
	}}
	published := make(chan struct{})
	wantsLog := make(chan struct{})
	var once sync.Once
	const shards = 16
	e := openDir(t, dir, NewManualClock(epoch), Options{Sync: SyncAlways, Shards: shards, FS: fsys,
		beforePublish: func() { once.Do(func() { close(wantsLog) }) }})
	var ids []string
	for i := range 64 {
		ids = append(ids, mustCreate(t, e, CreateOptions{Data: []byte(fmt.Sprintf("s%d", i))}).ID())
	}
	_, err := e.Snapshot(bg)
	require.NoError(t, err)

	blocking.Store(true)
	var wg sync.WaitGroup
	for _, id := range ids[:32] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = e.Rotate(bg, id) // fails once the power is cut: never acknowledged
		}()
	}
	<-entered // the rotations' records are written and their fsync hangs
	go func() {
		_, _ = e.Snapshot(bg)
		close(published)
	}()
	select {
	case <-published: // 02740a8: the snapshot did not wait for the log
	case <-wantsLog: // it waits for the log, whose fsync hangs
	}
	require.NoError(t, fsys.PowerCut())
	close(blockWAL)
	wg.Wait()
	<-published
	_ = e.Close()

	e2 := openDir(t, dir, NewManualClock(epoch), Options{Shards: shards})
	for i, id := range ids {
		got, err := e2.Get(id)
		if assert.NoError(t, err, "session %d: rotation half-applied or lost", i) {
			assert.Equal(t, fmt.Sprintf("s%d", i), string(got.Data()))
		}
	}
	assert.Equal(t, len(ids), e2.Len(), "no session under two IDs")
	require.NoError(t, e2.Close())
}

// TestEveryKeptSnapshotRecoversTheSameState: on 02740a8 recovery could
// continue the log past a record that the newest snapshot covered but the
// log never got, so that recovery from the older snapshot then failed at the
// gap. Every kept snapshot, plus the log after it, must give the same state.
func TestEveryKeptSnapshotRecoversTheSameState(t *testing.T) {
	dir := t.TempDir()
	fsys := &waltest.FS{}
	var e *Engine
	var armed atomic.Bool
	e = openDir(t, dir, NewManualClock(epoch), Options{Shards: 16, FS: fsys, SegmentSize: 32 << 10, beforeSnapshotChunk: func(i int) {
		if i == 8 && armed.CompareAndSwap(true, false) {
			churn(t, e, newModel(), newRand(uint64(i)), 50, "mid")
		}
	}})
	churn(t, e, newModel(), newRand(1), 400, "a")
	_, err := e.Snapshot(bg)
	require.NoError(t, err)
	churn(t, e, newModel(), newRand(2), 400, "b")
	armed.Store(true)
	_, err = e.Snapshot(bg)
	require.NoError(t, err)
	require.False(t, armed.Load(), "the writes landed inside the snapshot")
	churn(t, e, newModel(), newRand(3), 100, "c")
	require.NoError(t, fsys.PowerCut())
	_ = e.Close()

	e2 := openDir(t, dir, NewManualClock(epoch), Options{})
	want := stateByHandle(e2)
	require.NotEmpty(t, want)
	require.NoError(t, e2.Close())
	snaps := snapFiles(t, dir)
	require.Len(t, snaps, 2)
	// Without the newest snapshot, recovery starts from the older one.
	aside := filepath.Join(t.TempDir(), "newest.snap")
	require.NoError(t, os.Rename(snaps[1], aside))
	e3 := openDir(t, dir, NewManualClock(epoch), Options{})
	assert.Equal(t, want, stateByHandle(e3), "the older snapshot and the log after it recover the same state")
	require.NoError(t, e3.Close())
}

// TestFailedWritesLeaveNoTrace: a write that returns an error must leave
// nothing a reader can see, now or after reopening, and once the engine is
// read-only every write says so. On 02740a8 a failed write was already in
// memory (a failed Update could be read back; failed Deletes and Rotates
// had removed their session), and later CAS updates and deletes returned
// ErrVersionConflict or ErrNotFound instead of ErrReadOnly.
func TestFailedWritesLeaveNoTrace(t *testing.T) {
	type op struct {
		name string
		run  func(e *Engine, a, b Session) error
	}
	ops := []op{
		{"create", func(e *Engine, _, _ Session) error {
			_, err := e.Create(bg, CreateOptions{UserID: "u", Data: []byte("new")})
			return err
		}},
		{"update", func(e *Engine, a, _ Session) error {
			_, err := e.Update(bg, a.ID(), a.Version(), setData("changed"))
			return err
		}},
		{"delete", func(e *Engine, a, _ Session) error { return e.Delete(bg, a.ID()) }},
		{"rotate", func(e *Engine, a, _ Session) error { _, err := e.Rotate(bg, a.ID()); return err }},
		{"login", func(e *Engine, _, b Session) error {
			_, err := e.RotateWith(bg, b.ID(), RotateOptions{UserID: "u"})
			return err
		}},
		{"revoke", func(e *Engine, _, _ Session) error { _, err := e.RevokeUser(bg, "u"); return err }},
		{"deadline", func(e *Engine, a, _ Session) error {
			_, err := e.SetDeadline(bg, a.ID(), epoch.Add(1000000000000))
			return err
		}},
	}
	faults := map[SyncPolicy]waltest.Fault{
		SyncAlways:      {Op: waltest.FaultSync, Pattern: "*.wal", Err: syscall.EIO},
		SyncEverySecond: {Op: waltest.FaultWrite, Pattern: "*.wal", Err: syscall.ENOSPC},
	}
	for policy, fault := range faults {
		for _, o := range ops {
			t.Run(policy.String()+"/"+o.name, func(t *testing.T) {
				dir := t.TempDir()
				clock := NewManualClock(epoch)
				fsys := &waltest.FS{}
				e := openDir(t, dir, clock, Options{Sync: policy, FS: fsys})
				a := mustCreate(t, e, CreateOptions{UserID: "u", Data: []byte("a")})
				b := mustCreate(t, e, CreateOptions{Data: []byte("b")})
				_, err := e.Snapshot(bg) // everything durable, whatever the policy
				require.NoError(t, err)
				before := stateByHandle(e)
				beforeStats := e.Stats()

				f := fault
				if o.name == "delete" || o.name == "revoke" {
					// Removals are fsynced under every policy.
					f = waltest.Fault{Op: waltest.FaultSync, Pattern: "*.wal", Err: syscall.EIO}
				}
				fsys.Inject(f)
				err = o.run(e, a, b)
				require.ErrorIs(t, err, ErrReadOnly)
				assert.ErrorIs(t, err, f.Err)

				assert.Equal(t, before, stateByHandle(e), "a failed write changed what readers see")
				for _, s := range []Session{a, b} {
					got, err := e.Get(s.ID())
					require.NoError(t, err, "the session is still there under its ID")
					assert.Equal(t, s.Version(), got.Version())
				}
				assert.Equal(t, beforeStats.Live, e.Len())
				ops, _ := e.UserSessions(bg, "u")
				assert.Len(t, ops, 1)

				// Read-only: every write says so, whatever else it would say.
				_, err = e.Update(bg, a.ID(), 99, setData("x"))
				assert.ErrorIs(t, err, ErrReadOnly, "not a version conflict")
				assert.ErrorIs(t, e.Delete(bg, "AAAAAAAAAAAAAAAAAAAAAA"), ErrReadOnly, "not a quiet success")
				_, err = e.Create(bg, CreateOptions{})
				assert.ErrorIs(t, err, ErrReadOnly)
				_, err = e.RevokeUser(bg, "nobody")
				assert.ErrorIs(t, err, ErrReadOnly)

				_ = e.Close()
				require.NoError(t, fsys.DropUnsynced())
				e2 := openDir(t, dir, clock, Options{})
				assert.Equal(t, before, stateByHandle(e2), "nor after reopening")
			})
		}
	}
}

// TestUserCapEvictionIsInTheSameRecord: a Create that evicts under
// MaxSessionsPerUser logs one Batch holding the new session and the
// eviction, so a crash cannot leave the user over the cap. On 02740a8 the
// eviction was a separate record written after the Create returned.
func TestUserCapEvictionIsInTheSameRecord(t *testing.T) {
	dir := t.TempDir()
	e := openDir(t, dir, NewManualClock(epoch), Options{MaxSessionsPerUser: 1})
	mustCreate(t, e, CreateOptions{UserID: "u"})
	mustCreate(t, e, CreateOptions{UserID: "u"})
	require.NoError(t, e.Close())
	var recs []wal.Record
	l, _, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{Logger: quiet}, 0, func(r *wal.Record) error {
		recs = append(recs, *r)
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.Len(t, recs, 2)
	assert.Equal(t, wal.OpPut, recs[0].Op)
	require.Equal(t, wal.OpBatch, recs[1].Op)
	ops := []wal.Op{recs[1].Ops[0].Op, recs[1].Ops[1].Op}
	sort.Slice(ops, func(i, j int) bool { return ops[i] < ops[j] })
	assert.Equal(t, []wal.Op{wal.OpPut, wal.OpDelete}, ops)
}

// TestSkipDamagedNeverRevives: on 02740a8, recovering with SkipDamaged
// past a damaged segment brought back sessions deleted, revoked or rotated
// away in the skipped records, and the next plain Open failed at the same
// damage. Now every session the skipped records could have ended is
// dropped unless a later record shows it alive, the damaged segment is
// quarantined, and a plain Open afterwards succeeds.
func TestSkipDamagedNeverRevives(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{SegmentSize: 16 << 10})
	var early []Session
	for i := range 50 {
		early = append(early, mustCreate(t, e, CreateOptions{UserID: "u", Data: []byte(fmt.Sprintf("e%d", i))}))
	}
	// Roll to a fresh segment, then delete, revoke and rotate there.
	_, err := e.jr.log.Roll()
	require.NoError(t, err)
	require.NoError(t, e.Delete(bg, early[0].ID()))
	r, err := e.Rotate(bg, early[1].ID())
	require.NoError(t, err)
	for i := 2; i < 10; i++ {
		_, err := e.Update(bg, early[i].ID(), 0, setData("touched-in-damaged"))
		require.NoError(t, err)
	}
	damagedFirst := e.jr.log.NewestSegment()
	_, err = e.jr.log.Roll()
	require.NoError(t, err)
	// Proof of life after the damage for a few.
	late := mustCreate(t, e, CreateOptions{Data: []byte("late")})
	for i := 10; i < 15; i++ {
		_, err := e.Update(bg, early[i].ID(), 0, setData("after"))
		require.NoError(t, err)
	}
	require.NoError(t, e.Close())

	seg := filepath.Join(dir, "wal", segName(damagedFirst))
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	b[32+20] ^= 0x40 // inside the first record's payload
	require.NoError(t, os.WriteFile(seg, b, 0o600))

	_, err = Open(Options{Dir: dir, Clock: clock, Logger: quiet})
	require.ErrorIs(t, err, ErrCorrupt)

	e = openDir(t, dir, clock, Options{SkipDamaged: true})
	rec := e.Stats().Recovery
	assert.Equal(t, 1, rec.Skipped)
	assert.Contains(t, rec.Quarantined, segName(damagedFirst))
	_, err = e.Get(early[0].ID())
	assert.ErrorIs(t, err, ErrNotFound, "a session deleted in the skipped records came back")
	_, err = e.Get(early[1].ID())
	assert.ErrorIs(t, err, ErrNotFound, "an ID rotated away in the skipped records came back")
	for i := 10; i < 15; i++ {
		got, err := e.Get(early[i].ID())
		if assert.NoError(t, err, "written after the damage: proven alive") {
			assert.Equal(t, "after", string(got.Data()))
		}
	}
	_, err = e.Get(late.ID())
	assert.NoError(t, err)
	_, err = e.Get(r.ID())
	assert.ErrorIs(t, err, ErrNotFound, "its record was skipped")
	assert.Equal(t, 6, e.Len(), "only what a record after the damage shows alive")
	assert.Equal(t, 50-5, rec.DroppedUnproven)
	want := stateByHandle(e)
	require.NoError(t, e.Close())
	_, err = os.Stat(filepath.Join(dir, "wal", wal.QuarantineDir, segName(damagedFirst)))
	assert.NoError(t, err, "the damaged segment is kept aside")

	e = openDir(t, dir, clock, Options{}) // no SkipDamaged needed any more
	assert.Equal(t, want, stateByHandle(e))
	assert.Zero(t, e.Stats().Recovery.Skipped)
}

// TestOtherSnapshotVersionIsNotDamage: on 02740a8 a snapshot of an older
// format was reported as damage (and recovery fell back past it, then
// failed at a log gap). It must say "unsupported version N".
func TestOtherSnapshotVersionIsNotDamage(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{})
	mustCreate(t, e, CreateOptions{})
	_, err := e.Snapshot(bg)
	require.NoError(t, err)
	require.NoError(t, e.Close())
	path := snapFiles(t, dir)[0]
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	binary.LittleEndian.PutUint32(b[8:], 2)
	binary.LittleEndian.PutUint32(b[32:], crc32.Checksum(b[:32], crc32.MakeTable(crc32.Castagnoli)))
	require.NoError(t, os.WriteFile(path, b, 0o600))

	_, err = Open(Options{Dir: dir, Clock: clock, Logger: quiet})
	require.ErrorIs(t, err, ErrUnsupported)
	assert.NotErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "unsupported format version 2")
	assert.Contains(t, err.Error(), filepath.Base(path))
}

// TestMissingLogFailsOpen: on 02740a8, deleting the newest log segment,
// or the whole log, opened silently with acknowledged sessions gone.
func TestMissingLogFailsOpen(t *testing.T) {
	for _, what := range []string{"newest segment", "whole log"} {
		t.Run(what, func(t *testing.T) {
			dir := t.TempDir()
			clock := NewManualClock(epoch)
			e := openDir(t, dir, clock, Options{SegmentSize: 8 << 10})
			for range 100 {
				mustCreate(t, e, CreateOptions{Data: make([]byte, 200)})
			}
			_, err := e.Snapshot(bg)
			require.NoError(t, err)
			for range 20 {
				mustCreate(t, e, CreateOptions{})
			}
			newest := e.jr.log.NewestSegment()
			require.NoError(t, e.Close())
			if what == "whole log" {
				require.NoError(t, os.RemoveAll(filepath.Join(dir, "wal")))
			} else {
				require.NoError(t, os.Remove(filepath.Join(dir, "wal", segName(newest))))
			}
			_, err = Open(Options{Dir: dir, Clock: clock, Logger: quiet})
			require.ErrorIs(t, err, ErrCorrupt)
			assert.ErrorIs(t, err, wal.ErrMissingSegment)
			assert.True(t, strings.Contains(err.Error(), segName(newest)), err.Error())

			// SkipDamaged goes on without it, logging out whoever it cannot vouch for.
			e = openDir(t, dir, clock, Options{SkipDamaged: true})
			assert.Equal(t, 0, e.Len())
			assert.Equal(t, 1, e.Stats().Recovery.Skipped)
			require.NoError(t, e.Close())
			e = openDir(t, dir, clock, Options{})
			assert.Equal(t, 0, e.Len())
		})
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// segName is the log's name for the segment starting at LSN first.
func segName(first uint64) string { return fmt.Sprintf("%016x.wal", first) }

// TestListingWhileRecoveredSessionsWarm: found by the crash harness.
// The first lookup of a recovered session re-keys it from its digest to
// its ID and moves its entry in the user index; UserSessions read the
// index without the shard's lock and could miss a session moving just
// then: a live session left out of the listing (47 of 200 rounds).
func TestListingWhileRecoveredSessionsWarm(t *testing.T) {
	fsys := &waltest.FS{NoSync: true}
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{FS: fsys, SegmentSize: 64 << 10})
	var ids []string
	for range 8 {
		ids = append(ids, mustCreate(t, e, CreateOptions{UserID: "u"}).ID())
	}
	require.NoError(t, e.Close())
	missed := 0
	for range 100 {
		e := openDir(t, dir, clock, Options{FS: fsys, SegmentSize: 64 << 10})
		var wg sync.WaitGroup
		wg.Go(func() {
			for _, id := range ids {
				_, _ = e.Get(id)
			}
		})
		for range 20 {
			l, err := e.UserSessions(bg, "u")
			require.NoError(t, err)
			if len(l) != len(ids) {
				missed++
				break
			}
		}
		wg.Wait()
		require.NoError(t, e.Close())
	}
	assert.Zero(t, missed, "rounds where UserSessions left out a live session")
}

// TestCapWhileRecoveredSessionsWarm: the same race under
// MaxSessionsPerUser: a capped Create counted the user's sessions while
// one was moving, and left the user above the cap.
func TestCapWhileRecoveredSessionsWarm(t *testing.T) {
	fsys := &waltest.FS{NoSync: true}
	src := t.TempDir()
	clock := NewManualClock(epoch)
	opts := Options{FS: fsys, MaxSessionsPerUser: 3, SegmentSize: 64 << 10}
	e := openDir(t, src, clock, opts)
	var ids []string
	for range 3 {
		ids = append(ids, mustCreate(t, e, CreateOptions{UserID: "u"}).ID())
	}
	require.NoError(t, e.Close())
	over := 0
	for range 150 {
		dir := filepath.Join(t.TempDir(), "d")
		copyTree(t, src, dir)
		e := openDir(t, dir, clock, opts)
		var wg sync.WaitGroup
		wg.Go(func() {
			for _, id := range ids {
				_, _ = e.Get(id)
			}
		})
		mustCreate(t, e, CreateOptions{UserID: "u"})
		wg.Wait()
		l, err := e.UserSessions(bg, "u")
		require.NoError(t, err)
		if len(l) > 3 || e.users.count("u") > 3 {
			over++
		}
		require.NoError(t, e.Close())
	}
	assert.Zero(t, over, "rounds where a capped Create left the user above the cap")
}

// copyTree copies directory src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if rel == "LOCK" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	}))
}
