// Package gpukern turns accel operations into launches of the kernels in
// Source. The OpenCL and CUDA backends share it: each provides a Launcher
// (compile, allocate scratch, set arguments, enqueue) and gpukern decides
// which kernels to run with which grid. Operations it cannot map return an
// error wrapping accel.ErrUnsupported, so the Exec runs them on the host.
package gpukern

import (
	"context"
	"fmt"

	"github.com/autonode/autonode/accel"
)

// MaxDims is the most axes a broadcast, gather or batched matmul may have
// on the device; more fall back to the host.
const MaxDims = 8

// Meta mirrors the kernels' Meta struct: a shape and two stride vectors,
// passed to a kernel by value.
type Meta struct {
	N, A, B [MaxDims]int64
	ND, Pad int32
}

// Caps is what a device's kernels may rely on.
type Caps struct {
	FP64     bool // double kernels and double accumulators are available
	MaxGroup int  // the largest work-group (thread block) size
}

// ACCBytes is the size of the kernels' accumulator type on a device.
func (c Caps) ACCBytes() int {
	if c.FP64 {
		return 8
	}
	return 4
}

// Launcher is the part of a backend that gpukern drives.
type Launcher interface {
	Caps() Caps
	// Mem returns the kernel-argument handle of a buffer the backend owns.
	Mem(b accel.Buffer) (any, error)
	// Launch runs kernel name from the program built for dt on groups×local
	// work items. Arguments are backend handles (from Mem or Temp), int64,
	// int32, float32, float64 or Meta.
	Launch(dt accel.DType, name string, groups, local [3]int, args ...any) error
	// Temp allocates scratch device memory; free releases it once the work
	// queued so far no longer needs it.
	Temp(bytes int) (mem any, free func(), err error)
}

// Unsupported returns an error wrapping accel.ErrUnsupported.
func Unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", accel.ErrUnsupported, fmt.Sprintf(format, args...))
}

const (
	linear   = 256 // work-group size of element-wise kernels
	redLocal = 256 // RED_LS in Source
	tile     = 16  // TS in Source
)

func lin(n int) (groups, local [3]int) {
	return [3]int{(n + linear - 1) / linear, 1, 1}, [3]int{linear, 1, 1}
}

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// bcastStrides returns the element strides that read an operand of shape
// in at each index of out (zero along broadcast axes), right-aligned.
func bcastStrides(in, out []int) [MaxDims]int64 {
	var st [MaxDims]int64
	off := len(out) - len(in)
	s := int64(1)
	for d := len(in) - 1; d >= 0; d-- {
		if in[d] != 1 {
			st[off+d] = s
		}
		s *= int64(in[d])
	}
	return st
}

func scalar(dt accel.DType, v float64) any {
	if dt == accel.Float32 {
		return float32(v)
	}
	return v
}

// stridedMeta describes a strided view (shape and element strides) for
// k_gather and k_scatter.
func stridedMeta(what string, shape, strides []int) (Meta, error) {
	if len(shape) > MaxDims {
		return Meta{}, Unsupported("%s over %d axes", what, len(shape))
	}
	m := Meta{ND: int32(len(shape))}
	for i, d := range shape {
		m.N[i], m.A[i] = int64(d), int64(strides[i])
	}
	return m, nil
}

