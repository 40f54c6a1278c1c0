//go:build unix

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

// TestFileModes clears the umask so that the modes seen are the ones Write
// asked for: a snapshot holds session digests and data, readable by the
// owner only.
func TestFileModes(t *testing.T) {
	snapshot.VerifyNoLeaks(t)
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "snaps")
	w := writeRecords(t, dir, 5, makeRecords(3, 1), 1, testOptions(1, 0))
	fi, err := os.Stat(w.Path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
}
