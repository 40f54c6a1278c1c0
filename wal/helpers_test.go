package wal_test

import (
	"bytes"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal"
	"github.com/sesscache/sesscache/wal/waltest"
)

// quiet discards log output; tests that check logging use capture.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// capture is a concurrency-safe log sink.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *capture) logger() *slog.Logger { return slog.New(slog.NewTextHandler(c, nil)) }

// collector keeps copies of replayed records.
type collector struct{ recs []wal.Record }

func (c *collector) apply(r *wal.Record) error {
	c.recs = append(c.recs, wal.CloneRecord(r))
	return nil
}

// openLog opens dir and closes the log at the end of the test.
func openLog(t testing.TB, dir string, opts wal.Options, from uint64) (*wal.Log, wal.ReplayInfo, []wal.Record) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	var c collector
	l, info, err := wal.Open(dir, opts, from, c.apply)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l, info, c.recs
}

// replayAll opens dir, returns what it replays and closes it again.
func replayAll(t testing.TB, dir string, opts wal.Options, from uint64) (wal.ReplayInfo, []wal.Record, error) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	var c collector
	l, info, err := wal.Open(dir, opts, from, c.apply)
	if err != nil {
		return info, c.recs, err
	}
	return info, c.recs, l.Close()
}

// appendWait appends r, waits for it and returns r with its LSN set.
func appendWait(t testing.TB, l *wal.Log, r wal.Record) wal.Record {
	t.Helper()
	var p wal.Pending
	require.NoError(t, p.Encode(&r))
	lsn, err := l.Append(&p)
	require.NoError(t, err)
	require.NoError(t, l.Wait(lsn))
	r.LSN = lsn
	return r
}

// randomRecords returns n valid records, deterministic for a seed.
func randomRecords(seed uint64, n int) []wal.Record {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	out := make([]wal.Record, n)
	for i := range out {
		out[i] = wal.RandomRecord(rng)
	}
	return out
}

// smallRecord is a short Put, Delete or Touch, for logs that must span many
// segments in few bytes.
func smallRecord(i int) wal.Record {
	r := wal.Record{Key: wal.Key{Hint: uint16(i)}}
	r.Key.Digest[0] = byte(i)
	switch i % 3 {
	case 0:
		r.Op, r.Version, r.LastAccess, r.Data = wal.OpPut, uint64(i), int64(i)*1e9, []byte{byte(i), 1, 2}
	case 1:
		r.Op = wal.OpDelete
	default:
		r.Op, r.LastAccess = wal.OpTouch, int64(i)
	}
	return r
}

// segmentFiles lists dir's segment file names in order.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.NoError(t, err)
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	sort.Strings(names)
	return names
}

// frameOffsets walks the frames of a segment file and returns each frame's
// offset plus, last, the offset where written data ends.
func frameOffsets(t testing.TB, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	offs := []int{wal.SegmentHeaderSize}
	for {
		off := offs[len(offs)-1]
		_, n, err := wal.ReadFrame(b[off:])
		if err != nil {
			return offs
		}
		offs = append(offs, off+n)
	}
}

// copyDir copies the regular files of src into dst, which it empties first.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	require.NoError(t, os.RemoveAll(dst))
	require.NoError(t, os.MkdirAll(dst, 0o700))
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600))
	}
}

// fastFS skips real fsyncs, for tests that open logs by the thousand.
func fastFS() *waltest.FS { return &waltest.FS{NoSync: true} }
