package accel

import (
	"context"
	"math"

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

// kernBinary runs the contiguous kern kernel for op, reporting false when
// kern has none for it.
func kernBinary[T float](op BinaryOp, dst, x, y []T) bool {
	switch d := any(dst).(type) {
	case []float64:
		xs, ys := any(x).([]float64), any(y).([]float64)
		switch op {
		case OpAdd:
			kern.AddF64(d, xs, ys)
		case OpSub:
			kern.SubF64(d, xs, ys)
		case OpMul:
			kern.MulF64(d, xs, ys)
		case OpDiv:
			kern.DivF64(d, xs, ys)
		default:
			return false
		}
	case []float32:
		xs, ys := any(x).([]float32), any(y).([]float32)
		switch op {
		case OpAdd:
			kern.AddF32(d, xs, ys)
		case OpSub:
			kern.SubF32(d, xs, ys)
		case OpMul:
			kern.MulF32(d, xs, ys)
		case OpDiv:
			kern.DivF32(d, xs, ys)
		default:
			return false
		}
	}
	return true
}

func binaryHost[T float](ctx context.Context, op BinaryOp, out []T, outShape []int, x []T, xShape []int, y []T, yShape []int) error {
	n := len(out)
	if n == 0 {
		return ctx.Err()
	}
	xFull, yFull := len(x) == n, len(y) == n
	switch {
	case xFull && yFull:
		if op == OpAdd || op == OpSub || op == OpMul || op == OpDiv {
			return eachChunk(ctx, n, func(lo, hi int) { kernBinary(op, out[lo:hi], x[lo:hi], y[lo:hi]) })
		}
		return forChunks(ctx, n, 1, func(lo, hi int) { binaryRow(op, out[lo:hi], x, lo, 1, y, lo, 1) })
	case xFull && len(y) == 1:
		return binaryScalarHost(ctx, op, out, x, y[0], false)
	case yFull && len(x) == 1:
		return binaryScalarHost(ctx, op, out, y, x[0], true)
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

// binaryRow computes dst[i] = x[xo+i*sx] op y[yo+i*sy].
func binaryRow[T float](op BinaryOp, dst, x []T, xo, sx int, y []T, yo, sy int) {
	switch op {
	case OpAdd:
		for i := range dst {
			dst[i] = x[xo+i*sx] + y[yo+i*sy]
		}
	case OpSub:
		for i := range dst {
			dst[i] = x[xo+i*sx] - y[yo+i*sy]
		}
	case OpMul:
		for i := range dst {
			dst[i] = x[xo+i*sx] * y[yo+i*sy]
		}
	case OpDiv:
		for i := range dst {
			dst[i] = x[xo+i*sx] / y[yo+i*sy]
		}
	default:
		f := scalarFunc[T](op)
		for i := range dst {
			dst[i] = f(x[xo+i*sx], y[yo+i*sy])
		}
	}
}

// scalarFunc returns op as a function of two elements, for the operations
// without a dedicated loop.
func scalarFunc[T float](op BinaryOp) func(a, b T) T {
	switch op {
	case OpAdd:
		return func(a, b T) T { return a + b }
	case OpSub:
		return func(a, b T) T { return a - b }
	case OpMul:
		return func(a, b T) T { return a * b }
	case OpDiv:
		return func(a, b T) T { return a / b }
	case OpPow:
		return func(a, b T) T { return T(math.Pow(float64(a), float64(b))) }
	case OpMaximum:
		return func(a, b T) T { return T(math.Max(float64(a), float64(b))) }
	default: // OpMinimum
		return func(a, b T) T { return T(math.Min(float64(a), float64(b))) }
	}
}

// binaryScalarHost computes out = x op s, or s op x when scalarFirst.
func binaryScalarHost[T float](ctx context.Context, op BinaryOp, out, x []T, s T, scalarFirst bool) error {
	n := len(out)
	if kernScalar(op, scalarFirst) {
		return eachChunk(ctx, n, func(lo, hi int) { runKernScalar(op, out[lo:hi], x[lo:hi], s) })
	}
	f := scalarFunc[T](op)
	return forChunks(ctx, n, 1, func(lo, hi int) {
		switch {
		case op == OpDiv && !scalarFirst:
			for i := lo; i < hi; i++ {
				out[i] = x[i] / s
			}
		case op == OpSub && scalarFirst:
			for i := lo; i < hi; i++ {
				out[i] = s - x[i]
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

// kernScalar reports whether kern computes x op s (or s op x) exactly:
// x+s and s+x, x-s as x+(-s), x*s and s*x.
func kernScalar(op BinaryOp, scalarFirst bool) bool {
	return op == OpAdd || op == OpMul || (op == OpSub && !scalarFirst)
}

func runKernScalar[T float](op BinaryOp, dst, x []T, s T) {
	if op == OpSub {
		op, s = OpAdd, -s
	}
	switch d := any(dst).(type) {
	case []float64:
		xs, sv := any(x).([]float64), float64(s)
		if op == OpAdd {
			kern.AddScalarF64(d, xs, sv)
		} else {
			kern.MulScalarF64(d, xs, sv)
		}
	case []float32:
		xs, sv := any(x).([]float32), float32(s)
		if op == OpAdd {
			kern.AddScalarF32(d, xs, sv)
		} else {
			kern.MulScalarF32(d, xs, sv)
		}
	}
}

func unaryHost[T float](ctx context.Context, op UnaryOp, out, x []T) error {
	return forChunks(ctx, len(out), 4, func(lo, hi int) {
		o, v := out[lo:hi], x[lo:hi]
		switch op {
		case OpNeg:
			for i := range o {
				o[i] = -v[i]
			}
		case OpAbs:
			for i := range o {
				o[i] = T(math.Abs(float64(v[i])))
			}
		case OpExp:
			for i := range o {
				o[i] = T(math.Exp(float64(v[i])))
			}
		case OpLog:
			for i := range o {
				o[i] = T(math.Log(float64(v[i])))
			}
		case OpSqrt:
			for i := range o {
				o[i] = T(math.Sqrt(float64(v[i])))
			}
		case OpTanh:
			for i := range o {
				o[i] = T(math.Tanh(float64(v[i])))
			}
		case OpSigmoid:
			for i := range o {
				o[i] = T(sigmoid(float64(v[i])))
			}
		case OpRelu:
			for i := range o {
				if e := v[i]; e > 0 || e != e {
					o[i] = e
				} else {
					o[i] = 0
				}
			}
		}
	})
}

// sigmoid is 1/(1+e^-x), written so that neither branch overflows.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
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
