package snapshot_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/snapshot"
	"github.com/sesscache/sesscache/wal"
)

func TestRoundTrip(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	many := makeRecords(50_000, 1)
	all := []int{1, 2, 5}
	cases := []struct {
		name        string
		recs        []wal.Record
		parts       int
		chunkTarget int // 0: default
		workers     []int
	}{
		{"empty/no parts", nil, 0, 0, all},
		{"empty/parts add nothing", nil, 5, 0, all},
		{"one", many[:1], 1, 0, all},
		{"one/among empty parts", many[:1], 7, 0, all},
		{"few/a chunk each", many[:40], 3, 1, all},
		{"many/default chunks", many, 64, 0, all},
		{"many/one part", many, 1, 0, []int{2}},
		{"many/small chunks", many, 13, 4 << 10, []int{3}},
	}
	for _, c := range cases {
		for _, workers := range c.workers {
			t.Run(fmt.Sprintf("%s/workers=%d", c.name, workers), func(t *testing.T) {
				dir := t.TempDir()
				opts := testOptions(workers, c.chunkTarget)
				const lsn = 0x1234
				w := writeRecords(t, dir, lsn, c.recs, c.parts, opts)
				assert.Equal(t, uint64(len(c.recs)), w.Sessions)

				// One worker applies in file order: exactly the input order.
				info, got := loadAll(t, w.Path, testOptions(1, 0))
				assert.Equal(t, withLSN(c.recs, lsn), got)
				assert.Equal(t, w.Sessions, info.Sessions)
				assert.Equal(t, w.Bytes, info.Bytes)

				// More workers: the same records, in some order.
				_, got = loadAll(t, w.Path, opts)
				assert.Equal(t, withLSN(c.recs, lsn), sortByIndex(got))
			})
		}
	}
}

func TestInfoFields(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := filepath.Join(t.TempDir(), "snaps")
	recs := makeRecords(1000, 2)
	before := time.Now()
	w := writeRecords(t, dir, 0xabc, recs, 4, testOptions(2, 0))

	fi, err := os.Stat(w.Path)
	require.NoError(t, err)
	assert.Equal(t, snapPath(dir, 0xabc), w.Path)
	assert.Equal(t, uint64(0xabc), w.LSN)
	assert.True(t, created.Equal(w.Created), "created %v, want %v", w.Created, created)
	assert.Equal(t, uint64(1000), w.Sessions)
	assert.Equal(t, fi.Size(), w.Bytes)
	assert.Positive(t, w.Duration)
	assert.LessOrEqual(t, w.Duration, time.Since(before))

	l, err := snapshot.Load(w.Path, testOptions(2, 0), func(*wal.Record) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, w.Path, l.Path)
	assert.Equal(t, w.LSN, l.LSN)
	assert.Equal(t, w.Created, l.Created)
	assert.Equal(t, w.Sessions, l.Sessions)
	assert.Equal(t, w.Bytes, l.Bytes)
	assert.Positive(t, l.Duration)
}

func TestCreatedTimeRoundTrips(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	for _, tc := range []time.Time{{}, time.Unix(0, 1), time.Unix(-5, 0), created.In(time.FixedZone("x", 3600))} {
		dir := t.TempDir()
		w, err := snapshot.Write(dir, 1, tc, 0, nil, testOptions(1, 0))
		require.NoError(t, err)
		l, err := snapshot.Load(w.Path, testOptions(1, 0), nil)
		require.NoError(t, err)
		assert.True(t, tc.Equal(l.Created), "created %v, loaded %v", tc, l.Created)
		assert.Equal(t, tc.IsZero(), l.Created.IsZero())
		assert.Equal(t, w.Created, l.Created)
	}
}

// TestEveryFieldSurvives uses wal's random records, whose integers cover
// every MessagePack width.
func TestEveryFieldSurvives(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	rng := rand.New(rand.NewPCG(3, 3))
	recs := makeRecords(3000, 3)
	widths := []uint64{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000, 1<<63 - 1, 1 << 63, 1<<64 - 1}
	for i := range recs {
		r := &recs[i]
		r.Version = widths[rng.IntN(len(widths))]
		r.Created = int64(widths[rng.IntN(len(widths))])
		r.LastAccess = -int64(widths[rng.IntN(len(widths))] >> 1)
		r.Idle = int64(widths[rng.IntN(len(widths))] >> 1)
		r.Absolute = -int64(widths[rng.IntN(len(widths))])
		r.SealKeyID = uint32(widths[rng.IntN(len(widths))])
		r.Key.Hint = uint16(widths[rng.IntN(len(widths))])
		r.Key.Digest = [16]byte{byte(i), byte(i >> 8), 0xff, 0, 0x80}
		if rng.IntN(50) == 0 {
			r.Data = make([]byte, 70_000) // bin32
			r.UserID = make([]byte, 300)  // str16
		}
	}
	dir := t.TempDir()
	w := writeRecords(t, dir, 1<<40, recs, 9, testOptions(2, 32<<10))
	_, got := loadAll(t, w.Path, testOptions(1, 0))
	require.Len(t, got, len(recs))
	for i := range recs {
		want := recs[i]
		want.LSN = 1 << 40
		if !assert.Equal(t, want, got[i], "record %d", i) {
			break
		}
	}
}

