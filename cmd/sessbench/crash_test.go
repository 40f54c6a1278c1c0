package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrashMixesEndToEnd runs the crash command with every way of ending
// a cycle: kill -9, kills inside Open, power cuts, under both policies.
func TestCrashMixesEndToEnd(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace")
	code, stdout, stderr := sessbench("crash", "-cycles", "8", "-seed", "3", "-power-cut", "0.5", "-kill-in-open", "0.25",
		"-writers", "4", "-max-ops", "120", "-trace", trace, "-json")
	require.Equal(t, exitOK, code, stderr)
	var res crashResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	assert.Equal(t, 8, res.Cycles)
	assert.Equal(t, 4, res.PowerCuts)
	assert.Positive(t, res.Acked)
	assert.Positive(t, res.ByKind["RevokeUser"]+res.ByKind["RevokeOthers"])
	assert.Positive(t, res.FromSnapshot)
	assert.Zero(t, res.Lost)
	assert.Empty(t, res.Problems)
	assert.Len(t, res.PerPolicy, 2)
	b, err := os.ReadFile(trace)
	require.NoError(t, err)
	assert.Empty(t, b, "only failing cycles are traced")

	code, stdout, stderr = sessbench("crash", "-cycles", "2", "-sync", "everysec", "-writers", "2", "-mix", "revoke-user=0,revoke-others=0")
	require.Equal(t, exitOK, code, stderr)
	for _, want := range []string{"cycles    2", "RevokeUser 0", "lost      0", "mix create=22"} {
		assert.Contains(t, stdout, want)
	}
	assertNoSessionID(t, stdout)
}

func TestCrashBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"crash", "-mix", "frob=1"}, `unknown operation "frob"`},
		{[]string{"crash", "-snapshot-every", "60ms-5ms"}, "-snapshot-every must be MIN-MAX"},
		{[]string{"crash", "-power-cut", "2"}, "shares of cycles"},
		{[]string{"crash", "-writers", "0"}, "-writers, -users and -hot must be at least 1"},
		{[]string{crashChildCommand, "-config", "{}"}, "sync policy must be always or everysec"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := sessbench(tc.args...)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
		})
	}
}
