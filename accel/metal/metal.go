// Package metal is accel's Metal backend for macOS. It talks to
// Metal.framework through purego's Objective-C runtime (no cgo): the MSL
// kernels are compiled at run time with an explicit language version set
// through MTLCompileOptions (a cgo-free Go binary otherwise gets MSL 2.4)
// and fast math off; MTLSize is passed to dispatchThreadgroups by value;
// each submission runs inside an autorelease pool on a locked OS thread;
// and arrays live in shared-storage buffers that the CPU reads directly.
//
// Metal has no double precision, so float64 operations run on the host
// (on shared memory, without a transfer). The package is compiled and
// vetted for darwin/arm64 and darwin/amd64 in CI but must be run on a Mac.
//
// Importing the package registers the "metal" backend with
// accel.RegisterBackend.
package metal

import (
	"errors"

	"github.com/autonode/autonode/accel"
)

// Errors the backend wraps.
var (
	// ErrNoDevice reports that Metal or a Metal GPU is not available.
	ErrNoDevice = errors.New("metal: no device")
	// ErrBuild reports MSL source that failed to compile; the message holds
	// the compiler's description.
	ErrBuild = errors.New("metal: kernel build failed")
	// ErrOutOfMemory reports an allocation the GPU could not satisfy.
	ErrOutOfMemory = errors.New("metal: out of device memory")
)

func init() {
	accel.RegisterBackend(accel.Backend{Kind: "metal", Probe: probe})
}
