//go:build linux

package cuda

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonode/autonode/accel"
)

// The GPU smoke run (scripts/gpu-smoke.sh) runs these tests on a real GPU
// with AUTONODE_GPU_SMOKE=1 and AUTONODE_REQUIRE_GPU=1: the device and the
// library versions, arrays past 2^31 elements, matrix products off the
// tile size, and the bandwidth, GFLOP/s and overhead rows against
// cuMemcpyDtoD and cuBLAS called directly. The same code runs on the fake
// driver at small sizes in TestFakeSmoke, so it is exercised here first.

// smokeSizes are the sizes a smoke run uses.
type smokeSizes struct {
	largeRows, largeCols int // the large array is rows×cols float32 elements
	stream               int // elements of the bandwidth arrays
	gemm                 int // side of the square matrix products timed
	rounds, reps         int // interleaved rounds, repetitions per measurement
	overheadOps          int
	matmuls              [][2][]int // products checked against the CPU
}

// gpuSizes: 65537×32768 = 2^31+32768 elements (8 GiB of float32), 2^26
// elements for bandwidth, 4096 for GEMM.
var gpuSizes = smokeSizes{largeRows: 65537, largeCols: 32768, stream: 1 << 26, gemm: 4096, rounds: 7, reps: 20, overheadOps: 2000,
	matmuls: [][2][]int{
		{{1000, 1037}, {1037, 999}},
		{{4097, 65}, {65, 127}},
		{{3, 257, 129}, {129, 300}},
		{{2, 1, 63, 65}, {3, 65, 66}},
		{{1, 4096}, {4096, 513}},
	}}

// smallSizes exercise the same code on the fake driver.
var smallSizes = smokeSizes{largeRows: 67, largeCols: 33, stream: 1 << 12, gemm: 96, rounds: 2, reps: 2, overheadOps: 20,
	matmuls: [][2][]int{
		{{100, 37}, {37, 99}},
		{{130, 65}, {65, 17}},
		{{3, 57, 29}, {29, 70}},
		{{2, 1, 63, 65}, {3, 65, 66}},
		{{1, 100}, {100, 65}},
	}}

// smokeDevice returns the GPU for a smoke test, and the sizes: the real
// ones, or the small ones when AUTONODE_GPU_SMOKE_SIZES=small (the script's
// own test runs it on the fake driver so).
func smokeDevice(t *testing.T) (*Device, smokeSizes) {
	t.Helper()
	if os.Getenv("AUTONODE_GPU_SMOKE") != "1" {
		t.Skip("the GPU smoke run: set AUTONODE_GPU_SMOKE=1 (scripts/gpu-smoke.sh does)")
	}
	sizes := gpuSizes
	if os.Getenv("AUTONODE_GPU_SMOKE_SIZES") == "small" {
		sizes = smallSizes
	}
	return testDevice(t), sizes
}

func TestSmokeInfo(t *testing.T) {
	d, _ := smokeDevice(t)
	smokeInfo(t, d)
}

func TestSmokeLarge(t *testing.T) {
	d, s := smokeDevice(t)
	smokeLarge(t, d, s)
}

func TestSmokeMatmulSizes(t *testing.T) {
	d, s := smokeDevice(t)
	smokeMatmulSizes(t, d, s)
}

func TestSmokeSpeed(t *testing.T) {
	d, s := smokeDevice(t)
	smokeSpeed(t, d, s)
}

// TestFakeSmoke runs the smoke run's code on the fake driver.
func TestFakeSmoke(t *testing.T) {
	d, _ := openFake(t, fakeOptions{})
	smokeInfo(t, d)
	smokeLarge(t, d, smallSizes)
	smokeMatmulSizes(t, d, smallSizes)
	smokeSpeed(t, d, smallSizes)
}

