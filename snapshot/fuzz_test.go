package snapshot_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/snapshot"
	"github.com/sesscache/sesscache/wal"
)

// TestRandomDamage overwrites random runs of bytes, several at a time, and
// truncates or extends with garbage: always damage, never a panic.
func TestRandomDamage(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	path, good := smallSnapshot(t)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 3000 {
		b := append([]byte(nil), good...)
		for range 1 + rng.IntN(3) {
			at := rng.IntN(len(b))
			for j := at; j < min(len(b), at+1+rng.IntN(8)); j++ {
				b[j] ^= byte(1 + rng.IntN(255)) // never a no-op
			}
		}
		switch rng.IntN(4) {
		case 0:
			b = b[:rng.IntN(len(b))]
		case 1:
			b = append(b, make([]byte, 1+rng.IntN(64))...)
		}
		applied, err := loadDamaged(t, path, b)
		if !assertCorrupt(t, err, path, "case %d", i) || !assert.Zero(t, applied, "case %d", i) {
			return
		}
	}
}

// FuzzLoad feeds arbitrary files to Load: it must never panic, and whatever
// it accepts must be Puts of the snapshot's LSN, as many as it reports.
func FuzzLoad(f *testing.F) {
	snapshot.VerifyNoLeaks(f)
	dir := f.TempDir()
	for _, n := range []int{0, 1, 5} {
		w, err := snapshot.Write(dir, uint64(n+1), created, 2, fillFrom(split(makeRecords(n, 1), 2)), testOptions(1, 64))
		require.NoError(f, err)
		b, err := os.ReadFile(w.Path)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "fuzz")
		require.NoError(t, os.WriteFile(path, b, 0o600))
		var applied atomic.Uint64
		var lsn atomic.Uint64
		var bad atomic.Bool
		info, err := snapshot.Load(path, testOptions(2, 0), func(r *wal.Record) error {
			applied.Add(1)
			if r.Op != wal.OpPut || (lsn.Load() != 0 && lsn.Load() != r.LSN) {
				bad.Store(true)
			}
			lsn.Store(r.LSN)
			return nil
		})
		if err != nil {
			assert.Zero(t, applied.Load())
			return
		}
		assert.False(t, bad.Load())
		assert.Equal(t, info.Sessions, applied.Load())
		if applied.Load() > 0 {
			assert.Equal(t, info.LSN, lsn.Load())
		}
	})
}
