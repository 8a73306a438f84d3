//go:build linux

package cuda

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

// TestSmokeScript builds the GPU smoke bundle with scripts/build-gpu-smoke.sh
// and runs scripts/gpu-smoke.sh from it: without a GPU it must say "no CUDA
// device" and exit 1 (the run CI can do); on the fake driver with a GPU it
// must run everything (at small sizes) and pass.
func TestSmokeScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds test binaries; not in -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the bundle with")
	}
	f := buildFake(t)
	bundle := filepath.Join(t.TempDir(), "bundle")
	build := exec.Command("sh", "../../scripts/build-gpu-smoke.sh", bundle)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-gpu-smoke.sh: %v\n%s", err, out)
	}
	var total int64
	for _, name := range []string{"cuda.test", "opencl.test", "gpu-smoke.sh"} {
		st, err := os.Stat(filepath.Join(bundle, name))
		if err != nil {
			t.Fatalf("the bundle lacks %s: %v", name, err)
		}
		total += st.Size()
	}
	if total > 64<<20 {
		t.Errorf("the bundle is %d MiB; it must stay under 64 MiB", total>>20)
	}
	smoke := func(env ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bundle, "gpu-smoke.sh"))
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("gpu-smoke.sh: %v", err)
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}
	driverDir := filepath.Dir(f.driver)
	t.Run("no driver", func(t *testing.T) {
		if h, err := purego.Dlopen("libcuda.so.1", purego.RTLD_NOW|purego.RTLD_LOCAL); err == nil {
			purego.Dlclose(h)
			t.Skip("this machine has a CUDA driver")
		}
		out, code := smoke("LD_LIBRARY_PATH=")
		if code != 1 || !strings.Contains(out, "gpu-smoke: FAILED: no CUDA device") || !strings.Contains(out, "libcuda.so.1") {
			t.Fatalf("exit %d; want 1 and \"no CUDA device\" with the loader's reason:\n%s", code, out)
		}
	})
	t.Run("no GPU", func(t *testing.T) {
		out, code := smoke("LD_LIBRARY_PATH="+driverDir, "FAKECUDA_DEVICES=0")
		if code != 1 || !strings.Contains(out, "gpu-smoke: FAILED: no CUDA device") || !strings.Contains(out, "sees no GPU") {
			t.Fatalf("exit %d; want 1 and \"no CUDA device\":\n%s", code, out)
		}
	})
	t.Run("fake GPU", func(t *testing.T) {
		out, code := smoke("LD_LIBRARY_PATH="+driverDir,
			"AUTONODE_CUDA_LIB_PATH="+filepath.Dir(f.nvrtc12)+":"+filepath.Dir(f.cublas12),
			"AUTONODE_GPU_SMOKE_SIZES=small")
		for _, want := range []string{"== nvidia-smi", "driver:  CUDA 12.4", "NVRTC:   12.6", "cuBLAS:  12.2.1",
			"--- PASS: TestConformance", "large:   add, scale, index, sum, argmax", "vs cuMemcpyDtoD", "cuBLAS direct",
			"per-operation overhead", "gpu-smoke: PASSED"} {
			if !strings.Contains(out, want) {
				t.Errorf("the smoke run's output lacks %q", want)
			}
		}
		if code != 0 || t.Failed() {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		t.Logf("the smoke run on the fake driver:\n%s", out)
	})
}
