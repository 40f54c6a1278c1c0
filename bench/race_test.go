//go:build race

package bench

// raceEnabled reports a build with the race detector; see openSCS.
const raceEnabled = true
