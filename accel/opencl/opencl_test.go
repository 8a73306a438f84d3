//go:build linux || darwin

package opencl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/accel/acceltest"
)

var bg = context.Background()

var (
	devOnce sync.Once
	dev     *Device
	devErr  error
)

// testDevice returns the process-wide OpenCL device, so kernels compile once
// per test binary, or skips the test when there is none.
func testDevice(t testing.TB) *Device {
	t.Helper()
	devOnce.Do(func() { dev, devErr = Open() })
	if devErr != nil {
		t.Skipf("no OpenCL device (%v); to run these tests on the CPU install PoCL: apt-get install pocl-opencl-icd ocl-icd-libopencl1", devErr)
	}
	return dev
}

func TestConformance(t *testing.T) {
	d := testDevice(t)
	t.Logf("device: %s", d.Detail())
	before := d.fallbacks.Load()
	acceltest.Run(t, d)
	acceltest.RunSizes(t, d)
	if n := d.fallbacks.Load() - before; n > 0 && d.FP64() {
		t.Errorf("%d operations fell back to the host; all should run as kernels", n)
	}
}

// TestChainStaysOnDevice checks that a chain of operations on device arrays
// runs as kernels without copying anything to or from the host until the
// result is read.
func TestChainStaysOnDevice(t *testing.T) {
	d := testDevice(t)
	e := accel.New(accel.Options{Device: d})
	defer e.Close()
	r := acceltest.NewRand(t)
	data := make([]float32, 64*64)
	for i := range data {
		data[i] = float32(r.Float64() - 0.5)
	}
	a, err := e.FromFloat32s(data, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	if a.Device() != accel.Device(d) {
		t.Fatalf("array lives on %s", a.Device().Name())
	}
	bytes, launches := d.hostBytes.Load(), d.launches.Load()
	x := a
	for range 3 {
		if x, err = e.Matmul(bg, x, a); err != nil {
			t.Fatal(err)
		}
		if x, err = e.Tanh(bg, x); err != nil {
			t.Fatal(err)
		}
		if x, err = e.Add(bg, x, a); err != nil {
			t.Fatal(err)
		}
	}
	s, err := e.ReduceAxis(bg, accel.OpSum, x, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.hostBytes.Load() - bytes; got != 0 {
		t.Errorf("the chain copied %d bytes between host and device", got)
	}
	if got := d.launches.Load() - launches; got != 10 {
		t.Errorf("the chain ran %d kernels, want 10", got)
	}
	if _, err := s.Float64s(); err != nil {
		t.Fatal(err)
	}
	if got := d.hostBytes.Load() - bytes; got != 64*4 {
		t.Errorf("reading the result copied %d bytes, want %d", got, 64*4)
	}
}

func TestMissingLibrary(t *testing.T) {
	_, err := OpenLibrary("/nonexistent/libOpenCL.so.1")
	if !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), "/nonexistent/libOpenCL.so.1") {
		t.Fatalf("OpenLibrary(missing) = %v; want ErrNoLibrary naming the path", err)
	}
}

func TestBuildError(t *testing.T) {
	d := testDevice(t)
	_, err := d.build("__kernel void broken(__global float* x) { x[0] = undefined_name; }", "")
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "undefined_name") || !strings.Contains(err.Error(), "build log") {
		t.Fatalf("building a broken kernel: %v; want ErrBuild with the build log", err)
	}
	t.Logf("error: %v", err)
}

func TestOutOfMemory(t *testing.T) {
	d := testDevice(t)
	_, err := d.Alloc(accel.Float64, int(d.maxAlloc/8)+1)
	if !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("allocating past the device's limit: %v; want ErrOutOfMemory", err)
	}
	e := accel.New(accel.Options{Device: d})
	_, err = e.Zeros(accel.Float64, int(d.maxAlloc/8)+1)
	if !errors.Is(err, accel.ErrDevice) && !errors.Is(err, accel.ErrBudget) {
		t.Fatalf("Zeros past the device's limit: %v", err)
	}
}

// TestSelection checks how the backend is listed and chosen: a CPU device
// (PoCL) is found by name but never picked for "gpu".
func TestSelection(t *testing.T) {
	d := testDevice(t)
	got, err := accel.LookupDevice("opencl")
	if err != nil || got.Kind() != "opencl" {
		t.Fatalf("LookupDevice(opencl) = %v, %v", got, err)
	}
	listed := false
	for _, info := range accel.Devices() {
		if info.Kind == "opencl" {
			listed = info.Found && strings.Contains(info.Detail, "opencl:0")
			t.Logf("Devices: %+v", info)
		}
	}
	if !listed {
		t.Errorf("Devices() does not list the OpenCL device")
	}
	g, err := accel.LookupDevice("gpu")
	if !d.IsGPU() {
		if err == nil && g.Kind() == "opencl" {
			t.Errorf("device gpu picked %s, a CPU OpenCL device", g.Name())
		} else if err != nil && !strings.Contains(err.Error(), "used only when asked for by name") {
			t.Errorf("device gpu error does not explain the skipped CPU device: %v", err)
		}
	}
}