// report prints a line of the smoke run's report on standard output.
func report(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func smokeInfo(t *testing.T, d *Device) {
	nv, nvPath := d.CompilerVersion()
	report("device:  %s", d.Detail())
	report("driver:  CUDA %s (%s)", d.DriverVersion(), d.drv.path)
	report("NVRTC:   %s (%s); kernels compiled as %s for sm_%d", nv, nvPath, d.binary, d.arch)
	if v, why := d.BLAS(); v != "" {
		report("cuBLAS:  %s (%s)", v, d.blas.path)
	} else {
		report("cuBLAS:  not available: %s", why)
	}
	var free, total uint64
	if err := d.do(func() error { return d.drv.check("cuMemGetInfo_v2", d.drv.memGetInfo(&free, &total)) }); err != nil {
		t.Fatal(err)
	}
	report("memory:  %.1f GiB free of %.1f GiB", float64(free)/(1<<30), float64(total)/(1<<30))
}

// smokeLarge checks an array of rows×cols float32 elements (past 2^31 at
// the real size) made on the GPU by broadcasting a column and a row:
// element-wise work, indexing past 2^31, reductions of everything and along
// both axes, and an argmax whose index is past 2^31.
func smokeLarge(t *testing.T, d *Device, s smokeSizes) {
	e := accel.New(accel.Options{Device: d})
	defer e.Close()
	A, B := s.largeRows, s.largeCols
	av, bv := make([]float32, A), make([]float32, B)
	var sa, sb float64
	for i := range av {
		av[i] = float32(i % 7)
	}
	for j := range bv {
		bv[j] = float32(j % 5)
	}
	av[A-1], bv[B-1] = 100, 50 // the maximum is the last element
	for _, v := range av {
		sa += float64(v)
	}
	for _, v := range bv {
		sb += float64(v)
	}
	col, err := e.FromFloat32s(av, A, 1)
	if err != nil {
		t.Fatal(err)
	}
	row, err := e.FromFloat32s(bv, 1, B)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	big, err := e.Add(bg, col, row)
	if err != nil {
		t.Fatalf("%d×%d add: %v", A, B, err)
	}
	n := A * B
	report("large:   %d×%d = %d float32 elements (%.2f GiB, 2^31 = %d) made on the GPU", A, B, n, float64(n*4)/(1<<30), 1<<31)
	at := func(a *accel.Array, i, j int) float64 {
		t.Helper()
		x, err := e.Index(bg, a, i, j)
		if err != nil {
			t.Fatalf("index (%d, %d): %v", i, j, err)
		}
		v, err := x.Float64s()
		if err != nil {
			t.Fatal(err)
		}
		return v[0]
	}
	for _, ij := range [][2]int{{0, 0}, {A / 2, 3}, {A - 2, B - 1}, {A - 1, B - 1}} {
		if got, want := at(big, ij[0], ij[1]), float64(av[ij[0]]+bv[ij[1]]); got != want {
			t.Errorf("big[%d, %d] (flat %d) = %v, want %v", ij[0], ij[1], ij[0]*B+ij[1], got, want)
		}
	}
	tripled, err := e.BinaryScalar(bg, accel.OpMul, big, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := at(tripled, A-1, B-2), 3*float64(av[A-1]+bv[B-2]); got != want {
		t.Errorf("3*big[%d, %d] = %v, want %v", A-1, B-2, got, want)
	}
	tripled.Free()
	relClose := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6*math.Abs(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	sum, err := e.Sum(bg, big)
	if err != nil {
		t.Fatal(err)
	}
	relClose("sum", sum, float64(B)*sa+float64(A)*sb)
	arg, err := e.ArgMax(bg, big)
	if err != nil || arg != n-1 {
		t.Errorf("argmax = %d, %v; want %d", arg, err, n-1)
	}
	for axis, want := range []func(k int) float64{
		func(j int) float64 { return sa + float64(A)*float64(bv[j]) },
		func(i int) float64 { return float64(B)*float64(av[i]) + sb },
	} {
		r, err := e.ReduceAxis(bg, accel.OpSum, big, axis)
		if err != nil {
			t.Fatalf("sum along axis %d: %v", axis, err)
		}
		got, err := r.Float64s()
		if err != nil {
			t.Fatal(err)
		}
		for k := range got {
			if math.Abs(got[k]-want(k)) > 1e-6*math.Abs(want(k)) {
				t.Fatalf("sum along axis %d: element %d = %v, want %v", axis, k, got[k], want(k))
			}
		}
		r.Free()
	}
	report("large:   add, scale, index, sum, argmax and both axis sums correct (%.2fs)", time.Since(start).Seconds())
}

// smokeMatmulSizes compares products whose sizes are not multiples of the
// tiles (and batched ones with broadcasting) with the CPU backend, through
// cuBLAS and through the k_matmul kernel.
func smokeMatmulSizes(t *testing.T, d *Device, s smokeSizes) {
	host, e := accel.New(accel.Options{}), accel.New(accel.Options{Device: d})
	defer e.Close()
	shapes := s.matmuls
	blas := d.blas
	defer func() { d.blas = blas }()
	for _, path := range []string{"cuBLAS", "k_matmul"} {
		if path == "cuBLAS" && blas == nil {
			report("matmul sizes: cuBLAS not available, skipped")
			continue
		}
		d.blas = nil
		if path == "cuBLAS" {
			d.blas = blas
		}
		for _, dt := range []accel.DType{accel.Float32, accel.Float64} {
			for i, sh := range shapes {
				a, _ := host.Rand(dt, uint64(2*i+1), sh[0]...)
				b, _ := host.Rand(dt, uint64(2*i+2), sh[1]...)
				want, err := host.Matmul(bg, a, b)
				if err != nil {
					t.Fatal(err)
				}
				ad, _ := e.ToDevice(bg, a)
				bd, _ := e.ToDevice(bg, b)
				got, err := e.Matmul(bg, ad, bd)
				if err != nil {
					t.Fatalf("%s %s matmul %v@%v: %v", path, dt, sh[0], sh[1], err)
				}
				g, _ := got.Float64s()
				w, _ := want.Float64s()
				k := sh[0][len(sh[0])-1]
				tol := 1e-12 * float64(k)
				if dt == accel.Float32 {
					tol = 1e-5 * float64(k)
				}
				for j := range w {
					if math.Abs(g[j]-w[j]) > tol*(1+math.Abs(w[j])) {
						t.Fatalf("%s %s matmul %v@%v: element %d = %v, want %v", path, dt, sh[0], sh[1], j, g[j], w[j])
					}
				}
				ad.Free()
				bd.Free()
				got.Free()
			}
		}
		report("matmul sizes: %d shapes off the tile size, float32 and float64, through %s: correct", len(shapes), path)
	}
}

// timeIt returns the median over rounds of the time per repetition of each
// of fs, measured interleaved (f0, f1, ... in every round); each
// measurement waits for the GPU.
func timeIt(t *testing.T, d *Device, rounds, reps int, fs ...func() error) []time.Duration {
	t.Helper()
	per := make([][]time.Duration, len(fs))
	for _, f := range fs { // warm up: JIT, pools, cuBLAS heuristics
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Synchronize(); err != nil {
		t.Fatal(err)
	}
	for range rounds {
		for i, f := range fs {
			start := time.Now()
			for range reps {
				if err := f(); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Synchronize(); err != nil {
				t.Fatal(err)
			}
			per[i] = append(per[i], time.Since(start)/time.Duration(reps))
		}
	}
	med := make([]time.Duration, len(fs))
	for i, p := range per {
		slices.Sort(p)
		med[i] = p[len(p)/2]
	}
	return med
}

// verdict says whether a ratio meets its target.
func verdict(ratio, target float64) string {
	if ratio >= target {
		return "ok"
	}
	return "BELOW TARGET"
}

func smokeSpeed(t *testing.T, d *Device, s smokeSizes) {
	e := accel.New(accel.Options{Device: d})
	defer e.Close()

	// Bandwidth: add and triad against cuMemcpyDtoD on the same arrays.
	n := s.stream
	x, _ := e.Rand(accel.Float32, 1, n)
	y, _ := e.Rand(accel.Float32, 2, n)
	out, _ := e.Zeros(accel.Float32, n)
	src, dst := x.Buffer().(*Buffer), out.Buffer().(*Buffer)
	dtod := func() error {
		return d.do(func() error { return d.drv.check("cuMemcpyDtoD_v2", d.drv.memcpyDtoD(dst.ptr, src.ptr, uintptr(n*4))) })
	}
	add := func() error { return e.BinaryInto(bg, accel.OpAdd, out, x, y) }
	triad := func() error { return e.Triad(bg, out, x, y, 1.5) }
	tm := timeIt(t, d, s.rounds, s.reps, dtod, add, triad)
	gbs := func(bytes int, d time.Duration) float64 { return float64(bytes) / d.Seconds() / 1e9 }
	ref := gbs(2*n*4, tm[0])
	report("")
	report("bandwidth, %d float32 elements (median of %d interleaved rounds of %d):", n, s.rounds, s.reps)
	report("  %-14s %10s %16s  %s", "op", "GB/s", "vs cuMemcpyDtoD", "target")
	report("  %-14s %10.1f %15.0f%%", "cuMemcpyDtoD", ref, 100.0)
	for i, name := range []string{"add", "triad"} {
		v := gbs(3*n*4, tm[i+1])
		report("  %-14s %10.1f %15.0f%%  >= 70%% %s", name, v, 100*v/ref, verdict(v/ref, 0.70))
	}
	x.Free()
	y.Free()
	out.Free()

	// GEMM: accel's matmul (through cuBLAS, then through the kernel)
	// against cuBLAS called directly on the same operands.
	m := s.gemm
	flops := 2 * float64(m) * float64(m) * float64(m)
	report("")
	report("matmul %d×%d×%d (median of %d interleaved rounds of %d):", m, m, m, s.rounds, max(1, s.reps/4))
	report("  %-8s %-22s %12s %10s  %s", "dtype", "path", "GFLOP/s", "vs cuBLAS", "target")
	blas := d.blas
	defer func() { d.blas = blas }()
	for _, dt := range []accel.DType{accel.Float32, accel.Float64} {
		a, _ := e.Rand(dt, 3, m, m)
		b, _ := e.Rand(dt, 4, m, m)
		c, _ := e.Zeros(dt, m, m)
		pa, pb, pc := uint64(a.Buffer().(*Buffer).ptr), uint64(b.Buffer().(*Buffer).ptr), uint64(c.Buffer().(*Buffer).ptr)
		accelGemm := func() error {
			p, err := e.Matmul(bg, a, b)
			if err == nil {
				p.Free()
			}
			return err
		}
		kernelGemm := func() error {
			d.blas = nil
			defer func() { d.blas = blas }()
			return accelGemm()
		}
		fs := []func() error{accelGemm, kernelGemm}
		names := []string{"accel (cuBLAS)", "accel k_matmul kernel"}
		if blas != nil {
			direct := func() error {
				return d.do(func() error {
					k := int32(m)
					if dt == accel.Float32 {
						one, zero := float32(1), float32(0)
						return blas.check("cublasSgemm_v2", blas.sgemm(blas.handle, cublasOpN, cublasOpN, k, k, k, &one, pb, k, pa, k, &zero, pc, k))
					}
					one, zero := 1.0, 0.0
					return blas.check("cublasDgemm_v2", blas.dgemm(blas.handle, cublasOpN, cublasOpN, k, k, k, &one, pb, k, pa, k, &zero, pc, k))
				})
			}
			fs = append([]func() error{direct}, fs...)
			names = append([]string{"cuBLAS direct"}, names...)
		} else {
			names[0] = "accel (no cuBLAS)"
		}
		tm := timeIt(t, d, s.rounds, max(1, s.reps/4), fs...)
		refG := flops / tm[0].Seconds() / 1e9
		for i, name := range names {
			g := flops / tm[i].Seconds() / 1e9
			line := fmt.Sprintf("  %-8s %-22s %12.1f", dt, name, g)
			if blas != nil {
				line += fmt.Sprintf(" %9.0f%%", 100*g/refG)
				if name == "accel (cuBLAS)" {
					line += "  >= 90% " + verdict(g/refG, 0.90)
				}
			}
			report("%s", line)
		}
		runtime.KeepAlive(c)
		a.Free()
		b.Free()
		c.Free()
	}

	// Overhead: a 16-element add, queued back to back (the GPU is never
	// the limit), and with its result read each time.
	p, _ := e.Rand(accel.Float32, 5, 16)
	q, _ := e.Rand(accel.Float32, 6, 16)
	bytes := d.hostBytes.Load()
	queued := func() error {
		r, err := e.Add(bg, p, q)
		if err == nil {
			r.Free()
		}
		return err
	}
	tq := timeIt(t, d, s.rounds, s.overheadOps, queued)[0]
	chained := d.hostBytes.Load() == bytes
	read := func() error {
		r, err := e.Add(bg, p, q)
		if err == nil {
			_, err = r.Float32s()
			r.Free()
		}
		return err
	}
	tr := timeIt(t, d, s.rounds, max(1, s.overheadOps/10), read)[0]
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	report("")
	report("per-operation overhead, 16-element float32 add (median of %d rounds):", s.rounds)
	report("  %-34s %8.1f µs  <= 20 µs %s", "allocate + launch, queued", us(tq), verdict(20/us(tq), 1))
	report("  %-34s %8.1f µs", "allocate + launch + read the result", us(tr))
	if !chained {
		t.Errorf("operations on device arrays copied data between host and device")
	}
	report("  device arrays chain without host copies: %v", chained)
	if t.Failed() {
		report("smoke: FAILED")
	}
	if strings.Contains(d.Detail(), "k_matmul kernel") {
		report("  note: cuBLAS is not loaded; matmul runs on the k_matmul kernel")
	}
}
