//go:build !linux

package accel

// physicalMemory returns 0 (unknown) where the standard library cannot ask;
// allocations are then bounded by the budget alone.
func physicalMemory() int64 { return 0 }
