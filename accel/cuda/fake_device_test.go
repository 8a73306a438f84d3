//go:build linux

package cuda

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/accel/acceltest"
)

var bg = context.Background()

// TestFakeConformance runs the accel conformance suite through the whole
// backend on the fake driver: the real kernel source compiled by the fake
// NVRTC into a cubin for the device, loaded and launched on the fake's CPU
// threads, with cuBLAS for matmul, and then again with the k_matmul
// kernel in its place.
func TestFakeConformance(t *testing.T) {
	t.Run("cuBLAS", func(t *testing.T) {
		d, f := openFake(t, fakeOptions{})
		if v, _ := d.BLAS(); v != "12.2.1" {
			t.Fatalf("cuBLAS in use: %q; want the fake 12.2.1 (13 is newer than the driver)", v)
		}
		before := f.blasGet("calls") + f.blasGet("batched_calls")
		acceltest.Run(t, d)
		acceltest.RunSizes(t, d)
		if f.blasGet("calls") == 0 || f.blasGet("batched_calls") == 0 || f.blasGet("calls")+f.blasGet("batched_calls") == before {
			t.Errorf("matmul did not go through cuBLAS (plain and strided batched): %d, %d calls", f.blasGet("calls"), f.blasGet("batched_calls"))
		}
		if n := d.fallbacks.Load(); n > 0 {
			t.Errorf("%d operations fell back to the host", n)
		}
	})
	t.Run("kernel", func(t *testing.T) {
		d, f := openFake(t, fakeOptions{cublas: []string{}})
		if v, why := d.BLAS(); v != "" || !strings.Contains(why, "cuBLAS not found") || !strings.Contains(d.Detail(), "k_matmul kernel") {
			t.Fatalf("without cuBLAS: BLAS() = %q, %q; detail %q", v, why, d.Detail())
		}
		before := f.blasGet("calls") + f.blasGet("batched_calls")
		acceltest.Run(t, d)
		acceltest.RunSizes(t, d)
		if f.blasGet("calls")+f.blasGet("batched_calls") != before {
			t.Errorf("cuBLAS was called although it was not loaded")
		}
		if n := d.fallbacks.Load(); n > 0 {
			t.Errorf("%d operations fell back to the host", n)
		}
	})
}