// Run computes op with l's kernels.
func Run(ctx context.Context, l Launcher, op *accel.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	caps := l.Caps()
	if caps.MaxGroup < linear {
		return Unsupported("work groups of %d items are smaller than the %d the kernels need", caps.MaxGroup, linear)
	}
	dt := op.Out.DType()
	if op.Kind == accel.OpReduce || op.Kind == accel.OpConvert {
		dt = op.In[0].DType()
	}
	if (dt == accel.Float64 || op.Out.DType() == accel.Float64) && !caps.FP64 {
		return Unsupported("the device has no double precision (cl_khr_fp64)")
	}
	mems := make([]any, len(op.In))
	for i, a := range op.In {
		m, err := l.Mem(a.Buffer())
		if err != nil {
			return err
		}
		mems[i] = m
	}
	out, err := l.Mem(op.Out.Buffer())
	if err != nil {
		return err
	}
	n := op.Out.Size()
	outShape := op.Out.Shape()
	switch op.Kind {
	case accel.OpBinary:
		if n == 0 {
			return nil
		}
		xs, ys := op.In[0].Shape(), op.In[1].Shape()
		g, lo := lin(n)
		if sameShape(xs, outShape) && sameShape(ys, outShape) {
			if op.Binary == accel.OpAdd {
				return l.Launch(dt, "k_add", g, lo, out, mems[0], mems[1], int64(n))
			}
			return l.Launch(dt, "k_binary", g, lo, out, mems[0], mems[1], int64(n), int32(op.Binary))
		}
		if len(outShape) > MaxDims {
			return Unsupported("broadcast over %d axes", len(outShape))
		}
		m := Meta{ND: int32(len(outShape)), A: bcastStrides(xs, outShape), B: bcastStrides(ys, outShape)}
		for i, d := range outShape {
			m.N[i] = int64(d)
		}
		return l.Launch(dt, "k_binary_bcast", g, lo, out, mems[0], mems[1], int64(n), int32(op.Binary), m)
	case accel.OpBinaryScalar:
		if n == 0 {
			return nil
		}
		first := int32(0)
		if op.ScalarFirst {
			first = 1
		}
		g, lo := lin(n)
		return l.Launch(dt, "k_binary_scalar", g, lo, out, mems[0], scalar(dt, op.Scalar), int64(n), int32(op.Binary), first)
	case accel.OpUnary:
		if n == 0 {
			return nil
		}
		g, lo := lin(n)
		return l.Launch(dt, "k_unary", g, lo, out, mems[0], int64(n), int32(op.Unary))
	case accel.OpClip:
		if n == 0 {
			return nil
		}
		g, lo := lin(n)
		return l.Launch(dt, "k_clip", g, lo, out, mems[0], scalar(dt, op.Scalar), scalar(dt, op.Scalar2), int64(n))
	case accel.OpAxpy:
		if n == 0 {
			return nil
		}
		g, lo := lin(n)
		return l.Launch(dt, "k_axpy", g, lo, out, mems[0], scalar(dt, op.Scalar), int64(n))
	case accel.OpTriad:
		if n == 0 {
			return nil
		}
		g, lo := lin(n)
		return l.Launch(dt, "k_triad", g, lo, out, mems[0], mems[1], scalar(dt, op.Scalar), int64(n))
	case accel.OpGather:
		if n == 0 {
			return nil
		}
		m, err := stridedMeta("gather", outShape, op.Strides)
		if err != nil {
			return err
		}
		g, lo := lin(n)
		return l.Launch(dt, "k_gather", g, lo, out, mems[0], int64(n), int64(op.Offset), m)
	case accel.OpScatter:
		shape := op.In[0].Shape()
		n := size(shape)
		if n == 0 {
			return nil
		}
		m, err := stridedMeta("scatter", shape, op.Strides)
		if err != nil {
			return err
		}
		g, lo := lin(n)
		return l.Launch(dt, "k_scatter", g, lo, out, mems[0], int64(n), int64(op.Offset), m)
	case accel.OpConcat:
		ax := op.Axis
		outer, inner := size(outShape[:ax]), size(outShape[ax+1:])
		at := 0
		for i, a := range op.In {
			w := a.Shape()[ax]
			cols := w * inner
			if outer*cols > 0 {
				g, lo := lin(outer * cols)
				if err := l.Launch(dt, "k_copy2d", g, lo, out, mems[i], int64(outer), int64(cols), int64(outShape[ax]*inner), int64(at*inner)); err != nil {
					return err
				}
			}
			at += w
		}
		return nil
	case accel.OpConvert:
		if n == 0 {
			return nil
		}
		g, lo := lin(n)
		switch {
		case dt == op.Out.DType():
			return l.Launch(dt, "k_copy2d", g, lo, out, mems[0], int64(1), int64(n), int64(0), int64(0))
		case dt == accel.Float32:
			return l.Launch(accel.Float64, "k_f32_to_f64", g, lo, out, mems[0], int64(n))
		default:
			return l.Launch(accel.Float64, "k_f64_to_f32", g, lo, out, mems[0], int64(n))
		}
	case accel.OpDot:
		return reduceAll(l, dt, 8, out, mems[0], mems[1], op.In[0].Size())
	case accel.OpReduce:
		code := int32(op.Reduce)
		if op.Axis == accel.AllAxes {
			return reduceAll(l, dt, code, out, mems[0], mems[0], op.In[0].Size())
		}
		shape := op.In[0].Shape()
		outer, length, inner := size(shape[:op.Axis]), shape[op.Axis], size(shape[op.Axis+1:])
		if outer*inner == 0 {
			return nil
		}
		return l.Launch(dt, "k_reduce", [3]int{outer * inner, 1, 1}, [3]int{redLocal, 1, 1},
			out, out, mems[0], mems[0], int64(outer), int64(length), int64(inner), code)
	case accel.OpMatmul:
		return matmul(l, dt, op, out, mems, outShape)
	}
	return Unsupported("operation %s", op.Kind)
}

