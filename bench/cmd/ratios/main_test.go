package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
cpu: AMD EPYC
BenchmarkGet/zipf/store=sesscache           	 1056178	       100.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkGet/zipf/store=sesscache           	 1056178	       300.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkGet/zipf/store=sesscache           	 1056178	       110.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkGet/zipf/store=otter-eaa           	  685882	       200.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkGet/zipf/store=otter-eaa-2         	 1241823	        50.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkGet/zipf/store=sesscache-2         	 2240576	       100.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkCreate/store=sesscache-2           	 1048576	       600.0 ns/op	         0 dropped/op	     373 B/op	       2 allocs/op
BenchmarkCreate/store=otter-eaa-2           	 1048576	       400.0 ns/op	         0 dropped/op	     383 B/op	       3 allocs/op
BenchmarkNewID-2                            	 5000000	       200.0 ns/op	      24 B/op	       1 allocs/op
BenchmarkMemory/store=otter-eaa             	       1	       113.0 B-overhead/session	       335.0 B/session
BenchmarkAdapter/zipf/store=unlocked-map/call=direct-2     	     100	       40.0 ns/op
BenchmarkAdapter/zipf/store=unlocked-map/call=interface-2  	     100	       42.5 ns/op
PASS
`

func TestParse(t *testing.T) {
	rs, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, rs, 12)
	assert.Equal(t, result{name: "Get/zipf", store: "otter-eaa", procs: 2,
		units: map[string]float64{"ns/op": 50, "B/op": 0, "allocs/op": 0}}, rs[4])
	assert.Equal(t, "NewID", rs[8].name)
	assert.Equal(t, "", rs[8].store)
	assert.Equal(t, 1, rs[9].procs)
	assert.Equal(t, "Adapter/zipf/call=direct", rs[10].name)
}

func TestWrite(t *testing.T) {
	rs, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	var out strings.Builder
	write(&out, rs)
	got := out.String()
	// The median of 100, 110 and 300 is 110.
	assert.Contains(t, got, "| Get/zipf | 1 | otter-eaa | 110.0 | 200.0 | 0.55 | 1.82× faster | 3/1 |")
	assert.Contains(t, got, "| Get/zipf | 2 | otter-eaa | 100.0 | 50.0 | 2.00 | 2.00× slower | 1/1 |")
	assert.Contains(t, got, "| Create | 2 | otter-eaa | 600.0 | 400.0 | 1.50 | 1.50× slower | 1/1 |")
	assert.Contains(t, got, "| Create, peer + NewID | 2 | otter-eaa | 600.0 | 600.0 | 1.00 | even | 1/1 |")
	assert.Contains(t, got, "| otter-eaa | 335.0 | 113.0 | 1 |")
	assert.Contains(t, got, "| Adapter/zipf | 2 | unlocked-map | 40.0 | 42.5 | +2.5 ns |")
}

func TestMedian(t *testing.T) {
	m, n, ok := median([]float64{4, 1, 3, 2})
	assert.True(t, ok)
	assert.Equal(t, 4, n)
	assert.Equal(t, 2.5, m)
	_, _, ok = median(nil)
	assert.False(t, ok)
}