// TestFakeCompileTargets covers the choice of NVRTC and of what it
// compiles to: PTX newer than the driver (defect 1), an architecture newer
// than NVRTC (defect 3), and the JIT log when nothing loads (defect 5).
func TestFakeCompileTargets(t *testing.T) {
	cases := []struct {
		name          string
		driver, cc    int64
		nvrtc         func(f *fakeStack) []string
		wantNVRTC     string
		wantBinary    string // "cubin" or "PTX"
		wantArch      int
		wantErr       error
		wantErrSubstr []string
	}{
		// NVRTC 12.6 with a 12.4 driver: its PTX (.version 12.6) would be
		// rejected; the cubin for sm_90 loads.
		{name: "cubin from an NVRTC newer than the driver", driver: 12040, cc: 90, wantNVRTC: "12.6", wantBinary: "cubin", wantArch: 90},
		// NVRTC 13.0 is also found, but its major version is above the
		// driver's; with a CUDA 13 driver it is the one picked.
		{name: "newest NVRTC the driver takes", driver: 13000, cc: 90, wantNVRTC: "13.0", wantBinary: "cubin", wantArch: 90},
		// A Blackwell GPU (sm_100) with NVRTC 12.6, whose newest target is
		// sm_90: a cubin of another major version would not run, so the
		// kernels go as compute_90 PTX that the driver compiles for sm_100.
		{name: "GPU newer than NVRTC", driver: 12080, cc: 100, wantNVRTC: "12.6", wantBinary: "PTX", wantArch: 90},
		// The same GPU with a 12.4 driver: that PTX is too new for the
		// driver, and the error carries the JIT log and the remedy.
		{name: "PTX too new for the driver", driver: 12040, cc: 100, wantErr: ErrBuild,
			wantErrSubstr: []string{"CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "JIT log", "Unsupported .version 12.6", "newer than the driver"}},
		// An sm_50 GPU with only NVRTC 13 (oldest target sm_75).
		{name: "GPU older than every target", driver: 13000, cc: 50, nvrtc: func(f *fakeStack) []string { return []string{f.nvrtc13} },
			wantErr: ErrBuild, wantErrSubstr: []string{"none of which runs on this sm_50 GPU"}},
		{name: "no NVRTC", nvrtc: func(f *fakeStack) []string { return []string{f.dir + "/nowhere/libnvrtc.so.12"} },
			wantErr: ErrNoCompiler, wantErrSubstr: []string{"nowhere/libnvrtc.so.12", "NVRTC"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := buildFake(t)
			o := fakeOptions{driverVersion: c.driver, cc: c.cc}
			if c.nvrtc != nil {
				o.nvrtc = c.nvrtc(f)
			}
			useFake(t, o)
			cubins, ptxs := f.get("cubin_loads"), f.get("ptx_loads")
			d, err := Open(0)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Open = %v; want an error wrapping %v", err, c.wantErr)
				}
				for _, s := range c.wantErrSubstr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("device: %s", d.Detail())
			if v, _ := d.CompilerVersion(); v != c.wantNVRTC {
				t.Errorf("NVRTC %s in use; want %s", v, c.wantNVRTC)
			}
			if d.binary != c.wantBinary || d.arch != c.wantArch {
				t.Errorf("kernels compiled as %s for sm_%d; want %s for sm_%d", d.binary, d.arch, c.wantBinary, c.wantArch)
			}
			loads := map[string]int64{"cubin": f.get("cubin_loads") - cubins, "PTX": f.get("ptx_loads") - ptxs}
			if loads[c.wantBinary] != 2 {
				t.Errorf("driver loaded %v modules; want 2 %s", loads, c.wantBinary)
			}
			if !strings.Contains(d.Detail(), fmt.Sprintf("kernels as %s for sm_%d", c.wantBinary, c.wantArch)) {
				t.Errorf("detail %q does not say how the kernels were built", d.Detail())
			}
			checkAdd(t, d)
		})
	}
}

// checkAdd runs one operation on d and checks the result.
func checkAdd(t *testing.T, d *Device) {
	t.Helper()
	e := accel.New(accel.Options{Device: d})
	defer e.Close()
	a, err := e.FromFloat64s([]float64{1, 2, 3, 4, 5}, 5)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.Add(bg, a, a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Float64s()
	if err != nil || fmt.Sprint(got) != "[2 4 6 8 10]" {
		t.Fatalf("a+a = %v, %v", got, err)
	}
}

// TestFakeOpenFailsOnBuildError: a device whose kernels do not compile is
// not available (defect 2), and the reason carries the compiler's log.
func TestFakeOpenFailsOnBuildError(t *testing.T) {
	f := buildFake(t)
	useFake(t, fakeOptions{nvrtc: []string{f.nvrtc12}})
	log := cBytes("accel.cu(42): error: identifier \"undefined_name\" is undefined")
	f.failWith(&log[0])
	defer f.failWith(nil)
	_, err := Open(0)
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), `identifier "undefined_name" is undefined`) || !strings.Contains(err.Error(), "NVRTC_ERROR_COMPILATION") {
		t.Fatalf("Open with a compiler that fails = %v; want ErrBuild with the log and NVRTC's status name", err)
	}
	if _, err := probe(); !errors.Is(err, ErrBuild) {
		t.Fatalf("the backend's probe = %v; want the build error, so that no thread is sent to this GPU", err)
	}
}

