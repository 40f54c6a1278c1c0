//go:build !race

package redistier

const raceEnabled = false
