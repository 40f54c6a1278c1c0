//go:build !linux

package wal

// oDSYNC is 0 where the benchmark does not compare O_DSYNC.
const oDSYNC = 0