// TestFakeBuildError compiles broken source: the error wraps ErrBuild and
// holds the compiler log.
func TestFakeBuildError(t *testing.T) {
	d, _ := openFake(t, fakeOptions{})
	_, err := d.nv.compileCUDA(`extern "C" __global__ void broken(float* x) { x[0] = undefined_name; }`, []string{"--gpu-architecture=compute_90"}, false)
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "undefined_name") {
		t.Fatalf("compiling a broken kernel: %v; want ErrBuild with the compiler log", err)
	}
	_, err = d.nv.compileCUDA(`extern "C" __global__ void k(float* x) {}`, []string{"--gpu-architecture=sm_99"}, true)
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "NVRTC_ERROR_INVALID_OPTION") || !strings.Contains(err.Error(), "invalid value for --gpu-architecture") {
		t.Fatalf("compiling for an unknown architecture: %v", err)
	}
}

// TestFakeSchedulingAndSync checks the context (defect 6): the primary
// context with blocking sync, memory from the stream-ordered pool kept
// after frees, and a chain of operations that never synchronises until
// the host reads the result, from several goroutines (each call makes the
// context current on its own thread, which the fake checks).
func TestFakeSchedulingAndSync(t *testing.T) {
	d, f := openFake(t, fakeOptions{})
	if got := f.get("sched_flags"); got != ctxSchedBlockingSync {
		t.Errorf("primary context scheduling flags %d; want CU_CTX_SCHED_BLOCKING_SYNC (4)", got)
	}
	if got := uint64(f.get("threshold_set")); got != math.MaxUint64 {
		t.Errorf("pool release threshold %d; want UINT64_MAX", got)
	}
	syncs, async := f.get("syncs"), f.get("async_allocs")
	e := accel.New(accel.Options{Device: d})
	defer e.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
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
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := f.get("syncs") - syncs; n != 0 {
		t.Errorf("%d cuCtxSynchronize calls for 160 operations; want none (reads wait in cuMemcpyDtoH)", n)
	}
	if f.get("async_allocs") == async {
		t.Errorf("no cuMemAllocAsync: outputs are not allocated in stream order")
	}
}

// TestFakeWithoutPools runs on a device without memory pools: cuMemAlloc,
// and a wait before each cuMemFree.
func TestFakeWithoutPools(t *testing.T) {
	d, f := openFake(t, fakeOptions{noPools: true})
	allocs, async := f.get("allocs"), f.get("async_allocs")
	checkAdd(t, d)
	x := accel.New(accel.Options{Device: d})
	a, _ := x.Ones(accel.Float64, 100000)
	if s, err := x.Sum(bg, a); err != nil || s != 100000 {
		t.Errorf("sum = %v, %v", s, err)
	}
	x.Close()
	if f.get("allocs") == allocs || f.get("async_allocs") != async {
		t.Errorf("allocations: %d cuMemAlloc, %d cuMemAllocAsync; want only cuMemAlloc", f.get("allocs")-allocs, f.get("async_allocs")-async)
	}
}

// TestFakeKernelLimit gives every kernel a limit of 128 threads per block
// (CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, as register pressure would):
// reductions launch smaller blocks, and k_matmul, which needs 256, hands
// its products to the host, with correct results either way.
func TestFakeKernelLimit(t *testing.T) {
	d, _ := openFake(t, fakeOptions{kernelThreads: 128, cublas: []string{}})
	host, dev := accel.New(accel.Options{}), accel.New(accel.Options{Device: d})
	defer dev.Close()
	r := acceltest.NewRand(t)
	for _, shape := range [][]int{{3, 70000}, {5000, 40}} {
		h, _ := host.Rand(accel.Float64, r.Uint64(), shape...)
		g, err := dev.ToDevice(bg, h)
		if err != nil {
			t.Fatal(err)
		}
		for axis := range 2 {
			want, _ := host.ReduceAxis(bg, accel.OpSum, h, axis)
			got, err := dev.ReduceAxis(bg, accel.OpSum, g, axis)
			if err != nil {
				t.Fatalf("sum of %v along %d: %v", shape, axis, err)
			}
			same(t, fmt.Sprintf("sum of %v along %d", shape, axis), got, want, 1e-9)
		}
	}
	before := d.fallbacks.Load()
	a, _ := host.Rand(accel.Float32, 1, 70, 40)
	b, _ := host.Rand(accel.Float32, 2, 40, 30)
	ad, _ := dev.ToDevice(bg, a)
	bd, _ := dev.ToDevice(bg, b)
	want, _ := host.Matmul(bg, a, b)
	got, err := dev.Matmul(bg, ad, bd)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "matmul", got, want, 1e-5)
	if d.fallbacks.Load() == before {
		t.Errorf("matmul with a 128-thread limit did not fall back to the host")
	}
}

