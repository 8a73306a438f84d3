//go:build !linux

package accel

// adviseHuge does nothing where the kernel has no madvise(MADV_HUGEPAGE).
func adviseHuge([]float64) {}
