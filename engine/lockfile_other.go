//go:build !unix

package engine

import (
	"fmt"
	"os"
	"runtime"
)

// lockDir refuses: without flock this build cannot keep a second process
// from opening the same directory and interleaving its writes with ours,
// which would corrupt the log. Run in memory (no Options.Dir) here.
func lockDir(dir string) (*os.File, error) {
	return nil, fmt.Errorf("%w: persistence (Options.Dir) needs a file lock this build does not have on %s",
		ErrInvalid, runtime.GOOS)
}
