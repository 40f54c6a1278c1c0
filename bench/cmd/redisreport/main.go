// Command redisreport turns the raw measurements bench/redis.sh collects
// into the Markdown of results/redis.md: the machine, sesscache against
// Redis on durable write throughput and on load time, the ratios, the exact
// commands and the raw numbers.
//
// Usage:
//
//	redisreport DIR
//
// DIR holds what redis.sh wrote (all plain text, one file per measurement):
//
//	machine.txt                 "name: value" lines
//	commands.txt                one command per line, in the order run
//	redis-set-<policy>.csv      redis-benchmark --csv output, policy always or everysec,
//	                            one SET line per round
//	sesscache-create.txt        BenchmarkCreateDurable result lines, one per policy and round
//	redis-load-<form>.txt       one load per line: wall seconds, logged seconds (or -)
//	redis-files.txt             "<name> <bytes>" lines: AOF sizes
//	recover.json                `sessbench recover -json` output
//
// with form "aof" (a command AOF: the log alone) or "rdb-tail" (an
// RDB-preamble AOF plus SETs: a compacted image and a tail).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: redisreport DIR")
		os.Exit(2)
	}
	m, err := load(os.Args[1])
	if err == nil {
		err = write(os.Stdout, m)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisreport:", err)
		os.Exit(1)
	}
}

var policies = []string{"always", "everysec"}

// measurements is everything redis.sh measured.
type measurements struct {
	machine  [][2]string
	commands []string
	// Per policy, one entry per round: Redis SET/s, sesscache creates/s and
	// records per fsync; and the raw CSV and benchmark lines.
	redisSet, createRate, perFsync map[string][]float64
	redisCSV                       map[string]string
	bench                          map[string][]string
	// Per form: each load's wall and logged seconds.
	loads map[string][][2]string
	files map[string]int64
	rec   recoverJSON
	json  string
}

// recoverJSON is the part of `sessbench recover -json` the report uses.
type recoverJSON struct {
	Snapshot struct {
		DurationNs int64  `json:"duration_ns"`
		Bytes      int64  `json:"bytes"`
		Sessions   uint64 `json:"sessions"`
		Engine     string `json:"engine"`
	} `json:"snapshot"`
	Build struct {
		LogBytes int64 `json:"log_bytes"`
	} `json:"build"`
	Tail struct {
		Records uint64 `json:"records"`
		Bytes   int64  `json:"bytes"`
	} `json:"tail"`
	Recoveries []recovery `json:"recoveries"`
}

// recovery is one source's timed Opens.
type recovery struct {
	From           string  `json:"from"`
	SnapshotBytes  int64   `json:"snapshot_bytes"`
	LogBytes       int64   `json:"log_bytes"`
	MedianNs       int64   `json:"median_ns"`
	SessionsPerSec float64 `json:"sessions_per_sec"`
}

func load(dir string) (*measurements, error) {
	m := &measurements{redisSet: map[string][]float64{}, redisCSV: map[string]string{}, createRate: map[string][]float64{},
		perFsync: map[string][]float64{}, bench: map[string][]string{}, loads: map[string][][2]string{}, files: map[string]int64{}}
	number := func(file, v string) (float64, error) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q is not a number", file, v)
		}
		return f, nil
	}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		return string(b), err
	}
	s, err := read("machine.txt")
	if err != nil {
		return nil, err
	}
	for _, l := range lines(s) {
		k, v, _ := strings.Cut(l, ":")
		m.machine = append(m.machine, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	if s, err = read("commands.txt"); err != nil {
		return nil, err
	}
	m.commands = lines(s)
	for _, p := range policies {
		if s, err = read("redis-set-" + p + ".csv"); err != nil {
			return nil, err
		}
		m.redisCSV[p] = strings.TrimSpace(s)
		for _, l := range lines(s) {
			f := strings.Split(l, ",")
			if len(f) > 1 && strings.Trim(f[0], `"`) == "SET" {
				v, err := number("redis-set-"+p+".csv", strings.Trim(f[1], `"`))
				if err != nil {
					return nil, err
				}
				m.redisSet[p] = append(m.redisSet[p], v)
			}
		}
		if len(m.redisSet[p]) == 0 {
			return nil, fmt.Errorf("redis-set-%s.csv: no SET line", p)
		}
	}
	if s, err = read("sesscache-create.txt"); err != nil {
		return nil, err
	}
	for _, l := range lines(s) {
		f := strings.Fields(l)
		for _, p := range policies {
			if len(f) == 0 || !strings.Contains(f[0], "/sync="+p+"/") {
				continue
			}
			m.bench[p] = append(m.bench[p], l)
			for i := 1; i < len(f); i++ {
				var dst map[string][]float64
				switch f[i] {
				case "creates/s":
					dst = m.createRate
				case "records/fsync":
					dst = m.perFsync
				default:
					continue
				}
				v, err := number("sesscache-create.txt", f[i-1])
				if err != nil {
					return nil, err
				}
				dst[p] = append(dst[p], v)
			}
		}
	}
	for _, p := range policies {
		if len(m.createRate[p]) == 0 {
			return nil, fmt.Errorf("sesscache-create.txt: no creates/s for sync=%s", p)
		}
	}
	for _, form := range []string{"aof", "rdb-tail"} {
		if s, err = read("redis-load-" + form + ".txt"); err != nil {
			return nil, err
		}
		for _, l := range lines(s) {
			f := strings.Fields(l)
			if len(f) != 2 {
				return nil, fmt.Errorf("redis-load-%s.txt: %q is not two fields", form, l)
			}
			m.loads[form] = append(m.loads[form], [2]string{f[0], f[1]})
		}
	}
	if s, err = read("redis-files.txt"); err != nil {
		return nil, err
	}
	for _, l := range lines(s) {
		if k, v, ok := strings.Cut(l, " "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("redis-files.txt: %q", l)
			}
			m.files[k] = n
		}
	}
	if m.json, err = read("recover.json"); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(m.json), &m.rec); err != nil {
		return nil, fmt.Errorf("recover.json: %w", err)
	}
	if len(m.rec.Recoveries) != 2 {
		return nil, errors.New("recover.json: want the wal and snapshot+tail recoveries (-from both)")
	}
	return m, nil
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// medianOf returns the median of the numbers in column col of rows, and
// false if any is missing.
func medianOf(rows [][2]string, col int) (float64, bool) {
	var v []float64
	for _, r := range rows {
		f, err := strconv.ParseFloat(r[col], 64)
		if err != nil {
			return 0, false
		}
		v = append(v, f)
	}
	return median(v)
}

// median returns the median of v, and false if v is empty.
func median(v []float64) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}
