//go:build !race

package kern

// raceEnabled reports a -race build.
const raceEnabled = false
