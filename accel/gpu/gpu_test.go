package gpu

import (
	"errors"
	"strings"
	"testing"

	"github.com/autonode/autonode/accel"
)

// TestDevices checks that every backend is listed, found or with a reason,
// and that "gpu" either finds a real GPU or says why for each backend.
func TestDevices(t *testing.T) {
	seen := map[string]accel.DeviceInfo{}
	for _, info := range accel.Devices() {
		t.Logf("%-6s found=%v %s%s", info.Kind, info.Found, info.Detail, info.Reason)
		seen[info.Kind] = info
	}
	for _, k := range []string{"cuda", "metal", "opencl"} {
		info, ok := seen[k]
		if !ok {
			t.Errorf("Devices() does not list %s", k)
			continue
		}
		if !info.Found && (info.Reason == "" || strings.Contains(info.Reason, "backend in this build")) {
			t.Errorf("%s: not found, reason %q", k, info.Reason)
		}
	}
	dev, err := accel.LookupDevice("gpu")
	if err != nil {
		if !errors.Is(err, accel.ErrDevice) {
			t.Fatalf("LookupDevice(gpu): %v does not wrap ErrDevice", err)
		}
		for _, k := range []string{"cuda:", "metal:", "opencl:"} {
			if !strings.Contains(err.Error(), k) {
				t.Errorf("LookupDevice(gpu) error %q gives no reason for %s", err, k)
			}
		}
		t.Logf("gpu: %v", err)
		return
	}
	if !accel.IsGPU(dev) {
		t.Errorf("LookupDevice(gpu) = %s, which is not a GPU", dev.Name())
	}
	t.Logf("gpu: %s", dev.Name())
}