// reduceAll reduces n elements into the 0-d out: in one work group when n
// is small, else in per-chunk partial results and a final pass.
func reduceAll(l Launcher, dt accel.DType, code int32, out, x, y any, n int) error {
	const oneGroup = 1 << 15
	if n <= oneGroup {
		return l.Launch(dt, "k_reduce", [3]int{1, 1, 1}, [3]int{redLocal, 1, 1},
			out, out, x, y, int64(1), int64(n), int64(1), code)
	}
	groups := min(1024, (n+8*redLocal-1)/(8*redLocal))
	chunk := (n + groups - 1) / groups
	pv, freeV, err := l.Temp(groups * l.Caps().ACCBytes())
	if err != nil {
		return err
	}
	defer freeV()
	pi, freeI, err := l.Temp(groups * 8)
	if err != nil {
		return err
	}
	defer freeI()
	if err := l.Launch(dt, "k_reduce_part", [3]int{groups, 1, 1}, [3]int{redLocal, 1, 1},
		pv, pi, x, y, int64(n), int64(chunk), code); err != nil {
		return err
	}
	return l.Launch(dt, "k_reduce_final", [3]int{1, 1, 1}, [3]int{redLocal, 1, 1},
		out, out, pv, pi, int64(groups), int64(n), code)
}

// matmul launches the tiled kernel over every batch of the product.
func matmul(l Launcher, dt accel.DType, op *accel.Op, out any, mems []any, outShape []int) error {
	as, bs := op.In[0].Shape(), op.In[1].Shape()
	nd := len(outShape)
	m, n, k := outShape[nd-2], outShape[nd-1], as[len(as)-1]
	batch := outShape[:nd-2]
	if len(batch) > MaxDims {
		return Unsupported("matmul with %d batch axes", len(batch))
	}
	nb := size(batch)
	if nb*m*n == 0 {
		return nil
	}
	meta := Meta{ND: int32(len(batch))}
	for i, d := range batch {
		meta.N[i] = int64(d)
	}
	meta.A = bcastStrides(as[:len(as)-2], batch)
	meta.B = bcastStrides(bs[:len(bs)-2], batch)
	for i := range batch {
		meta.A[i] *= int64(m * k)
		meta.B[i] *= int64(k * n)
	}
	groups := [3]int{(n + tile - 1) / tile, (m + tile - 1) / tile, nb}
	return l.Launch(dt, "k_matmul", groups, [3]int{tile, tile, 1}, out, mems[0], mems[1], int64(m), int64(n), int64(k), meta)
}
