package wal

import "syscall"

// oDSYNC makes every write durable before it returns, for the benchmark that
// compares it with write+fdatasync.
const oDSYNC = syscall.O_DSYNC