// TestLargeRecordGetsItsOwnChunk: a record above the chunk target still fits,
// alone in a chunk longer than the target.
func TestLargeRecordGetsItsOwnChunk(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	recs := makeRecords(10, 4)
	recs[4].Data = make([]byte, 3<<20)
	for i := range recs[4].Data {
		recs[4].Data[i] = byte(i * 7)
	}
	dir := t.TempDir()
	w := writeRecords(t, dir, 7, recs, 2, testOptions(2, 64<<10))
	_, got := loadAll(t, w.Path, testOptions(1, 0))
	assert.Equal(t, withLSN(recs, 7), got)
	_, counts, err := snapshot.Table(w.Path)
	require.NoError(t, err)
	assert.Equal(t, []uint32{4, 1, 5}, counts)
}

// TestChunkOrderUnderParallelLoad checks that the records of one file chunk
// reach apply in file order even when several goroutines apply at once.
func TestChunkOrderUnderParallelLoad(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	recs := makeRecords(20_000, 5)
	dir := t.TempDir()
	w := writeRecords(t, dir, 9, recs, 8, testOptions(2, 8<<10))
	_, counts, err := snapshot.Table(w.Path)
	require.NoError(t, err)
	require.Greater(t, len(counts), 20, "want many chunks")

	// Record i's position in the file is i (putRecord puts it in the
	// digest); arrival[i] is when it reached apply.
	arrival := make([]int64, len(recs))
	var clock atomic.Int64
	var seen sync.Map
	_, err = snapshot.Load(w.Path, testOptions(4, 0), func(r *wal.Record) error {
		i := int(r.Key.Digest[0]) | int(r.Key.Digest[1])<<8 | int(r.Key.Digest[2])<<16
		if _, dup := seen.LoadOrStore(i, true); dup {
			return fmt.Errorf("record %d applied twice", i)
		}
		arrival[i] = clock.Add(1)
		return nil
	})
	require.NoError(t, err)
	first := 0
	for k, n := range counts {
		for i := first + 1; i < first+int(n); i++ {
			require.Less(t, arrival[i-1], arrival[i], "chunk %d: record %d before %d", k, i, i-1)
		}
		first += int(n)
	}
	assert.Equal(t, len(recs), first)
}

// TestWriteReplacesSameLSN: a second snapshot at the same LSN replaces the
// first atomically.
func TestWriteReplacesSameLSN(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	recs := makeRecords(100, 6)
	writeRecords(t, dir, 5, recs, 2, testOptions(1, 0))
	writeRecords(t, dir, 5, recs[:10], 2, testOptions(1, 0))
	_, got := loadAll(t, snapPath(dir, 5), testOptions(1, 0))
	assert.Equal(t, withLSN(recs[:10], 5), got)
	assert.Equal(t, []string{snapshot.FileName(5)}, dirNames(t, dir))
}

// TestLoadWithoutApplyVerifies: a nil apply verifies and reports.
func TestLoadWithoutApplyVerifies(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	w := writeRecords(t, dir, 5, makeRecords(500, 7), 3, testOptions(2, 4<<10))
	info, err := snapshot.Load(w.Path, testOptions(2, 0), nil)
	require.NoError(t, err)
	assert.Equal(t, uint64(500), info.Sessions)
}

func TestApplyErrorStopsLoad(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	const records = 5000
	w := writeRecords(t, dir, 5, makeRecords(records, 8), 4, testOptions(2, 4<<10))
	for _, workers := range []int{1, 3} {
		errStop := fmt.Errorf("stop")
		var calls atomic.Int64
		_, err := snapshot.Load(w.Path, testOptions(workers, 0), func(*wal.Record) error {
			if calls.Add(1) == 100 {
				return errStop
			}
			return nil
		})
		require.ErrorIs(t, err, errStop)
		assert.NotErrorIs(t, err, snapshot.ErrCorrupt)
		atReturn := calls.Load()
		if workers == 1 {
			assert.Equal(t, int64(100), atReturn)
		}
		// Other goroutines may apply until they see the failure, however
		// far that takes them, but none applies anything once Load has
		// returned.
		assert.Equal(t, atReturn, calls.Load())
	}
}
