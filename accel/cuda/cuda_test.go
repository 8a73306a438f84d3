//go:build linux

package cuda

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/accel/acceltest"
)

// These tests run on a real NVIDIA GPU and skip without one, unless
// AUTONODE_REQUIRE_GPU=1 (the GPU smoke run sets it), which turns the skip
// into a failure that says there is no CUDA device.

var (
	devOnce sync.Once
	dev     *Device
	devErr  error
)

func testDevice(t testing.TB) *Device {
	t.Helper()
	devOnce.Do(func() { dev, devErr = Open(0) })
	if devErr != nil {
		if os.Getenv("AUTONODE_REQUIRE_GPU") == "1" {
			t.Fatalf("no CUDA device: %v", devErr)
		}
		t.Skipf("no CUDA GPU, skipping (needs an NVIDIA driver with libcuda.so.1 and NVRTC): %v", devErr)
	}
	return dev
}

func TestConformance(t *testing.T) {
	d := testDevice(t)
	t.Logf("device: %s", d.Detail())
	before := d.fallbacks.Load()
	acceltest.Run(t, d)
	acceltest.RunSizes(t, d)
	if n := d.fallbacks.Load() - before; n > 0 {
		t.Errorf("%d operations fell back to the host; all should run on the GPU", n)
	}
}

// TestMissingDriver checks the error for a driver that is not there, and
// that Devices reports the backend with the loader's reason.
func TestMissingDriver(t *testing.T) {
	_, err := loadDriver([]string{"/nonexistent/libcuda.so.1", "libcuda-nonexistent.so.1"})
	if !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), "/nonexistent/libcuda.so.1") || !strings.Contains(err.Error(), "libcuda-nonexistent.so.1") {
		t.Fatalf("loadDriver(missing) = %v; want ErrNoDriver naming both paths", err)
	}
	for _, info := range accel.Devices() {
		if info.Kind == "cuda" {
			t.Logf("Devices: %+v", info)
			if !info.Found && !strings.Contains(info.Reason, "cuda") {
				t.Errorf("cuda reason %q does not say what is missing", info.Reason)
			}
			return
		}
	}
	t.Error("Devices() does not list cuda")
}

func TestBuildError(t *testing.T) {
	d := testDevice(t)
	_, err := d.nv.compileCUDA(`extern "C" __global__ void broken(float* x) { x[0] = undefined_name; }`, []string{"--gpu-architecture=compute_" + itoa(d.arch)}, false)
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "undefined_name") {
		t.Fatalf("compiling a broken kernel: %v; want ErrBuild with the log", err)
	}
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}
