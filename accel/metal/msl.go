package metal

import (
	_ "embed" // the MSL sources live in prelude.metal and kernels.metal

	"github.com/autonode/autonode/accel/internal/gpukern"
)

var (
	// mslPrelude maps the shared helpers' macros onto MSL, float only.
	//go:embed prelude.metal
	mslPrelude string

	// mslKernels are the MSL versions of the shared kernels, with the same
	// names and argument order (argument i is buffer index i), so gpukern
	// drives them like the OpenCL and CUDA ones.
	//go:embed kernels.metal
	mslKernels string
)

// mslSource is the complete MSL library.
var mslSource = mslPrelude + gpukern.Helpers + mslKernels
