package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// model is the reference a test keeps of what the engine should hold: data
// by session ID; a rotated session moves to its new ID.
type model struct {
	mu   sync.Mutex
	data map[string]string
}

func newModel() *model { return &model{data: map[string]string{}} }

func (m *model) set(id, d string) { m.mu.Lock(); m.data[id] = d; m.mu.Unlock() }
func (m *model) del(id string)    { m.mu.Lock(); delete(m.data, id); m.mu.Unlock() }

func (m *model) check(t *testing.T, e *Engine) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	assert.Equal(t, len(m.data), e.Len())
	for id, d := range m.data {
		s, err := e.Get(id)
		if assert.NoError(t, err) {
			assert.Equal(t, d, string(s.Data()))
		}
	}
}

// churn runs one writer's random operations on its own sessions, keeping m.
func churn(t *testing.T, e *Engine, m *model, r *rand.Rand, ops int, tag string) {
	var mine []string
	for i := range ops {
		d := fmt.Sprintf("%s-%d", tag, i)
		switch p := r.IntN(10); {
		case len(mine) < 5 || p < 3:
			s, err := e.Create(bg, CreateOptions{UserID: tag, Data: []byte(d)})
			require.NoError(t, err)
			mine = append(mine, s.ID())
			m.set(s.ID(), d)
		case p < 7:
			id := mine[r.IntN(len(mine))]
			_, err := e.Update(bg, id, 0, setData(d))
			require.NoError(t, err)
			m.set(id, d)
		case p < 9:
			j := r.IntN(len(mine))
			s, err := e.Rotate(bg, mine[j])
			require.NoError(t, err)
			m.mu.Lock()
			m.data[s.ID()] = m.data[mine[j]]
			delete(m.data, mine[j])
			m.mu.Unlock()
			mine[j] = s.ID()
		default:
			j := r.IntN(len(mine))
			require.NoError(t, e.Delete(bg, mine[j]))
			m.del(mine[j])
			mine = append(mine[:j], mine[j+1:]...)
		}
	}
}

func TestSnapshotWhileWriting(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{Shards: 16, SegmentSize: 64 << 10})
	m := newModel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			churn(t, e, m, rand.New(rand.NewPCG(uint64(w), 9)), 1500, fmt.Sprintf("w%d", w))
		}()
	}
	lsns := map[uint64]bool{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		st, err := e.Snapshot(bg)
		require.NoError(t, err)
		lsns[st.LSN] = true
	}
	st, err := e.Snapshot(bg)
	require.NoError(t, err)
	assert.Equal(t, e.Stats().Log.LastLSN, st.LSN)
	require.NoError(t, e.Close())
	t.Logf("%d distinct snapshots while writing", len(lsns))
	assert.Greater(t, len(lsns), 2)

	e = openDir(t, dir, clock, Options{})
	assert.Equal(t, st.LSN, e.Stats().Recovery.SnapshotLSN)
	assert.Equal(t, uint64(0), e.Stats().Recovery.Records, "the final snapshot covers the whole log")
	m.check(t, e)
	require.NoError(t, e.Close())

	files, err := filepath.Glob(filepath.Join(dir, "snapshots", "*.snap"))
	require.NoError(t, err)
	assert.Len(t, files, 2, "KeepSnapshots=2 by default")
}

