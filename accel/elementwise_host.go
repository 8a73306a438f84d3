package accel

import (
	"context"
	"github.com/autonode/autonode/accel/internal/kern"
)

// kernChunk is how many elements one call into kern handles between
// cancellation checks (kern spreads each call over all cores itself).
const kernChunk = 1 << 22

// eachChunk calls fn on consecutive pieces of [0, n), checking ctx first.
func eachChunk(ctx context.Context, n int, fn func(lo, hi int)) error {
	for lo := 0; lo < n; lo += kernChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		fn(lo, min(n, lo+kernChunk))
	}
	return nil
}

// kernBinary runs op's contiguous kern kernel, reporting false when it has
// none.
func kernBinary[T float](op *BinaryInfo, dst, x, y []T) bool {
	switch d := any(dst).(type) {
	case []float64:
		if op.kern64 == nil {
			return false
		}
		op.kern64(d, any(x).([]float64), any(y).([]float64))
	case []float32:
		if op.kern32 == nil {
			return false
		}
		op.kern32(d, any(x).([]float32), any(y).([]float32))
	}
	return true
}

// kernScalar runs op's kern kernel for x op s, reporting false when it has
// none.
func kernScalar[T float](op *BinaryInfo, dst, x []T, s T) bool {
	switch d := any(dst).(type) {
	case []float64:
		if op.scal64 == nil {
			return false
		}
		op.scal64(d, any(x).([]float64), float64(s))
	case []float32:
		if op.scal32 == nil {
			return false
		}
		op.scal32(d, any(x).([]float32), float32(s))
	}
	return true
}

// elemFunc returns op's element function for T.
func elemFunc[T float](op *BinaryInfo) func(a, b T) T {
	var z T
	if _, ok := any(z).(float64); ok {
		return any(op.F64).(func(a, b T) T)
	}
	return any(op.F32).(func(a, b T) T)
}

func unaryFunc[T float](op *UnaryInfo) func(v T) T {
	var z T
	if _, ok := any(z).(float64); ok {
		return any(op.F64).(func(v T) T)
	}
	return any(op.F32).(func(v T) T)
}

func binaryHost[T float](ctx context.Context, bop BinaryOp, out []T, outShape []int, x []T, xShape []int, y []T, yShape []int) error {
	n := len(out)
	if n == 0 {
		return ctx.Err()
	}
	op := bop.info()
	xFull, yFull := len(x) == n, len(y) == n
	switch {
	case xFull && yFull:
		if op.kern64 != nil {
			return eachChunk(ctx, n, func(lo, hi int) { kernBinary(op, out[lo:hi], x[lo:hi], y[lo:hi]) })
		}
		return forChunks(ctx, n, 1, func(lo, hi int) { binaryRow(op, out[lo:hi], x, lo, 1, y, lo, 1) })
	case xFull && len(y) == 1:
		return binaryScalarHost(ctx, bop, out, x, y[0], false)
	case yFull && len(x) == 1:
		return binaryScalarHost(ctx, bop, out, y, x[0], true)
	}
	shape, st := coalesce(outShape, rowStrides(outShape), broadcastStrides(xShape, outShape), broadcastStrides(yShape, outShape))
	inner := shape[len(shape)-1]
	last := len(shape) - 1
	sx, sy := st[1][last], st[2][last]
	rows := n / inner
	return forChunks(ctx, rows, inner, func(lo, hi int) {
		idx := make([]int, last)
		unravel(lo, shape[:last], idx)
		for r := lo; r < hi; r++ {
			xo, yo := 0, 0
			for d, i := range idx {
				xo += i * st[1][d]
				yo += i * st[2][d]
			}
			binaryRow(op, out[r*inner:(r+1)*inner], x, xo, sx, y, yo, sy)
			increment(idx, shape[:last])
		}
	})
}

// unravel writes the multi-index of flat position p within shape into idx.
func unravel(p int, shape, idx []int) {
	for d := len(shape) - 1; d >= 0; d-- {
		idx[d] = p % shape[d]
		p /= shape[d]
	}
}

// increment advances a row-major multi-index by one.
func increment(idx, shape []int) {
	for d := len(idx) - 1; d >= 0; d-- {
		idx[d]++
		if idx[d] < shape[d] {
			return
		}
		idx[d] = 0
	}
}

