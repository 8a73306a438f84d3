//go:build !race

package runtime

// raceEnabled is true under -race.
const raceEnabled = false
