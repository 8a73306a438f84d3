//go:build !race

package accel

// raceEnabled is true under -race, whose instrumentation slows the Go parts
// of the kernels (packing, loop control) by 5–20×.
const raceEnabled = false
