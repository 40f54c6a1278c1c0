package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenShaped matches a word of exactly 22 base64url characters not part of
// a path: the shape of a session ID.
var tokenShaped = regexp.MustCompile(`(^|[^A-Za-z0-9_/-])([A-Za-z0-9_-]{22})([^A-Za-z0-9_-]|$)`)

// assertNoSessionID checks that out prints no session ID. A random ID
// almost surely holds a capital or a digit, which tells it from a
// 22-letter word such as a JSON key.
func assertNoSessionID(t *testing.T, out string) {
	t.Helper()
	for _, m := range tokenShaped.FindAllStringSubmatch(out, -1) {
		assert.False(t, strings.ContainsAny(m[2], "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), "output holds something like a session ID: %q", m[2])
	}
}

func TestRunReport(t *testing.T) {
	for _, sync := range []string{"memory", "everysec"} {
		t.Run(sync, func(t *testing.T) {
			code, stdout, stderr := sessbench("run", "-sessions", "3000", "-duration", "200ms", "-sync", sync)
			require.Equal(t, exitOK, code, stderr)
			for _, want := range []string{"preload", "Get", "Update", "p99.9", "heap per session", "cycles during the workload", "expiry", "time "} {
				assert.Contains(t, stdout, want)
			}
			if sync == "memory" {
				assert.NotContains(t, stdout, "wal ")
			} else {
				assert.Contains(t, stdout, "fsyncs")
				assert.Contains(t, stdout, "temporary directory (removed afterwards)")
			}
			assert.NotContains(t, stdout, "\r", "no progress line when stdout is not a terminal")
			assertNoSessionID(t, stdout)
		})
	}
}

// TestRunJSONAndSVG runs the workload with everything on: harness
// snapshots, expiry during the run, JSON and the SVG plot.
func TestRunJSONAndSVG(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "latency.svg")
	dir := filepath.Join(t.TempDir(), "data")
	code, stdout, stderr := sessbench("run", "-sessions", "5000", "-duration", "600ms", "-snapshot-every", "100ms",
		"-idle", "1s", "-dist", "uniform", "-dir", dir, "-json", "-svg", svg)
	require.Equal(t, exitOK, code, stderr)
	assertNoSessionID(t, stdout)

	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc), "one JSON document")
	for _, k := range []string{"command", "config", "environment", "storage", "preload", "workload", "ops",
		"snapshot_split", "snapshots", "memory", "gc", "wal", "expiry", "timing"} {
		assert.Contains(t, doc, k)
	}
	var res struct {
		Ops []struct {
			Name                                      string
			Count, P50Ns, P90Ns, P99Ns, P999Ns, MaxNs uint64
		}
		SnapshotSplit struct {
			During []struct{ Count uint64 } `json:"during_snapshot"`
			Quiet  []struct{ Count uint64 } `json:"without_snapshot"`
		} `json:"snapshot_split"`
		Snapshots []snapshotEvent
		WAL       struct{ Workload walCounters }
		Memory    memoryResult
		GC        struct{ Cycles uint64 }
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	require.Len(t, res.Ops, 3)
	assert.Equal(t, []string{"Get", "Update", "all"}, []string{res.Ops[0].Name, res.Ops[1].Name, res.Ops[2].Name})
	for _, o := range res.Ops {
		assert.Positive(t, o.Count, o.Name)
		assert.True(t, o.P50Ns <= o.P90Ns && o.P90Ns <= o.P99Ns && o.P99Ns <= o.P999Ns && o.P999Ns <= o.MaxNs, "%s: percentiles in order", o.Name)
	}
	assert.NotEmpty(t, res.Snapshots, "a snapshot every 100 ms in 600 ms")
	require.Len(t, res.SnapshotSplit.During, 2)
	assert.Equal(t, res.Ops[0].Count, res.SnapshotSplit.During[0].Count+res.SnapshotSplit.Quiet[0].Count,
		"every Get is filed under one phase")
	assert.Positive(t, res.WAL.Workload.Records)
	assert.Positive(t, res.Memory.BytesPerSession)

	f, err := os.Open(svg)
	require.NoError(t, err)
	defer f.Close()
	st := checkSVG(t, f)
	assert.GreaterOrEqual(t, st.polylines, 2, "one line per operation and phase")

	_, err = os.Stat(dir)
	assert.NoError(t, err, "-dir is kept")
}

func TestRecoverEndToEnd(t *testing.T) {
	code, stdout, stderr := sessbench("recover", "-sessions", "3000", "-tail", "300", "-repeat", "2", "-json")
	require.Equal(t, exitOK, code, stderr)
	var res recoverResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	require.Len(t, res.Recoveries, 2)
	wal, snap := res.Recoveries[0], res.Recoveries[1]
	assert.Equal(t, "wal", wal.From)
	assert.Equal(t, 3000, wal.Sessions)
	assert.EqualValues(t, 3000, wal.LogRecords)
	assert.Zero(t, wal.SnapshotSessions)
	assert.Equal(t, "snapshot+tail", snap.From)
	assert.Equal(t, 3000, snap.SnapshotSessions)
	assert.EqualValues(t, 300, snap.LogRecords, "the tail and nothing else after the snapshot")
	assert.Len(t, snap.OpenNs, 2)
	assert.Positive(t, snap.SessionsPerSec)
	require.NotNil(t, res.Snapshot)
	assert.EqualValues(t, 3000, res.Snapshot.Sessions)
	assert.Positive(t, res.Snapshot.Bytes)

	code, stdout, stderr = sessbench("recover", "-sessions", "2000", "-tail", "100", "-repeat", "1", "-from", "wal")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "sessions/s")
	assert.NotContains(t, stdout, "snapshot+tail")
}

func TestCrashEndToEnd(t *testing.T) {
	code, stdout, stderr := sessbench("crash", "-cycles", "3", "-seed", "7", "-json")
	require.Equal(t, exitOK, code, stderr)
	var res crashResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	assert.Equal(t, 3, res.Cycles)
	assert.Positive(t, res.Acked)
	assert.Zero(t, res.Lost)
	assert.Empty(t, res.Problems)

	code, stdout, stderr = sessbench("crash", "-cycles", "2", "-sync", "always", "-snapshots=false")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "lost      0")
	assertNoSessionID(t, stdout)
}
