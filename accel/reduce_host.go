package accel

import (
	"context"
	"math"

	"github.com/autonode/autonode/accel/internal/kern"
)

// runReduce computes an OpReduce whose input has element type T.
func runReduce[T float](ctx context.Context, op *Op) error {
	x := hostData[T](op.In[0])
	set := outSetter(op.Out)
	rop := op.Reduce // the closures below must not capture op
	if op.Axis == AllAxes {
		v, err := reduceAll(ctx, op.Reduce, x)
		if err != nil {
			return err
		}
		set(0, v)
		return nil
	}
	shape := op.In[0].shape
	outer, n, inner := shapeSize(shape[:op.Axis]), shape[op.Axis], shapeSize(shape[op.Axis+1:])
	if outer*inner == 0 {
		return ctx.Err()
	}
	if n == 0 { // only sum, mean and norm get here
		empty := 0.0
		if op.Reduce == OpMean {
			empty = math.NaN()
		}
		for i := range outer * inner {
			set(i, empty)
		}
		return ctx.Err()
	}
	if inner == 1 {
		return forChunks(ctx, outer, max(n, 1), func(lo, hi int) {
			for o := lo; o < hi; o++ {
				set(o, reduceRow(rop, x[o*n:(o+1)*n]))
			}
		})
	}
	const block = 256
	blocks := (inner + block - 1) / block
	return forChunks(ctx, outer*blocks, block*max(n, 1), func(lo, hi int) {
		var acc [block]float64
		var best [block]T
		var at [block]int
		for p := lo; p < hi; p++ {
			o, b := p/blocks, p%blocks
			i0 := b * block
			w := min(block, inner-i0)
			reduceColumns(rop, x[o*n*inner+i0:], n, inner, w, acc[:w], best[:w], at[:w])
			for i := range w {
				set(o*inner+i0+i, acc[i])
			}
		}
	})
}

// outSetter returns a function storing a float64 result at a flat position
// of a host output array of either dtype.
func outSetter(out *Array) func(i int, v float64) {
	if out.dtype == Float64 {
		d := hostData[float64](out)
		return func(i int, v float64) { d[i] = v }
	}
	d := hostData[float32](out)
	return func(i int, v float64) { d[i] = float32(v) }
}

// reduceAll reduces every element, in parallel for long inputs.
func reduceAll[T float](ctx context.Context, op ReduceOp, x []T) (float64, error) {
	n := len(x)
	switch op {
	case OpSum, OpMean, OpNorm:
		var acc float64
		err := eachChunk(ctx, n, func(lo, hi int) {
			if op == OpNorm {
				acc += kernDot(x[lo:hi], x[lo:hi])
			} else {
				acc += kernSum(x[lo:hi])
			}
		})
		switch op {
		case OpMean:
			acc /= float64(n) // NaN for an empty array, as in NumPy
		case OpNorm:
			acc = math.Sqrt(acc)
		}
		return acc, err
	}
	// min, max, argmin, argmax: scan pieces in parallel, combine in order.
	const piece = 1 << 16
	pieces := (n + piece - 1) / piece
	vals := make([]T, pieces)
	idxs := make([]int, pieces)
	wantMax := op == OpMax || op == OpArgMax
	err := forChunks(ctx, pieces, piece, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			s := p * piece
			v, i := bestOf(x[s:min(n, s+piece)], wantMax)
			vals[p], idxs[p] = v, s+i
		}
	})
	if err != nil {
		return 0, err
	}
	v, i := bestOf(vals, wantMax)
	if op.isArg() {
		return float64(idxs[i]), nil
	}
	return float64(v), nil
}

// bestOf returns the first largest (or smallest) element of a non-empty x
// and its index; the first NaN, if any, wins.
func bestOf[T float](x []T, wantMax bool) (T, int) {
	best, at := x[0], 0
	if best != best {
		return best, 0
	}
	for i := 1; i < len(x); i++ {
		v := x[i]
		if v != v {
			return v, i
		}
		if (wantMax && v > best) || (!wantMax && v < best) {
			best, at = v, i
		}
	}
	return best, at
}

// reduceRow reduces one contiguous row (serially: rows run in parallel).
func reduceRow[T float](op ReduceOp, x []T) float64 {
	switch op {
	case OpSum:
		return kernSum(x)
	case OpMean:
		return kernSum(x) / float64(len(x))
	case OpNorm:
		return math.Sqrt(kernDot(x, x))
	}
	v, i := bestOf(x, op == OpMax || op == OpArgMax)
	if op.isArg() {
		return float64(i)
	}
	return float64(v)
}

// reduceColumns reduces w adjacent columns over n rows of stride inner
// starting at x[0], writing one float64 result per column into acc.
func reduceColumns[T float](op ReduceOp, x []T, n, inner, w int, acc []float64, best []T, at []int) {
	switch op {
	case OpSum, OpMean, OpNorm:
		clear(acc)
		for k := range n {
			row := x[k*inner : k*inner+w]
			if op == OpNorm {
				for i, v := range row {
					acc[i] += float64(v) * float64(v)
				}
			} else {
				for i, v := range row {
					acc[i] += float64(v)
				}
			}
		}
		for i := range acc {
			switch op {
			case OpMean:
				acc[i] /= float64(n)
			case OpNorm:
				acc[i] = math.Sqrt(acc[i])
			}
		}
		return
	}
	wantMax := op == OpMax || op == OpArgMax
	copy(best, x[:w])
	clear(at)
	for k := 1; k < n; k++ {
		row := x[k*inner : k*inner+w]
		for i, v := range row {
			b := best[i]
			if b != b {
				continue // a NaN already won this column
			}
			if v != v || (wantMax && v > b) || (!wantMax && v < b) {
				best[i], at[i] = v, k
			}
		}
	}
	for i := range acc {
		if op.isArg() {
			acc[i] = float64(at[i])
		} else {
			acc[i] = float64(best[i])
		}
	}
}

// kernSum sums a contiguous slice with kern.
func kernSum[T float](x []T) float64 {
	switch xs := any(x).(type) {
	case []float64:
		return kern.SumF64(xs)
	case []float32:
		return float64(kern.SumF32(xs))
	}
	return 0
}

// kernDot is the inner product of two contiguous slices, with kern.
func kernDot[T float](x, y []T) float64 {
	switch xs := any(x).(type) {
	case []float64:
		return kern.DotF64(xs, any(y).([]float64))
	case []float32:
		return float64(kern.DotF32(xs, any(y).([]float32)))
	}
	return 0
}
