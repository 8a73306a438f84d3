//go:build race

package runtime

// raceEnabled is true under -race, which reserves terabytes of address
// space (so no RLIMIT_AS test can run) and multiplies memory use.
const raceEnabled = true
