//go:build race

package kern

// raceEnabled reports a -race build, whose instrumented Go code (packing,
// scheduling) runs several times slower.
const raceEnabled = true
