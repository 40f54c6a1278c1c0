package snapshot_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/snapshot"
)

// populate writes snapshots at the given LSNs into dir, plus a leftover
// temporary file and files List must ignore.
func populate(t *testing.T, dir string, lsns ...uint64) (temp string, others []string) {
	t.Helper()
	for _, lsn := range lsns {
		writeRecords(t, dir, lsn, makeRecords(int(lsn%5), lsn), 1, testOptions(1, 0))
	}
	temp = snapshot.TempName(0x77)
	others = []string{
		"0000000000000000.snap",     // LSN 0 is never a snapshot
		"000000000000000A.snap",     // upper case
		"00000000000000a.snap",      // too short
		"0000000000000001.wal",      // a log segment
		"0000000000000001.snap.tmp", // not Write's temporary name
		"0000000000000001.snap.damaged",
		"notes.txt",
	}
	for _, name := range append([]string{temp}, others...) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, snapshot.FileName(0x99)), 0o700), "a directory with a snapshot's name")
	return temp, others
}

func TestListNewestFirst(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	populate(t, dir, 3, 0x100, 1, 0xfffffffffffffff0)
	infos, err := snapshot.List(dir, testOptions(1, 0))
	require.NoError(t, err)
	var lsns []uint64
	for _, info := range infos {
		lsns = append(lsns, info.LSN)
		fi, err := os.Stat(info.Path)
		require.NoError(t, err)
		assert.Equal(t, snapPath(dir, info.LSN), info.Path)
		assert.Equal(t, fi.Size(), info.Bytes)
		assert.Zero(t, info.Sessions, "List does not open files")
		assert.Zero(t, info.Created)
		assert.Zero(t, info.Duration)
	}
	assert.Equal(t, []uint64{0xfffffffffffffff0, 0x100, 3, 1}, lsns)
}

func TestListMissingOrEmptyDirectory(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	infos, err := snapshot.List(filepath.Join(t.TempDir(), "none"), testOptions(1, 0))
	require.NoError(t, err)
	assert.Empty(t, infos)
	infos, err = snapshot.List(t.TempDir(), testOptions(1, 0))
	require.NoError(t, err)
	assert.Empty(t, infos)
	oldest, err := snapshot.Prune(filepath.Join(t.TempDir(), "none"), 2, testOptions(1, 0))
	require.NoError(t, err)
	assert.Zero(t, oldest)
}

func TestPrune(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	cases := []struct {
		keep   int
		kept   []uint64
		oldest uint64
	}{
		{0, nil, 0},
		{1, []uint64{40}, 40},
		{2, []uint64{40, 30}, 30},
		{4, []uint64{40, 30, 20, 10}, 10},
		{9, []uint64{40, 30, 20, 10}, 10},
	}
	for _, c := range cases {
		dir := t.TempDir()
		temp, others := populate(t, dir, 20, 10, 40, 30)
		oldest, err := snapshot.Prune(dir, c.keep, testOptions(1, 0))
		require.NoError(t, err)
		assert.Equal(t, c.oldest, oldest, "keep %d", c.keep)

		infos, err := snapshot.List(dir, testOptions(1, 0))
		require.NoError(t, err)
		var kept []uint64
		for _, info := range infos {
			kept = append(kept, info.LSN)
		}
		assert.Equal(t, c.kept, kept, "keep %d", c.keep)
		names := dirNames(t, dir)
		assert.NotContains(t, names, temp, "temporary file removed")
		for _, name := range others {
			assert.Contains(t, names, name, "unrelated files stay")
		}
	}
	_, err := snapshot.Prune(t.TempDir(), -1, testOptions(1, 0))
	assert.Error(t, err)
}

// TestPruneGoesOnPastFailures: a file that cannot be removed does not stop
// the rest, and the error says so.
func TestPruneGoesOnPastFailures(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	populate(t, dir, 1, 2, 3)
	oldest, err := snapshot.Prune(dir, 1, snapshot.Options{FS: &faultFS{syncDirErr: syscall.EIO}, Logger: quiet})
	assert.ErrorIs(t, err, syscall.EIO)
	assert.Equal(t, uint64(3), oldest)
	infos, err := snapshot.List(dir, testOptions(1, 0))
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.Equal(t, uint64(3), infos[0].LSN)
}

func TestListAndLoadIgnoreTemporaryFiles(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	dir := t.TempDir()
	writeRecords(t, dir, 5, makeRecords(3, 1), 1, testOptions(1, 0))
	// A crash mid-write leaves a temporary file of a newer snapshot.
	require.NoError(t, os.WriteFile(filepath.Join(dir, snapshot.TempName(9)), []byte("partial"), 0o600))

	infos, err := snapshot.List(dir, testOptions(1, 0))
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.Equal(t, uint64(5), infos[0].LSN)
	_, err = snapshot.Load(infos[0].Path, testOptions(1, 0), nil)
	assert.NoError(t, err)
}
