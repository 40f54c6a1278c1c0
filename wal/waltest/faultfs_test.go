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

func TestPowerCut(t *testing.T) {
	dir := t.TempDir()
	fsys := &waltest.FS{}
	path := filepath.Join(dir, "f")
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("durable"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	_, err = f.WriteAt([]byte("DU"), 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("-lost"), 7)
	require.NoError(t, err)

	require.NoError(t, fsys.PowerCut())
	_, err = f.WriteAt([]byte("x"), 0)
	assert.ErrorIs(t, err, waltest.ErrPowerCut, "nothing reaches the disk after the cut")
	assert.ErrorIs(t, f.Sync(), waltest.ErrPowerCut)
	assert.ErrorIs(t, f.Truncate(0), waltest.ErrPowerCut)
	assert.ErrorIs(t, fsys.Rename(path, path+"2"), waltest.ErrPowerCut)
	assert.ErrorIs(t, fsys.Remove(path), waltest.ErrPowerCut)
	_, err = fsys.OpenFile(filepath.Join(dir, "g"), os.O_RDWR|os.O_CREATE, 0o600)
	assert.ErrorIs(t, err, waltest.ErrPowerCut)
	require.NoError(t, f.Close())

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "durable", string(b), "what was not fsynced is gone")
	r, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	require.NoError(t, err, "reads go on")
	require.NoError(t, r.Close())
}

// TestRenamedOpenFileIsTracked: a file renamed while open (as a spare log
// segment is) keeps its bookkeeping: its writes are undone by a crash and
// its syncs make them durable, and faults and hooks see its new name.
func TestRenamedOpenFileIsTracked(t *testing.T) {
	dir := t.TempDir()
	var synced []string
	fsys := &waltest.FS{BeforeSync: func(path string) error {
		synced = append(synced, filepath.Base(path))
		return nil
	}}
	tmp, final := filepath.Join(dir, "spare.tmp"), filepath.Join(dir, "0000000000000001.wal")
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	require.NoError(t, fsys.Rename(tmp, final))
	_, err = f.WriteAt([]byte("kept"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	assert.Equal(t, []string{"0000000000000001.wal"}, synced)
	fsys.Inject(waltest.Fault{Op: waltest.FaultWrite, Pattern: "*.wal", Err: syscall.EIO})
	_, err = f.WriteAt([]byte("x"), 4)
	assert.ErrorIs(t, err, syscall.EIO, "a fault for *.wal hits the renamed file")
	_, err = f.WriteAt([]byte("lost"), 4)
	require.NoError(t, err)
	require.NoError(t, fsys.PowerCut())
	require.NoError(t, f.Close())
	b, err := os.ReadFile(final)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(b))
}
