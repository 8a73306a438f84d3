package kern

import "math"

// Element-wise operation codes shared by the Go and assembly kernels.
const (
	opAdd = iota
	opSub
	opMul
	opDiv
)

// Scalar operation codes.
const (
	opAddScalar = iota
	opMulScalar
)

// kernels is the per-level kernel table of one element type, for one
// chunk of data (no parallelism inside). Index by level; the architecture
// init fills the SIMD levels, entries it leaves nil fall back to Go. sum
// and dot accumulate in float64 for both types.
type kernels[T float] struct {
	bin   func(op int, dst, x, y []T)
	scal  func(op int, dst, x []T, s T)
	axpy  func(alpha T, x, y []T)
	triad func(dst, b, c []T, s T)
	sum   func(x []T) float64
	dot   func(x, y []T) float64
}

type (
	kernels64 = kernels[float64]
	kernels32 = kernels[float32]
)

var (
	tab64 [3]kernels64
	tab32 [3]kernels32
)

func setupTables() {
	g64 := kernels64{binGo[float64], scalGo[float64], axpyGo[float64], triadGo[float64], sumGo64, dotGo[float64]}
	g32 := kernels32{binGo[float32], scalGo[float32], axpyGo[float32], triadGo[float32], sumGo32, dotGo[float32]}
	tab64[levelGeneric] = g64
	tab32[levelGeneric] = g32
	for l := levelGeneric + 1; l < len(tab64); l++ {
		fillKernels(&tab64[l], &g64)
		fillKernels(&tab32[l], &g32)
	}
}

// fillKernels sets the entries t lacks from the generic table g.
func fillKernels[T float](t, g *kernels[T]) {
	if t.bin == nil {
		t.bin = g.bin
	}
	if t.scal == nil {
		t.scal = g.scal
	}
	if t.axpy == nil {
		t.axpy = g.axpy
	}
	if t.triad == nil {
		t.triad = g.triad
	}
	if t.sum == nil {
		t.sum = g.sum
	}
	if t.dot == nil {
		t.dot = g.dot
	}
}

// streamMin is the length below which streaming kernels run inline in the
// caller's goroutine.
const streamMin = 1 << 15

// smallLoop is the length below which the element-wise kernels run a plain
// Go loop: for a few elements the dispatch to assembly costs more than the
// arithmetic (every implementation rounds each element the same way).
const smallLoop = 32

// streamGrain picks the chunk size for a parallel streaming loop: a few
// contiguous chunks per worker, multiples of 64 elements (cache-line and
// vector aligned relative to the start of the slices).
func streamGrain(n, nw int) int {
	g := n / (4 * nw)
	g = (g + 63) &^ 63
	return max(g, streamMin/2)
}

// float is the element type constraint of the generic kernels.
type float interface{ ~float32 | ~float64 }

func binGo[T float](op int, dst, x, y []T) {
	n := len(dst)
	x, y = x[:n], y[:n]
	switch op {
	case opAdd:
		for i := range dst {
			dst[i] = x[i] + y[i]
		}
	case opSub:
		for i := range dst {
			dst[i] = x[i] - y[i]
		}
	case opMul:
		for i := range dst {
			dst[i] = x[i] * y[i]
		}
	case opDiv:
		for i := range dst {
			dst[i] = x[i] / y[i]
		}
	}
}

func scalGo[T float](op int, dst, x []T, s T) {
	x = x[:len(dst)]
	switch op {
	case opAddScalar:
		for i := range dst {
			dst[i] = x[i] + s
		}
	case opMulScalar:
		for i := range dst {
			dst[i] = x[i] * s
		}
	}
}

func axpyGo[T float](alpha T, x, y []T) {
	x = x[:len(y)]
	for i := range y {
		y[i] += alpha * x[i]
	}
}

func triadGo[T float](dst, b, c []T, s T) {
	n := len(dst)
	b, c = b[:n], c[:n]
	for i := range dst {
		dst[i] = b[i] + s*c[i]
	}
}

func minLen3(a, b, c int) int { return min(a, b, c) }

// table returns T's kernel table at the level in use.
func table[T float]() *kernels[T] { return tableAt[T](level()) }

// tableAt returns T's kernel table at level l.
func tableAt[T float](l int) *kernels[T] {
	var zero T
	if _, ok := any(zero).(float64); ok {
		return any(&tab64[l]).(*kernels[T])
	}
	return any(&tab32[l]).(*kernels[T])
}

// The dispatchers below run a table's kernel inline for short slices and
// split long ones across the worker pool. Each is written out rather than
// built from one helper taking a closure: the closure would escape to the
// pool and cost an allocation on every call, the short ones included.

func bin[T float](op int, dst, x, y []T) {
	n := minLen3(len(dst), len(x), len(y))
	dst, x, y = dst[:n], x[:n], y[:n]
	if n < smallLoop {
		binGo(op, dst, x, y)
		return
	}
	f := table[T]().bin
	if n < streamMin {
		f(op, dst, x, y)
		return
	}
	nw := numWorkers()
	parallelFor(nw, n, streamGrain(n, nw), func(_, lo, hi int) {
		f(op, dst[lo:hi], x[lo:hi], y[lo:hi])
	})
}

