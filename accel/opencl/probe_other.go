//go:build !linux && !darwin

package opencl

import (
	"fmt"
	"runtime"

	"github.com/autonode/autonode/accel"
)

func probe() (accel.Device, error) {
	return nil, fmt.Errorf("%w: the OpenCL backend is built for linux and darwin only, not %s", ErrNoLibrary, runtime.GOOS)
}
