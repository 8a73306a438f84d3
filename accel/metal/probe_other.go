//go:build !darwin

package metal

import (
	"fmt"
	"runtime"

	"github.com/autonode/autonode/accel"
)

func probe() (accel.Device, error) {
	return nil, fmt.Errorf("%w: Metal is only available on macOS, not %s", ErrNoDevice, runtime.GOOS)
}
