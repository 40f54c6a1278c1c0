//go:build !unix

package engine

import (
	"os"
	"path/filepath"
)

// lockDir on systems without flock only creates the lock file: there, two
// processes opening one directory are not detected.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
}
