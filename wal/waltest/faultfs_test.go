package waltest_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal/waltest"
)

func TestDropUnsyncedRestoresLastSync(t *testing.T) {
	fsys := &waltest.FS{}
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	require.NoError(t, err)
	require.NoError(t, f.Preallocate(16))
	_, err = f.WriteAt([]byte("durable"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	_, err = f.WriteAt([]byte("LOST"), 2)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("beyond the end"), 14)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	require.NoError(t, fsys.DropUnsynced())
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, append([]byte("durable"), make([]byte, 9)...), got)
}

func TestFaultsFireOnceOnMatchingFiles(t *testing.T) {
	fsys := &waltest.FS{NoSync: true}
	dir := t.TempDir()
	fsys.Inject(waltest.Fault{Op: waltest.FaultWrite, Pattern: "*.wal", Skip: 1, Err: syscall.ENOSPC})
	fsys.Inject(waltest.Fault{Op: waltest.FaultSync, Err: syscall.EIO})
	other, err := fsys.OpenFile(filepath.Join(dir, "x.tmp"), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer other.Close()
	seg, err := fsys.OpenFile(filepath.Join(dir, "a.wal"), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer seg.Close()

	_, err = other.WriteAt([]byte("x"), 0)
	assert.NoError(t, err, "pattern does not match")
	_, err = seg.WriteAt([]byte("x"), 0)
	assert.NoError(t, err, "skipped")
	n, err := seg.WriteAt([]byte("x"), 1)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.Zero(t, n)
	_, err = seg.WriteAt([]byte("x"), 1)
	assert.NoError(t, err, "fires once")
	assert.ErrorIs(t, other.Sync(), syscall.EIO)
	assert.NoError(t, other.Sync())
	assert.Equal(t, 4, fsys.Writes())
	assert.Equal(t, 2, fsys.Syncs())

	fsys.Inject(waltest.Fault{Op: waltest.FaultWrite, Short: true})
	n, err = seg.WriteAt([]byte("abcd"), 0)
	assert.NoError(t, err, "a silent short write")
	assert.Equal(t, 2, n)
}
