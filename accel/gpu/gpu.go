// Package gpu links every GPU backend into a binary: importing it for its
// side effects,
//
//	import _ "github.com/autonode/autonode/accel/gpu"
//
// registers CUDA, Metal and OpenCL with accel, so that accel.Devices lists
// them (found or not, and why) and accel.LookupDevice("gpu") picks the best
// one present at run time. None of them needs cgo: each loads its system
// library when first probed.
package gpu

import (
	_ "github.com/autonode/autonode/accel/cuda"   // registers "cuda"
	_ "github.com/autonode/autonode/accel/metal"  // registers "metal"
	_ "github.com/autonode/autonode/accel/opencl" // registers "opencl"
)
