package main

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBucketBounds(t *testing.T) {
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 65, 1000, 123456, 1 << 40, 1<<63 + 5} {
		i := bucketOf(v)
		assert.LessOrEqual(t, v, upperOf(i), "value %d above its bucket's bound", v)
		if i > 0 {
			assert.Greater(t, v, upperOf(i-1), "value %d also fits the bucket below", v)
		}
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var h hist
	vals := make([]uint64, 100000)
	for i := range vals {
		vals[i] = uint64(r.ExpFloat64() * 50000)
		h.record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.quantile(q)
		assert.GreaterOrEqual(t, got, exact, "q=%v", q)
		assert.LessOrEqual(t, float64(got), float64(exact)*1.04+1, "q=%v within 1/32", q)
	}
	assert.Equal(t, vals[len(vals)-1], h.quantile(1))
	var m hist
	m.merge(&h)
	assert.Equal(t, h.quantile(0.99), m.quantile(0.99))
}
