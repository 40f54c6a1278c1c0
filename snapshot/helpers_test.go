package snapshot_test

import (
	"cmp"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/snapshot"
	"github.com/sesscache/sesscache/wal"
)

// quiet discards log output.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// created is the creation time used where its value does not matter.
var created = time.Unix(1_700_000_000, 123456789)

// testOptions returns quiet options with the given workers and chunk target
// (0: default).
func testOptions(workers, chunkTarget int) snapshot.Options {
	opts := snapshot.Options{Workers: workers, Logger: quiet}
	if chunkTarget > 0 {
		snapshot.SetChunkTarget(&opts, chunkTarget)
	}
	return opts
}

// putRecord returns a Put whose fields all derive from i, so that a test can
// tell every record apart and check each field.
func putRecord(i int, data []byte) wal.Record {
	r := wal.Record{
		Op:         wal.OpPut,
		Version:    uint64(i) * 3,
		Created:    int64(i) * 1000,
		LastAccess: -int64(i),
		Idle:       int64(i) << 20,
		Absolute:   int64(i) << 33,
		SealKeyID:  uint32(i % 7),
		Data:       data,
	}
	binary.LittleEndian.PutUint64(r.Key.Digest[:], uint64(i))
	r.Key.Digest[15] = 0xd1
	r.Key.Hint = uint16(i)
	if i%3 != 0 {
		r.UserID = []byte{'u', byte(i), byte(i >> 8)}
	}
	return r
}

// makeRecords returns n distinct Puts with random data of up to 300 bytes.
func makeRecords(n int, seed uint64) []wal.Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	recs := make([]wal.Record, n)
	for i := range recs {
		var data []byte
		if k := rng.IntN(301); k > 0 {
			data = make([]byte, k)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
		}
		recs[i] = putRecord(i, data)
	}
	return recs
}

// split cuts recs into parts consecutive runs of nearly equal length.
func split(recs []wal.Record, parts int) [][]wal.Record {
	out := make([][]wal.Record, parts)
	for i := range out {
		out[i] = recs[i*len(recs)/parts : (i+1)*len(recs)/parts]
	}
	return out
}

// fillFrom returns a fill function that adds parts[i] for chunk i through a
// reused Record and reused byte slices, which it scribbles on after each add
// so that Write is held to copying what it keeps.
func fillFrom(parts [][]wal.Record) func(int, func(*wal.Record) error) error {
	return func(i int, add func(*wal.Record) error) error {
		var r wal.Record
		var data, user []byte
		for j := range parts[i] {
			r = parts[i][j]
			r.LSN = 12345 // ignored: a snapshot's records carry its LSN
			if r.Data != nil {
				data = append(data[:0], r.Data...)
				r.Data = data
			}
			if r.UserID != nil {
				user = append(user[:0], r.UserID...)
				r.UserID = user
			}
			if err := add(&r); err != nil {
				return err
			}
			for k := range data {
				data[k] = 0xee
			}
			for k := range user {
				user[k] = 0xee
			}
			r.Version++
		}
		return nil
	}
}

// writeRecords writes recs as a snapshot at lsn in dir, split over parts
// fill calls.
func writeRecords(t testing.TB, dir string, lsn uint64, recs []wal.Record, parts int, opts snapshot.Options) snapshot.Info {
	t.Helper()
	info, err := snapshot.Write(dir, lsn, created, parts, fillFrom(split(recs, parts)), opts)
	require.NoError(t, err)
	return info
}

// collector keeps deep copies of applied records; safe for concurrent use.
type collector struct {
	mu   sync.Mutex
	recs []wal.Record
}

func (c *collector) apply(r *wal.Record) error {
	cp := *r
	cp.UserID = clone(r.UserID)
	cp.Data = clone(r.Data)
	c.mu.Lock()
	c.recs = append(c.recs, cp)
	c.mu.Unlock()
	return nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// loadAll loads path and returns copies of its records in arrival order.
func loadAll(t testing.TB, path string, opts snapshot.Options) (snapshot.Info, []wal.Record) {
	t.Helper()
	var c collector
	info, err := snapshot.Load(path, opts, c.apply)
	require.NoError(t, err)
	return info, c.recs
}

// withLSN returns copies of recs carrying lsn, as Load returns them.
func withLSN(recs []wal.Record, lsn uint64) []wal.Record {
	if len(recs) == 0 {
		return nil
	}
	out := make([]wal.Record, len(recs))
	for i, r := range recs {
		r.LSN = lsn
		out[i] = r
	}
	return out
}

// sortByIndex sorts records made by putRecord into the order of the index
// they were made from, which putRecord keeps in the digest.
func sortByIndex(recs []wal.Record) []wal.Record {
	slices.SortFunc(recs, func(a, b wal.Record) int {
		return cmp.Compare(binary.LittleEndian.Uint64(a.Key.Digest[:]), binary.LittleEndian.Uint64(b.Key.Digest[:]))
	})
	return recs
}

// dirNames returns the names in dir.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// snapPath is the path of the snapshot at lsn in dir.
func snapPath(dir string, lsn uint64) string {
	return filepath.Join(dir, snapshot.FileName(lsn))
}
