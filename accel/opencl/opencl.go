// Package opencl is accel's OpenCL backend. It loads libOpenCL.so.1 (or
// OpenCL.framework on macOS) at run time with purego, so binaries need no
// cgo and run where no OpenCL is installed; compiles the shared OpenCL C
// kernels from source when the device opens (a device that cannot build
// them is not available, and says why); and runs element-wise operations
// (broadcasting included), reductions, dot, a tiled matmul, transpose and
// other gathers, concatenation, axpy and triad on the device, in work groups
// each kernel's CL_KERNEL_WORK_GROUP_SIZE allows. float64 runs on the device
// only when it has cl_khr_fp64.
//
// Importing the package registers the "opencl" backend with
// accel.RegisterBackend. A CPU implementation such as PoCL is used only
// when asked for by name (device="opencl"), never for device="gpu".
package opencl

import (
	"errors"

	"github.com/autonode/autonode/accel"
)

// Errors the backend wraps.
var (
	// ErrNoLibrary reports that the OpenCL library could not be loaded.
	ErrNoLibrary = errors.New("opencl: library not available")
	// ErrNoDevice reports an OpenCL library without any device.
	ErrNoDevice = errors.New("opencl: no device")
	// ErrBuild reports a kernel that failed to compile; the message holds
	// the build log.
	ErrBuild = errors.New("opencl: kernel build failed")
	// ErrOutOfMemory reports an allocation the device could not satisfy.
	ErrOutOfMemory = errors.New("opencl: out of device memory")
)

func init() {
	accel.RegisterBackend(accel.Backend{Kind: "opencl", Probe: probe})
}