// TestSnapshotOverlapWindow lands writes inside a snapshot: before, while and
// after each shard is copied, so that some are in both the snapshot and the
// log after its LSN, and some only in the log. Recovery must give the state
// the writes left, whichever way round.
func TestSnapshotOverlapWindow(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	m := newModel()
	var e *Engine
	var ids []string
	r := rand.New(rand.NewPCG(5, 5))
	var hookMu sync.Mutex // snapshot workers call the hook concurrently
	hook := func(i int) {
		if i%3 != 0 {
			return
		}
		hookMu.Lock()
		defer hookMu.Unlock()
		// Update, rotate and delete sessions that may sit in shards
		// already copied or still to come; revoke one user's sessions.
		for range 5 {
			j := r.IntN(len(ids))
			switch r.IntN(3) {
			case 0:
				d := fmt.Sprintf("hook-%d-%d", i, j)
				if _, err := e.Update(bg, ids[j], 0, setData(d)); err == nil {
					m.set(ids[j], d)
				}
			case 1:
				if s, err := e.Rotate(bg, ids[j]); err == nil {
					m.mu.Lock()
					m.data[s.ID()] = m.data[ids[j]]
					delete(m.data, ids[j])
					m.mu.Unlock()
					ids[j] = s.ID()
				}
			default:
				if err := e.Delete(bg, ids[j]); err == nil {
					m.del(ids[j])
				}
			}
		}
		if i == 9 {
			_, err := e.RevokeUser(bg, "u7")
			require.NoError(t, err)
			for j, id := range ids {
				if j%10 == 7 {
					m.del(id)
				}
			}
		}
	}
	e = openDir(t, dir, clock, Options{Shards: 16, beforeSnapshotChunk: hook})
	for j := range 300 {
		d := fmt.Sprintf("init-%d", j)
		s := mustCreate(t, e, CreateOptions{UserID: fmt.Sprintf("u%d", j%10), Data: []byte(d)})
		ids = append(ids, s.ID())
		m.set(s.ID(), d)
	}
	_, err := e.Snapshot(bg)
	require.NoError(t, err)
	require.NoError(t, e.Close())

	e = openDir(t, dir, clock, Options{})
	rec := e.Stats().Recovery
	assert.NotZero(t, rec.SnapshotLSN)
	assert.NotZero(t, rec.Records, "the writes inside the snapshot are replayed from the log")
	m.check(t, e)
}

func TestDamagedNewestSnapshotFallsBack(t *testing.T) {
	damage := map[string]func(t *testing.T, path string){
		"truncated": func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(path, fi.Size()/2))
		},
		"bit flip": func(t *testing.T, path string) { flipByte(t, path, 200) },
		"bad footer": func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			require.NoError(t, err)
			flipByte(t, path, int(fi.Size())-10)
		},
	}
	for name, spoil := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			clock := NewManualClock(epoch)
			e := openDir(t, dir, clock, Options{})
			m := newModel()
			churn(t, e, m, rand.New(rand.NewPCG(1, 1)), 300, "a")
			_, err := e.Snapshot(bg)
			require.NoError(t, err)
			churn(t, e, m, rand.New(rand.NewPCG(2, 2)), 300, "b")
			_, err = e.Snapshot(bg)
			require.NoError(t, err)
			churn(t, e, m, rand.New(rand.NewPCG(3, 3)), 100, "c")
			require.NoError(t, e.Close())

			snaps := snapFiles(t, dir)
			require.Len(t, snaps, 2)
			spoil(t, snaps[1]) // the newest

			e = openDir(t, dir, clock, Options{})
			assert.Equal(t, 1, e.Stats().Recovery.DamagedSnapshots)
			assert.Equal(t, []string{filepath.Join("snapshots", filepath.Base(snaps[1]))}, e.Stats().Recovery.Quarantined)
			m.check(t, e)
			require.NoError(t, e.Close())
			_, err = os.Stat(filepath.Join(dir, "snapshots", "quarantine", filepath.Base(snaps[1])))
			require.NoError(t, err, "the damaged snapshot is kept aside, not deleted")
			assert.Equal(t, snaps[:1], snapFiles(t, dir), "and no longer in the way")

			// With every snapshot damaged and the log behind them gone,
			// nothing valid remains: Open must say so, not start empty.
			spoil(t, snaps[0])
			_, err = Open(Options{Dir: dir, Clock: clock, Logger: quiet})
			assert.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

// snapFiles returns the snapshot files, oldest first.
func snapFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "snapshots", "*.snap"))
	require.NoError(t, err)
	sort.Strings(files)
	return files
}

func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[off] ^= 0x10
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