func scal[T float](op int, dst, x []T, s T) {
	n := min(len(dst), len(x))
	dst, x = dst[:n], x[:n]
	if n < smallLoop {
		scalGo(op, dst, x, s)
		return
	}
	f := table[T]().scal
	if n < streamMin {
		f(op, dst, x, s)
		return
	}
	nw := numWorkers()
	parallelFor(nw, n, streamGrain(n, nw), func(_, lo, hi int) {
		f(op, dst[lo:hi], x[lo:hi], s)
	})
}

func axpy[T float](alpha T, x, y []T) {
	n := min(len(x), len(y))
	x, y = x[:n], y[:n]
	f := table[T]().axpy
	if n < streamMin {
		f(alpha, x, y)
		return
	}
	nw := numWorkers()
	parallelFor(nw, n, streamGrain(n, nw), func(_, lo, hi int) {
		f(alpha, x[lo:hi], y[lo:hi])
	})
}

func triad[T float](dst, b, c []T, s T) {
	n := minLen3(len(dst), len(b), len(c))
	dst, b, c = dst[:n], b[:n], c[:n]
	f := table[T]().triad
	if n < streamMin {
		f(dst, b, c, s)
		return
	}
	nw := numWorkers()
	parallelFor(nw, n, streamGrain(n, nw), func(_, lo, hi int) {
		f(dst[lo:hi], b[lo:hi], c[lo:hi], s)
	})
}

// AddF64 sets dst[i] = x[i] + y[i]. The slices should have equal lengths
// (dst may alias x or y); only the first min(len(dst), len(x), len(y))
// elements are touched, so it never panics.
func AddF64(dst, x, y []float64) { bin(opAdd, dst, x, y) }

// SubF64 sets dst[i] = x[i] - y[i]; see AddF64 for the length rules.
func SubF64(dst, x, y []float64) { bin(opSub, dst, x, y) }

// MulF64 sets dst[i] = x[i] * y[i]; see AddF64 for the length rules.
func MulF64(dst, x, y []float64) { bin(opMul, dst, x, y) }

// DivF64 sets dst[i] = x[i] / y[i] (IEEE division); see AddF64 for the
// length rules.
func DivF64(dst, x, y []float64) { bin(opDiv, dst, x, y) }

// AddF32 sets dst[i] = x[i] + y[i]; see AddF64 for the length rules.
func AddF32(dst, x, y []float32) { bin(opAdd, dst, x, y) }

// SubF32 sets dst[i] = x[i] - y[i]; see AddF64 for the length rules.
func SubF32(dst, x, y []float32) { bin(opSub, dst, x, y) }

// MulF32 sets dst[i] = x[i] * y[i]; see AddF64 for the length rules.
func MulF32(dst, x, y []float32) { bin(opMul, dst, x, y) }

// DivF32 sets dst[i] = x[i] / y[i]; see AddF64 for the length rules.
func DivF32(dst, x, y []float32) { bin(opDiv, dst, x, y) }

// AddScalarF64 sets dst[i] = x[i] + s over the first min(len(dst), len(x))
// elements (dst may alias x).
func AddScalarF64(dst, x []float64, s float64) { scal(opAddScalar, dst, x, s) }

// MulScalarF64 sets dst[i] = x[i] * s over the first min(len(dst), len(x))
// elements (dst may alias x).
func MulScalarF64(dst, x []float64, s float64) { scal(opMulScalar, dst, x, s) }

// AddScalarF32 sets dst[i] = x[i] + s; see AddScalarF64.
func AddScalarF32(dst, x []float32, s float32) { scal(opAddScalar, dst, x, s) }

// MulScalarF32 sets dst[i] = x[i] * s; see AddScalarF64.
func MulScalarF32(dst, x []float32, s float32) { scal(opMulScalar, dst, x, s) }

// AxpyF64 computes y[i] += alpha*x[i] over the first min(len(x), len(y))
// elements. The SIMD paths use fused multiply-add.
func AxpyF64(alpha float64, x, y []float64) { axpy(alpha, x, y) }

// AxpyF32 computes y[i] += alpha*x[i]; see AxpyF64.
func AxpyF32(alpha float32, x, y []float32) { axpy(alpha, x, y) }

// TriadF64 sets dst[i] = b[i] + s*c[i] (the STREAM triad) over the first
// min(len(dst), len(b), len(c)) elements; dst may alias b or c.
func TriadF64(dst, b, c []float64, s float64) { triad(dst, b, c, s) }

// TriadF32 sets dst[i] = b[i] + s*c[i]; see TriadF64.
func TriadF32(dst, b, c []float32, s float32) { triad(dst, b, c, s) }

// fma returns x*y+z rounded once. For float32 the float64 product of two
// float32 values is exact, so one float64 addition rounded to float32 is
// correctly rounded except in rare double-rounding cases, which the
// kernels' error bounds allow.
func fma[T float](x, y, z T) T {
	return T(math.FMA(float64(x), float64(y), float64(z)))
}
