//go:build linux || darwin

package opencl

import "github.com/autonode/autonode/accel"

func probe() (accel.Device, error) {
	d, err := Open()
	if err != nil {
		return nil, err
	}
	return d, nil
}
