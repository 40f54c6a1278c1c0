package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var sampleFiles = map[string]string{
	"machine.txt":  "CPU: AMD EPYC\ncores: 2\nload average (1, 5, 15 min) before: 0.1 0.2 0.3\n",
	"commands.txt": "redis-benchmark -c 64 ...\ngo test ./engine ...\n",
	"redis-set-always.csv": `"test","rps","avg_latency_ms"
"SET","40000.00","1.5"
"test","rps","avg_latency_ms"
"SET","50000.00","1.4"
"test","rps","avg_latency_ms"
"SET","30000.00","1.6"
`,
	"redis-set-everysec.csv": `"test","rps","avg_latency_ms"
"SET","100000.00","0.6"
`,
	"sesscache-create.txt": "BenchmarkCreateDurable/sync=always/writers=64-2   400000   8000 ns/op   120000 creates/s   60.00 records/fsync   400 B/op   4 allocs/op\n" +
		"BenchmarkCreateDurable/sync=everysec/writers=64-2   2000000   2000 ns/op   500000 creates/s   300 B/op   3 allocs/op\n" +
		"BenchmarkCreateDurable/sync=always/writers=64-2   400000   8000 ns/op   200000 creates/s   50.00 records/fsync   400 B/op   4 allocs/op\n" +
		"BenchmarkCreateDurable/sync=always/writers=64-2   400000   8000 ns/op   60000 creates/s   70.00 records/fsync   400 B/op   4 allocs/op\n",
	"redis-load-aof.txt":      "1.500 1.200\n1.700 1.400\n1.600 1.300\n",
	"redis-load-rdb-tail.txt": "0.900 -\n0.700 -\n0.800 -\n",
	"redis-files.txt":         "aof 251658240\nrdb_base 220000000\nrdb_base_tail 241172480\n",
	"recover.json": `{"command": "recover",
  "build": {"log_bytes": 277872640},
  "snapshot": {"duration_ns": 2500000000, "bytes": 277872640, "sessions": 1000000, "engine": "recovered"},
  "tail": {"records": 100000, "bytes": 27787264},
  "recoveries": [
    {"from": "wal", "sessions": 1000000, "log_bytes": 277872640, "median_ns": 2000000000, "sessions_per_sec": 500000},
    {"from": "snapshot+tail", "sessions": 1000000, "snapshot_bytes": 277872640, "log_bytes": 27787264, "median_ns": 1600000000, "sessions_per_sec": 625000}
  ]}`,
}

func writeSample(t *testing.T, skip string) string {
	dir := t.TempDir()
	for name, body := range sampleFiles {
		if name != skip {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
		}
	}
	return dir
}

func TestReport(t *testing.T) {
	m, err := load(writeSample(t, ""))
	require.NoError(t, err)
	var out strings.Builder
	require.NoError(t, write(&out, m))
	got := out.String()
	assert.Contains(t, got, "| CPU | AMD EPYC |")
	// Medians of the rounds, and each round's own ratio.
	assert.Contains(t, got, "| always | 40.0k | 120.0k | 3.00× | 3.00×, 4.00×, 2.00× | 60.0 |")
	assert.Contains(t, got, "| everysec | 100.0k | 500.0k | 5.00× | 5.00× | – |")
	assert.Contains(t, got, "Medians of 3 rounds")
	// The log alone: Redis's logged median 1.3 s over sesscache's 2.0 s.
	assert.Contains(t, got, "| the log alone: command AOF / WAL | 1.30 s | 1.60 s | 2.00 s | 0.65× | 500.0k | 240.0 MiB, 265.0 MiB |")
	// Nothing logged: the wall median 0.8 s over 1.6 s.
	assert.Contains(t, got, "| – | 0.80 s | 1.60 s | 0.50× | 625.0k | 230.0 MiB, 291.5 MiB |")
	assert.Contains(t, got, "sesscache snapshot of 1.00M sessions: 2.50 s, 265.0 MiB")
	assert.Contains(t, got, "redis-benchmark -c 64 ...")
	assert.Contains(t, got, `"SET","40000.00","1.5"`)
}

func TestMissingInput(t *testing.T) {
	for name := range sampleFiles {
		_, err := load(writeSample(t, name))
		assert.Error(t, err, "without %s", name)
	}
}

func TestMedianOf(t *testing.T) {
	m, ok := medianOf([][2]string{{"3", "-"}, {"1", "-"}, {"2", "-"}, {"10", "-"}}, 0)
	assert.True(t, ok)
	assert.Equal(t, 2.5, m)
	_, ok = medianOf([][2]string{{"3", "-"}}, 1)
	assert.False(t, ok)
}
