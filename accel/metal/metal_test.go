//go:build darwin

package metal

import (
	"testing"

	"github.com/autonode/autonode/accel/acceltest"
)

// TestConformance runs the accel conformance suite on the Mac's GPU
// (float32 on the GPU; float64 falls back to the host).
func TestConformance(t *testing.T) {
	d, err := Open()
	if err != nil {
		t.Skipf("no Metal device: %v", err)
	}
	t.Logf("device: %s", d.Detail())
	acceltest.Run(t, d)
}