// TestConcurrent runs operations from several goroutines on one device.
func TestConcurrent(t *testing.T) {
	d := testDevice(t)
	e := accel.New(accel.Options{Device: d})
	defer e.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := e.Full(accel.Float32, float64(g+1), 1000)
			if err != nil {
				errs <- err
				return
			}
			for range 20 {
				if a, err = e.Add(bg, a, a); err != nil {
					errs <- err
					return
				}
				if a, err = e.BinaryScalar(bg, accel.OpMul, a, 0.5); err != nil {
					errs <- err
					return
				}
			}
			s, err := e.Sum(bg, a)
			if err == nil && s != float64(1000*(g+1)) {
				err = fmt.Errorf("goroutine %d: sum %v, want %d", g, s, 1000*(g+1))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestCancelled(t *testing.T) {
	d := testDevice(t)
	e := accel.New(accel.Options{Device: d})
	defer e.Close()
	a, err := e.Ones(accel.Float32, 100)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := e.Exp(ctx, a); !errors.Is(err, context.Canceled) {
		t.Fatalf("Exp with a cancelled context: %v", err)
	}
}

// TestKernelGroupLimit lowers two kernels' CL_KERNEL_WORK_GROUP_SIZE, as a
// device with fewer registers reports it: reductions launch smaller groups
// and stay on the device, and k_matmul, whose groups are 256 items, hands
// its product to the host; the results are right either way, and no
// launch exceeds a limit (OpenCL would reject it with
// CL_INVALID_WORK_GROUP_SIZE).
func TestKernelGroupLimit(t *testing.T) {
	d := testDevice(t)
	dt := accel.Float32
	for _, name := range []string{"k_reduce_rows", "k_reduce_parts", "k_matmul"} {
		if _, err := d.kernel(dt, name); err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		k := d.progs[dt].kernels[name]
		saved := k
		k.group = 64
		d.progs[dt].kernels[name] = k
		d.mu.Unlock()
		t.Cleanup(func() {
			d.mu.Lock()
			d.progs[dt].kernels[name] = saved
			d.mu.Unlock()
		})
	}
	host, dev := accel.New(accel.Options{}), accel.New(accel.Options{Device: d})
	defer dev.Close()
	x, _ := host.Rand(dt, 7, 3, 50000)
	xd, err := dev.ToDevice(bg, x)
	if err != nil {
		t.Fatal(err)
	}
	fallbacks := d.fallbacks.Load()
	for _, axis := range []int{1, accel.AllAxes} {
		var want, got []float64
		if axis == accel.AllAxes {
			w, _ := host.Sum(bg, x)
			g, err := dev.Sum(bg, xd)
			if err != nil {
				t.Fatal(err)
			}
			want, got = []float64{w}, []float64{g}
		} else {
			w, _ := host.ReduceAxis(bg, accel.OpSum, x, axis)
			g, err := dev.ReduceAxis(bg, accel.OpSum, xd, axis)
			if err != nil {
				t.Fatal(err)
			}
			want, _ = w.Float64s()
			got, _ = g.Float64s()
		}
		for i := range want {
			if d := got[i] - want[i]; d > 1e-2 || d < -1e-2 {
				t.Fatalf("sum (axis %d) element %d = %v, want %v", axis, i, got[i], want[i])
			}
		}
	}
	if d.fallbacks.Load() != fallbacks {
		t.Errorf("reductions fell back to the host; they should launch groups of 64")
	}
	a, _ := host.Rand(dt, 8, 40, 30)
	b, _ := host.Rand(dt, 9, 30, 20)
	ad, _ := dev.ToDevice(bg, a)
	bd, _ := dev.ToDevice(bg, b)
	want, _ := host.Matmul(bg, a, b)
	got, err := dev.Matmul(bg, ad, bd)
	if err != nil {
		t.Fatalf("matmul with a 64-item k_matmul: %v", err)
	}
	w, _ := want.Float64s()
	g, _ := got.Float64s()
	for i := range w {
		if d := g[i] - w[i]; d > 1e-4 || d < -1e-4 {
			t.Fatalf("matmul element %d = %v, want %v", i, g[i], w[i])
		}
	}
	if d.fallbacks.Load() != fallbacks+1 {
		t.Errorf("matmul did not fall back to the host (%d fallbacks)", d.fallbacks.Load()-fallbacks)
	}
}
