//go:build race

package httpsession_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// pooled decoders are allocated again now and then and allocation counts
// mean nothing.
const raceEnabled = true