func TestSnapshotCompactsDisk(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{SegmentSize: 256 << 10})
	const live = 2000
	ids := make([]string, live)
	data := make([]byte, 200)
	for i := range ids {
		ids[i] = mustCreate(t, e, CreateOptions{Data: data}).ID()
	}
	r := rand.New(rand.NewPCG(4, 4))
	for round := range 20 {
		for range 20 * live {
			_, err := e.Update(bg, ids[r.IntN(live)], 0, setData(string(data)))
			require.NoError(t, err)
		}
		_, err := e.Snapshot(bg)
		require.NoError(t, err, "round %d", round)
	}
	size := dirSize(t, dir)
	st := e.Stats()
	perSnapshot := st.Snapshot.Bytes
	t.Logf("%d live sessions, %d updates: directory %d KiB, snapshot %d KiB", live, 20*20*live, size>>10, perSnapshot>>10)
	// Two snapshots, the log since the older one (one round of updates),
	// and a preallocated segment or two.
	assert.Less(t, size, 2*perSnapshot+3*int64(20*live*300)+4*(256<<10))
}

// dirSize sums the allocated size of the files under dir, so that
// preallocated space counts.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		require.NoError(t, err)
		if !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	}))
	return n
}

func TestSnapshotDue(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{SnapshotInterval: time.Hour, SnapshotAfterBytes: 10 << 10})
	now := time.Now()
	assert.False(t, e.snapshotDue(now), "nothing logged")
	mustCreate(t, e, CreateOptions{})
	assert.False(t, e.snapshotDue(now), "below the byte threshold, no snapshot yet to age")
	for range 50 {
		mustCreate(t, e, CreateOptions{Data: make([]byte, 200)})
	}
	assert.True(t, e.snapshotDue(now), "past 10 KiB of log")
	_, err := e.Snapshot(bg)
	require.NoError(t, err)
	assert.False(t, e.snapshotDue(now))
	mustCreate(t, e, CreateOptions{})
	clock.Advance(time.Hour)
	assert.True(t, e.snapshotDue(now), "the last snapshot is an hour old and the log grew")

	fresh := openDir(t, t.TempDir(), clock, Options{SnapshotInterval: time.Hour, SnapshotAfterBytes: -1})
	mustCreate(t, fresh, CreateOptions{})
	assert.False(t, fresh.snapshotDue(now))
	clock.Advance(time.Hour)
	assert.True(t, fresh.snapshotDue(now), "the interval counts from Open when there is no snapshot yet")

	e2 := openDir(t, t.TempDir(), clock, Options{SnapshotInterval: -1, SnapshotAfterBytes: -1})
	for range 100 {
		mustCreate(t, e2, CreateOptions{Data: make([]byte, 200)})
	}
	clock.Advance(48 * time.Hour)
	assert.False(t, e2.snapshotDue(now), "both triggers off")
}

func TestSnapshotErrors(t *testing.T) {
	e, _ := open(t, Options{})
	_, err := e.Snapshot(bg)
	assert.ErrorIs(t, err, ErrInvalid, "in memory")
	dir := t.TempDir()
	p := openDir(t, dir, NewManualClock(epoch), Options{})
	st, err := p.Snapshot(bg)
	require.NoError(t, err, "an empty log: nothing to do")
	assert.Zero(t, st.LSN)
	require.NoError(t, p.Close())
	_, err = p.Snapshot(bg)
	assert.True(t, errors.Is(err, ErrClosed))
}

// TestPacedSnapshotStopsAtClose: Close abandons a paced snapshot instead of
// waiting out its pauses, and the log still holds everything.
func TestPacedSnapshotStopsAtClose(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	entered := make(chan struct{})
	var once sync.Once
	e, err := Open(Options{Dir: dir, Clock: clock, Logger: quiet, manualReap: true, SnapshotCPU: 0.0001,
		beforeSnapshotChunk: func(i int) {
			if i == 1 {
				once.Do(func() { close(entered) })
			}
		}})
	require.NoError(t, err)
	var ids []string
	for range 200 {
		ids = append(ids, mustCreate(t, e, CreateOptions{Data: []byte("x")}).ID())
	}
	done := make(chan error, 1)
	go func() { _, err := e.Snapshot(bg); done <- err }()
	<-entered // the first shard is encoded; its pause would take many seconds
	require.NoError(t, e.Close())
	assert.ErrorIs(t, <-done, errStopping)
	e2 := openDir(t, dir, clock, Options{})
	assert.Equal(t, len(ids), e2.Len())
	assert.Zero(t, e2.Stats().Recovery.SnapshotLSN, "no snapshot was published")
}
