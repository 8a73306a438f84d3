//go:build linux

package cuda

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/accel/acceltest"
)

// openFake builds testdata/fakecuda.c, a C stand-in for libcuda.so.1 and
// libnvrtc.so that runs a few kernels on the CPU and rejects calls made
// from a thread other than the context's, and opens a Device on it.
func openFake(t *testing.T) *Device {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler to build the fake CUDA driver (testdata/fakecuda.c)")
	}
	lib := filepath.Join(t.TempDir(), "libfakecuda.so")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, "testdata/fakecuda.c", "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("building the fake driver: %v\n%s", err, out)
	}
	prevD, prevN := driverPaths, nvrtcPaths
	driverPaths, nvrtcPaths = []string{lib}, []string{lib}
	defer func() { driverPaths, nvrtcPaths = prevD, prevN }()
	d, err := Open(0)
	if err != nil {
		t.Fatalf("Open on the fake driver: %v", err)
	}
	return d
}

// TestFakeDriver drives the binding end to end against the fake driver:
// NVRTC options, module loading, allocation, copies and launches of the
// kernels the fake implements, compared with the CPU backend.
func TestFakeDriver(t *testing.T) {
	d := openFake(t)
	if d.Detail() != "cuda:0 Fake GPU (sm_90, 1024 MiB)" || d.arch != "compute_90" {
		t.Errorf("device detail %q, arch %q", d.Detail(), d.arch)
	}
	d.PoisonNew(true)
	ctx := context.Background()
	r := acceltest.NewRand(t)
	host, gpu := accel.New(accel.Options{}), accel.New(accel.Options{Device: d})
	defer gpu.Close()
	for _, dt := range []accel.DType{accel.Float64, accel.Float32} {
		mk := func(shape ...int) (*accel.Array, *accel.Array) {
			h, err := host.Rand(dt, r.Uint64(), shape...)
			if err != nil {
				t.Fatal(err)
			}
			g, err := gpu.ToDevice(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			return h, g
		}
		xh, xd := mk(5, 40)
		yh, yd := mk(5, 40)
		bh, bd := mk(40)
		ah, ad := mk(3, 5, 40)
		ch, cd := mk(40, 7)
		check := func(what string, f func(e *accel.Exec, x, y, b, a, c *accel.Array) (*accel.Array, error)) {
			t.Helper()
			want, err := f(host, xh, yh, bh, ah, ch)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f(gpu, xd, yd, bd, ad, cd)
			if err != nil {
				t.Fatalf("%s %s: %v", what, dt, err)
			}
			if got.Device() != accel.Device(d) {
				t.Fatalf("%s: result on %s", what, got.Device().Name())
			}
			g, _ := got.Float64s()
			w, _ := want.Float64s()
			for i := range w {
				if diff := g[i] - w[i]; diff > 1e-5 || diff < -1e-5 || g[i] != g[i] {
					t.Fatalf("%s %s: element %d = %v, want %v", what, dt, i, g[i], w[i])
				}
			}
		}
		check("add", func(e *accel.Exec, x, y, b, a, c *accel.Array) (*accel.Array, error) { return e.Add(ctx, x, y) })
		check("broadcast sub", func(e *accel.Exec, x, y, b, a, c *accel.Array) (*accel.Array, error) { return e.Sub(ctx, x, b) })
		check("scalar div", func(e *accel.Exec, x, y, b, a, c *accel.Array) (*accel.Array, error) {
			return e.ScalarBinary(ctx, accel.OpDiv, 2.5, x)
		})
		check("transpose", func(e *accel.Exec, x, y, b, a, c *accel.Array) (*accel.Array, error) {
			return e.Transpose(ctx, a, 2, 0, 1)
		})
		check("concat", func(e *accel.Exec, x, y, b, a, c *accel.Array) (*accel.Array, error) {
			return e.Concatenate(ctx, []*accel.Array{x, y}, 1)
		})
		check("batched matmul", func(e *accel.Exec, x, y, b, a, c *accel.Array) (*accel.Array, error) { return e.Matmul(ctx, a, c) })
		check("axpy, triad", func(e *accel.Exec, x, y, b, a, c *accel.Array) (*accel.Array, error) {
			out, err := e.Copy(ctx, y)
			if err == nil {
				err = e.Axpy(ctx, 0.5, x, out)
			}
			if err == nil {
				err = e.Triad(ctx, out, out, x, -2)
			}
			return out, err
		})
	}
	_, err := d.compile(`extern "C" __global__ void broken(float* x) { x[0] = undefined_name; }`, []string{"--gpu-architecture=" + d.arch})
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), `identifier "undefined_name" is undefined`) {
		t.Errorf("compile error: %v; want ErrBuild with the NVRTC log", err)
	}
	if _, err := d.Alloc(accel.Float64, 1<<30); !errors.Is(err, ErrOutOfMemory) {
		t.Errorf("huge Alloc: %v; want ErrOutOfMemory", err)
	}
}
