// Package accel provides dense float64 and float32 arrays, the kernels that
// threads compute with, and the Device abstraction with its CPU backend.
// It knows nothing of Starlark.
package accel
