//go:build !linux

package cuda

import (
	"fmt"
	"runtime"

	"github.com/autonode/autonode/accel"
)

func probe() (accel.Device, error) {
	return nil, fmt.Errorf("%w: the CUDA backend is built for linux only, not %s", ErrNoDriver, runtime.GOOS)
}
