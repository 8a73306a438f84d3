//go:build linux

package cuda

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/accel/acceltest"
)

var (
	devOnce sync.Once
	dev     *Device
	devErr  error
)

func testDevice(t *testing.T) *Device {
	t.Helper()
	devOnce.Do(func() { dev, devErr = Open(0) })
	if devErr != nil {
		t.Skipf("no CUDA GPU, skipping (needs an NVIDIA driver with libcuda.so.1 and NVRTC): %v", devErr)
	}
	return dev
}

func TestConformance(t *testing.T) {
	d := testDevice(t)
	t.Logf("device: %s", d.Detail())
	acceltest.Run(t, d)
}

// TestMissingDriver checks the error for a driver that is not there, and
// that Devices reports the backend with the loader's reason.
func TestMissingDriver(t *testing.T) {
	_, err := loadDriver([]string{"/nonexistent/libcuda.so.1"}, nvrtcPaths)
	if !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), "/nonexistent/libcuda.so.1") {
		t.Fatalf("loadDriver(missing) = %v; want ErrNoDriver naming the path", err)
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
	_, err := d.compile(`extern "C" __global__ void broken(float* x) { x[0] = undefined_name; }`, []string{"--gpu-architecture=" + d.arch})
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "undefined_name") {
		t.Fatalf("compiling a broken kernel: %v; want ErrBuild with the log", err)
	}
}
