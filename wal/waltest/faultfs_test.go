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

// create makes a file through fsys with the given content, fsynced: its
// data is durable, its name only once its directory is synced.
func create(t *testing.T, fsys *waltest.FS, path, content string) {
	t.Helper()
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte(content), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
}

// contents returns the directory's files and their content.
func contents(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		got[e.Name()] = string(b)
	}
	return got
}

// TestNeedDirSyncUndoesCreations: a file whose creation no SyncDir covered
// disappears in a crash even though its data was fsynced; one covered
// stays. Without NeedDirSync both stay, as before.
func TestNeedDirSyncUndoesCreations(t *testing.T) {
	for _, need := range []bool{true, false} {
		dir := t.TempDir()
		fsys := &waltest.FS{NeedDirSync: need}
		create(t, fsys, filepath.Join(dir, "named"), "kept")
		require.NoError(t, fsys.SyncDir(dir))
		create(t, fsys, filepath.Join(dir, "unnamed"), "data fsynced, name not")
		require.NoError(t, fsys.PowerCut())
		want := map[string]string{"named": "kept", "unnamed": "data fsynced, name not"}
		if need {
			delete(want, "unnamed")
		}
		assert.Equal(t, want, contents(t, dir), "NeedDirSync %v", need)
	}
}

// TestNeedDirSyncUndoesRenames: a rename not covered by SyncDir goes back,
// and a file it replaced comes back with its synced content, as the
// write-temporary-then-rename pattern (a manifest) needs; covered, it stays.
func TestNeedDirSyncUndoesRenames(t *testing.T) {
	dir := t.TempDir()
	fsys := &waltest.FS{NeedDirSync: true}
	create(t, fsys, filepath.Join(dir, "MANIFEST"), "old")
	create(t, fsys, filepath.Join(dir, "a"), "a")
	require.NoError(t, fsys.SyncDir(dir))

	create(t, fsys, filepath.Join(dir, "MANIFEST.tmp"), "new")
	require.NoError(t, fsys.Rename(filepath.Join(dir, "MANIFEST.tmp"), filepath.Join(dir, "MANIFEST")))
	require.NoError(t, fsys.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")))
	assert.Equal(t, map[string]string{"MANIFEST": "new", "b": "a"}, contents(t, dir))
	require.NoError(t, fsys.DropUnsynced())
	assert.Equal(t, map[string]string{"MANIFEST": "old", "a": "a"}, contents(t, dir),
		"the renames are undone, the replaced file is back and the new one's creation is undone")

	create(t, fsys, filepath.Join(dir, "MANIFEST.tmp"), "new")
	require.NoError(t, fsys.Rename(filepath.Join(dir, "MANIFEST.tmp"), filepath.Join(dir, "MANIFEST")))
	require.NoError(t, fsys.SyncDir(dir))
	require.NoError(t, fsys.PowerCut())
	assert.Equal(t, map[string]string{"MANIFEST": "new", "a": "a"}, contents(t, dir))
}

// TestNeedDirSyncUndoesRemovals: a removed file whose removal no SyncDir
// covered comes back with the content of its last Sync (not its unsynced
// writes, and with its preallocated size), unless its own creation was
// never durable either.
func TestNeedDirSyncUndoesRemovals(t *testing.T) {
	dir := t.TempDir()
	fsys := &waltest.FS{NeedDirSync: true}
	seg := filepath.Join(dir, "seg")
	f, err := fsys.OpenFile(seg, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	require.NoError(t, err)
	require.NoError(t, f.Preallocate(3<<20)) // more than one of the chunks durable reads
	_, err = f.WriteAt([]byte("synced"), 2<<20)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, fsys.SyncDir(dir))
	_, err = f.WriteAt([]byte("UNSYNCED"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	create(t, fsys, filepath.Join(dir, "gone"), "x")
	require.NoError(t, fsys.SyncDir(dir))
	create(t, fsys, filepath.Join(dir, "fresh"), "never named durably")

	for _, name := range []string{"seg", "gone", "fresh"} {
		require.NoError(t, fsys.Remove(filepath.Join(dir, name)))
	}
	require.NoError(t, fsys.SyncDir(t.TempDir()), "another directory's sync covers nothing here")
	require.NoError(t, fsys.PowerCut())

	want := make([]byte, 3<<20)
	copy(want[2<<20:], "synced")
	got := contents(t, dir)
	assert.Equal(t, string(want), got["seg"], "back as of its last Sync, preallocated size included")
	assert.Equal(t, "x", got["gone"])
	assert.NotContains(t, got, "fresh")
	assert.Len(t, got, 2)
}

// TestNeedDirSyncRenameAcrossDirectories: a rename into another directory
// is durable only once both directories are synced.
func TestNeedDirSyncRenameAcrossDirectories(t *testing.T) {
	for _, synced := range [][]string{{"src"}, {"dst"}, {"src", "dst"}} {
		root := t.TempDir()
		src, dst := filepath.Join(root, "src"), filepath.Join(root, "dst")
		fsys := &waltest.FS{NeedDirSync: true, NoSync: true} // NoSync: syncs still count
		require.NoError(t, fsys.MkdirAll(src, 0o700))
		require.NoError(t, fsys.MkdirAll(dst, 0o700))
		create(t, fsys, filepath.Join(src, "f"), "f")
		require.NoError(t, fsys.SyncDir(src))
		require.NoError(t, fsys.Rename(filepath.Join(src, "f"), filepath.Join(dst, "f")))
		for _, d := range synced {
			require.NoError(t, fsys.SyncDir(filepath.Join(root, d)))
		}
		require.NoError(t, fsys.DropUnsynced())
		moved := len(synced) == 2
		assert.Equal(t, moved, len(contents(t, dst)) == 1, "synced %v", synced)
		assert.Equal(t, !moved, len(contents(t, src)) == 1, "synced %v", synced)
	}
}

// TestNeedDirSyncSpareSegment follows the log's spare segment: created and
// preallocated under a temporary name, renamed to its real name and the
// directory synced. A crash before that sync leaves no segment.
func TestNeedDirSyncSpareSegment(t *testing.T) {
	for _, syncDir := range []bool{true, false} {
		dir := t.TempDir()
		fsys := &waltest.FS{NeedDirSync: true}
		tmp, final := filepath.Join(dir, "spare.tmp"), filepath.Join(dir, "0000000000000001.wal")
		f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		require.NoError(t, err)
		require.NoError(t, f.Preallocate(64))
		require.NoError(t, f.Sync())
		_, err = f.WriteAt([]byte("header"), 0)
		require.NoError(t, err)
		require.NoError(t, f.Sync())
		require.NoError(t, fsys.Rename(tmp, final))
		if syncDir {
			require.NoError(t, fsys.SyncDir(dir))
		}
		_, err = f.WriteAt([]byte("-unsynced"), 6)
		require.NoError(t, err)
		require.NoError(t, fsys.PowerCut())
		require.NoError(t, f.Close())
		got := contents(t, dir)
		if !syncDir {
			assert.Empty(t, got)
			continue
		}
		want := make([]byte, 64)
		copy(want, "header")
		assert.Equal(t, map[string]string{"0000000000000001.wal": string(want)}, got)
	}
}
