package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/sesscache/sesscache/internal/leakcheck"
	"github.com/stretchr/testify/assert"
)

// TestMain lets the test binary stand in for sessbench as the crash
// command's writer (which runs os.Executable), and fails the run if a
// goroutine of this module outlives the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == crashChildCommand {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	leakcheck.Main(m, leakcheck.Module)
}

// sessbench runs the command line and returns its exit code and output.
func sessbench(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestBadUsageExitsTwoWithAMessage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"run", "stray"}, `unexpected argument "stray"`},
		{[]string{"run", "-sessions", "many"}, `invalid value "many" for flag -sessions`},
		{[]string{"run", "-duration"}, "flag needs an argument: -duration"},
		{[]string{"run", "-read", "1.5"}, "-read must be between 0 and 1"},
		{[]string{"run", "-dist", "normal"}, `-dist must be zipf or uniform, not "normal"`},
		{[]string{"run", "-zipf-s", "1"}, "-zipf-s must be greater than 1"},
		{[]string{"run", "-sync", "fast"}, `-sync must be memory, always, everysec or no, not "fast"`},
		{[]string{"run", "-sync", "memory", "-snapshot-every", "1s"}, "the in-memory engine takes no snapshots"},
		{[]string{"run", "-sync", "memory", "-dir", "x"}, "-dir needs a persistent engine"},
		{[]string{"run", "-snapshot-every", "1s", "-snapshot-interval", "1s"}, "do not combine it"},
		{[]string{"run", "-snapshot-after", "lots"}, "want a number of bytes"},
		{[]string{"run", "-workers", "0"}, "-workers must be at least 1"},
		{[]string{"recover", "-from", "tape"}, `-from must be wal, snapshot or both, not "tape"`},
		{[]string{"recover", "-repeat", "0"}, "-repeat must be at least 1"},
		{[]string{"crash", "-sync", "no"}, "-sync no may lose acknowledged writes"},
		{[]string{"crash", "-cycles", "0"}, "set -cycles or -duration"},
		{[]string{"crash", "-max-ops", "2"}, "-max-ops must be at least 5"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := sessbench(tc.args...)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
			assert.Less(t, strings.Count(stderr, "\n"), 15, "an error is a message, not the whole flag list")
		})
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	for _, cmd := range []string{"run", "recover", "crash"} {
		code, _, stderr := sessbench(cmd, "-h")
		assert.Equal(t, exitOK, code, cmd)
		assert.Contains(t, stderr, "usage: sessbench "+cmd, cmd)
		assert.Contains(t, stderr, "-json", cmd)
	}
	_, _, stderr := sessbench("run", "-h")
	for _, f := range []string{"-sessions", "-duration", "-read", "-dist", "-zipf-s", "-data", "-workers", "-sync",
		"-dir", "-snapshot-every", "-snapshot-interval", "-idle", "-absolute", "-svg"} {
		assert.Contains(t, stderr, "\n  "+f+" ", f)
	}
	for _, help := range []string{"help", "-h", "--help"} {
		code, stdout, _ := sessbench(help)
		assert.Equal(t, exitOK, code, help)
		assert.Contains(t, stdout, "recover", help)
		assert.NotContains(t, stdout, crashChildCommand, "the writer's subcommand is not for people")
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"65536": 65536, "32KiB": 32 << 10, "64MiB": 64 << 20, "1GiB": 1 << 30, "2MB": 2e6, "-1": -1, "10B": 10} {
		var b byteSize
		if assert.NoError(t, b.Set(in), in) {
			assert.Equal(t, want, int64(b), in)
		}
	}
	var b byteSize
	assert.Error(t, b.Set("MiB"))
}

func TestCrashDurationLiftsTheDefaultCount(t *testing.T) {
	c, err := parseCrash([]string{"-duration", "1m"}, io.Discard)
	assert.NoError(t, err)
	assert.Zero(t, c.Cycles, "-duration alone runs for the time, however many cycles")
	c, err = parseCrash([]string{"-duration", "1m", "-cycles", "5"}, io.Discard)
	assert.NoError(t, err)
	assert.Equal(t, 5, c.Cycles, "both: whichever comes first")
	c, err = parseCrash(nil, io.Discard)
	assert.NoError(t, err)
	assert.Equal(t, 100, c.Cycles)
	assert.NotZero(t, c.Seed, "a seed from the clock, printed in the report")
}
