package bench

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdapters checks that every adapter keeps its own copy of the data,
// finds what it stored, misses what it did not, and applies updates.
func TestAdapters(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.open(64)
			defer s.Close()
			buf := sessionData(7)
			want := bytes.Clone(buf)
			var stored []string
			for range 32 {
				id := freshIDs(1)[0]
				if e, ok := s.(*sesscacheStore); ok {
					id = e.create(buf)
				} else {
					require.True(t, s.Create(id, buf))
				}
				stored = append(stored, id)
			}
			// The caller reuses its buffer: no store may see that.
			buf[0]++
			settle(s)
			for _, id := range stored {
				got, ok := s.Get(id)
				require.True(t, ok)
				assert.Equal(t, want, got)
			}
			_, ok := s.Get(freshIDs(1)[0])
			assert.False(t, ok, "Get of an ID never stored")

			if k.readsOnly {
				return
			}
			update := sessionData(9)
			require.True(t, s.Update(stored[0], update))
			update[0]++
			settle(s)
			got, ok := s.Get(stored[0])
			require.True(t, ok)
			assert.Equal(t, sessionData(9), got)
		})
	}
}

// TestFixture loads every store with a small fixture, which checks that
// each holds every session, and that the lookup IDs are copies.
func TestFixture(t *testing.T) {
	const n = 500
	for _, k := range kinds {
		s, err := load(k, n)
		require.NoError(t, err, k.name)
		s.Close()
	}
	require.Len(t, ids, n)
	assert.Equal(t, n, len(slices.Compact(slices.Sorted(slices.Values(ids)))), "IDs are distinct")
}

// TestDistributions checks that the key sequences stay in range, are the
// same on every draw, and that the Zipf one is skewed.
func TestDistributions(t *testing.T) {
	const n = 1000
	ds := distributions(n)
	require.Len(t, ds, 2)
	for _, d := range ds {
		require.Len(t, d.seqs, seqCount)
		for _, seq := range d.seqs {
			require.Len(t, seq, seqLen)
			for _, i := range seq {
				require.Less(t, i, uint32(n))
			}
		}
	}
	first := slices.Clone(ds[0].seqs[3])
	distN = 0 // force a fresh draw
	assert.Equal(t, first, distributions(n)[0].seqs[3], "sequences are deterministic")

	counts := make(map[uint32]int)
	for _, i := range ds[0].seqs[0] {
		counts[i]++
	}
	top := slices.Max(slices.Collect(maps.Values(counts)))
	assert.Greater(t, top, seqLen/20, "the hottest Zipf key is drawn often")
}
