package gpukern

import _ "embed" // the kernel sources live in src/

// Kernel sources, kept as files in src/ and embedded at build time.
var (
	// helperTypes are the structs every kernel library shares (src/types.h).
	//go:embed src/types.h
	helperTypes string
	// reductionSteps are the reduction's device functions (src/reduce.h).
	//go:embed src/reduce.h
	reductionSteps string

	// Kernels are the OpenCL/CUDA kernels (src/kernels.h).
	//go:embed src/kernels.h
	Kernels string

	// OpenCLPrelude maps Source's macros onto OpenCL C 1.2
	// (src/prelude_opencl.h). The build options define T, ACC, IDXOUT,
	// IS_F64 and, when the device has cl_khr_fp64, HAVE_FP64.
	//go:embed src/prelude_opencl.h
	OpenCLPrelude string

	// CUDAPrelude maps Source's macros onto CUDA C++ for NVRTC
	// (src/prelude_cuda.h).
	//go:embed src/prelude_cuda.h
	CUDAPrelude string
)

// Helpers are the types and device functions every kernel library (OpenCL,
// CUDA and Metal) shares: the binary and unary operations (ElementwiseOps)
// and the reduction steps.
var Helpers = helperTypes + ElementwiseOps + reductionSteps

// Source is the kernel library shared by the OpenCL and CUDA backends,
// written once against a few macros that OpenCLPrelude and CUDAPrelude
// define. Each program is built for one element type T (float or double);
// ACC is the accumulator type (double whenever the device has fp64) and
// IDXOUT the type argmin/argmax results are written as. Every kernel guards
// its index, so the launch may round the grid up.
var Source = Helpers + Kernels
