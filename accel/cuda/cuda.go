// Package cuda is accel's CUDA backend for NVIDIA GPUs on Linux. It drives
// the driver API in libcuda.so.1 (the _v2 entry points), compiles the
// kernels shared with the OpenCL backend at run time with NVRTC into a cubin
// for the GPU (PTX when the GPU is newer than NVRTC), and multiplies
// matrices with cuBLAS when it is installed, all loaded with purego, so
// binaries need no cgo and no CUDA toolkit at build time.
//
// The device's primary context (shared with the CUDA runtime and cuBLAS)
// is created with blocking synchronisation; every call into it runs with
// the calling goroutine locked to its OS thread and the context current on
// that thread, one call at a time. Kernel arguments are pinned while the
// driver reads them. Operations are queued on the default stream without
// waiting, outputs come from the stream-ordered memory pool, and reading a
// result waits for the work before it.
//
// Importing the package registers the "cuda" backend with
// accel.RegisterBackend; a machine without a driver, a GPU or NVRTC, or
// whose driver does not load the compiled kernels, lists the backend as not
// found with the reason.
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
	// ErrBuild reports kernels that NVRTC failed to compile or that the
	// driver did not load; the message holds the compiler's or the JIT's
	// log.
	ErrBuild = errors.New("cuda: kernel build failed")
	// ErrOutOfMemory reports an allocation the GPU could not satisfy.
	ErrOutOfMemory = errors.New("cuda: out of device memory")
)

func init() {
	accel.RegisterBackend(accel.Backend{Kind: "cuda", Probe: probe})
}
