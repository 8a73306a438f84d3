//go:build !amd64 || purego

package kern

// archInit leaves the generic kernels in place.
func archInit() {}