// binaryRow computes dst[i] = x[xo+i*sx] op y[yo+i*sy], with op's kern
// kernels where the strides allow.
func binaryRow[T float](op *BinaryInfo, dst, x []T, xo, sx int, y []T, yo, sy int) {
	n := len(dst)
	switch {
	case sx == 1 && sy == 1 && kernBinary(op, dst, x[xo:xo+n], y[yo:yo+n]):
		return
	case sx == 1 && sy == 0 && kernScalar(op, dst, x[xo:xo+n], y[yo]):
		return
	case sx == 0 && sy == 1 && (op.Op == OpAdd || op.Op == OpMul) && kernScalar(op, dst, y[yo:yo+n], x[xo]):
		return
	}
	f := elemFunc[T](op)
	if sx == 1 && sy == 1 {
		xs, ys := x[xo:xo+n], y[yo:yo+n]
		for i := range dst {
			dst[i] = f(xs[i], ys[i])
		}
		return
	}
	for i := range dst {
		dst[i] = f(x[xo+i*sx], y[yo+i*sy])
	}
}

// binaryScalarHost computes out = x op s, or s op x when scalarFirst.
func binaryScalarHost[T float](ctx context.Context, bop BinaryOp, out, x []T, s T, scalarFirst bool) error {
	n := len(out)
	op := bop.info()
	commutes := bop == OpAdd || bop == OpMul
	if (!scalarFirst || commutes) && op.scal64 != nil {
		return eachChunk(ctx, n, func(lo, hi int) { kernScalar(op, out[lo:hi], x[lo:hi], s) })
	}
	f := elemFunc[T](op)
	return forChunks(ctx, n, 1, func(lo, hi int) {
		switch {
		case bop == OpDiv && !scalarFirst:
			for i := lo; i < hi; i++ {
				out[i] = x[i] / s
			}
		case scalarFirst:
			for i := lo; i < hi; i++ {
				out[i] = f(s, x[i])
			}
		default:
			for i := lo; i < hi; i++ {
				out[i] = f(x[i], s)
			}
		}
	})
}

func unaryHost[T float](ctx context.Context, op UnaryOp, out, x []T) error {
	f := unaryFunc[T](op.info())
	return forChunks(ctx, len(out), 4, func(lo, hi int) {
		o, v := out[lo:hi], x[lo:hi]
		for i := range o {
			o[i] = f(v[i])
		}
	})
}

func clipHost[T float](ctx context.Context, out, x []T, lo, hi T) error {
	return forChunks(ctx, len(out), 1, func(a, b int) {
		for i := a; i < b; i++ {
			v := x[i]
			if v < lo {
				v = lo
			}
			if v > hi {
				v = hi
			}
			out[i] = v
		}
	})
}

func axpyHost[T float](ctx context.Context, alpha T, x, y []T) error {
	return eachChunk(ctx, len(y), func(lo, hi int) {
		switch ys := any(y).(type) {
		case []float64:
			kern.AxpyF64(float64(alpha), any(x).([]float64)[lo:hi], ys[lo:hi])
		case []float32:
			kern.AxpyF32(float32(alpha), any(x).([]float32)[lo:hi], ys[lo:hi])
		}
	})
}

func triadHost[T float](ctx context.Context, dst, b, c []T, s T) error {
	return eachChunk(ctx, len(dst), func(lo, hi int) {
		switch d := any(dst).(type) {
		case []float64:
			kern.TriadF64(d[lo:hi], any(b).([]float64)[lo:hi], any(c).([]float64)[lo:hi], float64(s))
		case []float32:
			kern.TriadF32(d[lo:hi], any(b).([]float32)[lo:hi], any(c).([]float32)[lo:hi], float32(s))
		}
	})
}

// dotHost returns the dot product, accumulating chunk results in float64.
func dotHost[T float](ctx context.Context, x, y []T) (T, error) {
	var acc float64
	err := eachChunk(ctx, len(x), func(lo, hi int) {
		switch xs := any(x).(type) {
		case []float64:
			acc += kern.DotF64(xs[lo:hi], any(y).([]float64)[lo:hi])
		case []float32:
			acc += float64(kern.DotF32(xs[lo:hi], any(y).([]float32)[lo:hi]))
		}
	})
	return T(acc), err
}