func same(t *testing.T, what string, got, want *accel.Array, tol float64) {
	t.Helper()
	g, err := got.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	w, _ := want.Float64s()
	for i := range w {
		if math.Abs(g[i]-w[i]) > tol*(1+math.Abs(w[i])) {
			t.Fatalf("%s: element %d = %v, want %v", what, i, g[i], w[i])
		}
	}
}

// TestFakeBLASTooNew: a cuBLAS newer than the driver does not start; matmul
// uses the kernel and the detail says why.
func TestFakeBLASTooNew(t *testing.T) {
	f := buildFake(t)
	d, _ := openFake(t, fakeOptions{cublas: []string{f.cublas13}})
	if v, why := d.BLAS(); v != "" || !strings.Contains(why, "cuBLAS 13.2.1") || !strings.Contains(why, "does not start") {
		t.Fatalf("BLAS() = %q, %q", v, why)
	}
	checkAdd(t, d)
}

// TestFakeChainStaysOnDevice checks that operations on device arrays run
// without copying anything between host and device until the result is read.
func TestFakeChainStaysOnDevice(t *testing.T) {
	d, f := openFake(t, fakeOptions{})
	e := accel.New(accel.Options{Device: d})
	defer e.Close()
	a, err := e.Rand(accel.Float32, 3, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	bytes, launches, htod, dtoh := d.hostBytes.Load(), d.launches.Load(), f.get("htod"), f.get("dtoh")
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
	if d.hostBytes.Load() != bytes || f.get("htod") != htod || f.get("dtoh") != dtoh {
		t.Errorf("the chain copied between host and device")
	}
	if got := d.launches.Load() - launches; got != 10 {
		t.Errorf("the chain ran %d kernels and cuBLAS calls, want 10", got)
	}
	if _, err := s.Float64s(); err != nil {
		t.Fatal(err)
	}
	if got := f.get("dtoh") - dtoh; got != 64*4 {
		t.Errorf("reading the result copied %d bytes, want %d", got, 64*4)
	}
}

// TestFakeNoDevice: a driver that sees no GPU.
func TestFakeNoDevice(t *testing.T) {
	useFake(t, fakeOptions{devices: -1})
	_, err := Open(0)
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "sees no GPU") || !strings.Contains(err.Error(), "CUDA_ERROR_NO_DEVICE") {
		t.Fatalf("Open = %v; want ErrNoDevice", err)
	}
}

// TestFakeOutOfMemory: an allocation the device cannot hold.
func TestFakeOutOfMemory(t *testing.T) {
	d, _ := openFake(t, fakeOptions{totalMem: 64 << 20})
	if _, err := d.Alloc(accel.Float64, 16<<20); !errors.Is(err, ErrOutOfMemory) {
		t.Errorf("Alloc past the device's memory: %v; want ErrOutOfMemory", err)
	}
	e := accel.New(accel.Options{Device: d})
	defer e.Close()
	if _, err := e.Zeros(accel.Float64, 16<<20); !errors.Is(err, accel.ErrDevice) || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("Zeros past the device's memory: %v", err)
	}
}
