//go:build linux

package cuda

import (
	"testing"

	"github.com/autonode/autonode/accel/acceltest"
)

// TestFakeConformance runs the accel conformance suite through the whole
// backend on the fake driver: the real kernel source compiled by the fake
// NVRTC into a cubin, loaded and launched, with cuBLAS for matmul.
func TestFakeConformance(t *testing.T) {
	d, f := openFake(t, fakeOptions{})
	before := f.blasGet("calls") + f.blasGet("batched_calls")
	acceltest.Run(t, d)
	acceltest.RunSizes(t, d)
	if f.blasGet("calls")+f.blasGet("batched_calls") == before {
		t.Errorf("no matmul went through cuBLAS")
	}
	if n := d.fallbacks.Load(); n > 0 {
		t.Errorf("%d operations fell back to the host", n)
	}
}
