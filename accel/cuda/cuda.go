// Package cuda is accel's CUDA backend for NVIDIA GPUs on Linux. It drives
// the driver API in libcuda.so.1 (the _v2 entry points) and compiles the
// kernels shared with the OpenCL backend at run time with NVRTC, both
// loaded with purego, so binaries need no cgo and no CUDA toolkit at build
// time. Every call into a context runs on one goroutine locked to its OS
// thread (a CUDA context is current per thread), and kernel arguments are
// pinned while the driver reads them.
//
// Importing the package registers the "cuda" backend with
// accel.RegisterBackend; without a driver the backend is listed as not
// found, with the loader's reason.
package cuda

import (
	"errors"

	"github.com/autonode/autonode/accel"
)

// Errors the backend wraps.
var (
	// ErrNoDriver reports that libcuda could not be loaded or initialised.
	ErrNoDriver = errors.New("cuda: driver not available")
	// ErrNoDevice reports a driver without a usable GPU.
	ErrNoDevice = errors.New("cuda: no device")
	// ErrNoCompiler reports that NVRTC (libnvrtc.so) could not be loaded.
	ErrNoCompiler = errors.New("cuda: NVRTC not available")
	// ErrBuild reports a kernel that NVRTC failed to compile; the message
	// holds the compiler log.
	ErrBuild = errors.New("cuda: kernel build failed")
	// ErrOutOfMemory reports an allocation the GPU could not satisfy.
	ErrOutOfMemory = errors.New("cuda: out of device memory")
)

func init() {
	accel.RegisterBackend(accel.Backend{Kind: "cuda", Probe: probe})
}
