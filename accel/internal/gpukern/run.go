// Package gpukern turns accel operations into launches of the kernels in
// Source. The OpenCL, CUDA and Metal backends share it: each provides a
// Launcher (compile, allocate scratch, set arguments, enqueue) and gpukern
// decides which kernels to run with which grid. Operations it cannot map
// return an error wrapping accel.ErrUnsupported, so the Exec runs them on
// the host.
package gpukern

import (
	"context"
	"fmt"
	"math"
	"slices"

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
	MaxGroup int  // the largest work-group (thread block) size of the device
	// MaxGrid is the most work groups a launch may have along each axis;
	// zero means 2^31-1.
	MaxGrid [3]int
}

// ACCBytes is the size of the kernels' accumulator type on a device.
func (c Caps) ACCBytes() int {
	if c.FP64 {
		return 8
	}
	return 4
}

func (c Caps) maxGrid(axis int) int {
	if c.MaxGrid[axis] > 0 {
		return c.MaxGrid[axis]
	}
	return math.MaxInt32
}

// Launcher is the part of a backend that gpukern drives.
type Launcher interface {
	Caps() Caps
	// Mem returns the kernel-argument handle of a buffer the backend owns.
	Mem(b accel.Buffer) (any, error)
	// GroupLimit returns the most work items one group of kernel name (of
	// the program built for dt) may have on this device: OpenCL's
	// CL_KERNEL_WORK_GROUP_SIZE, CUDA's CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
	// Metal's maxTotalThreadsPerThreadgroup. It is at most Caps().MaxGroup.
	GroupLimit(dt accel.DType, name string) (int, error)
	// Launch runs kernel name from the program built for dt on groups×local
	// work items. Arguments are backend handles (from Mem or Temp), int64,
	// int32, float32, float64 or Meta.
	Launch(dt accel.DType, name string, groups, local [3]int, args ...any) error
	// Temp allocates scratch device memory; free releases it once the work
	// queued so far no longer needs it.
	Temp(bytes int) (mem any, free func(), err error)
}

// Gemmer is implemented by a Launcher that has a vendor matrix multiply
// (cuBLAS, Metal Performance Shaders). Gemm computes g and reports whether
// it did; false (with a nil error) sends the product to the k_matmul
// kernel, e.g. for a dtype or a size the library does not take.
type Gemmer interface {
	Gemm(dt accel.DType, g *Gemm) (bool, error)
}

// Gemm is one batched, row-major matrix product C[b] = A[b] @ B[b] with A
// of shape (M, K), B (K, N) and C (M, N) in every batch b. Batch lists the
// batch axes of C; AStrides and BStrides give, per batch axis, how many
// elements the operand moves from one batch to the next (zero along an axis
// the operand is broadcast over). C is contiguous, batch after batch.
type Gemm struct {
	M, N, K            int
	C, A, B            any // backend handles, as from Launcher.Mem
	Batch              []int
	AStrides, BStrides []int64
}

// Batches returns the number of matrices in C.
func (g *Gemm) Batches() int { return size(g.Batch) }

// Strided calls f once for every run of batches that one strided-batched
// GEMM can compute: count matrices whose first elements are at aOff, bOff
// and cOff and that step by aStride, bStride and cStride elements. Batch
// axes whose strides line up are merged into one run, so a plain batch of
// matrices (or one broadcast operand) is a single call.
func (g *Gemm) Strided(f func(aOff, bOff, cOff int64, count int, aStride, bStride, cStride int64) error) error {
	mn := int64(g.M) * int64(g.N)
	nb := len(g.Batch)
	if nb == 0 {
		return f(0, 0, 0, 1, 0, 0, mn)
	}
	split, count := nb-1, g.Batch[nb-1]
	sa, sb := g.AStrides[nb-1], g.BStrides[nb-1]
	for split > 0 && g.AStrides[split-1] == sa*int64(count) && g.BStrides[split-1] == sb*int64(count) {
		split--
		count *= g.Batch[split]
	}
	outer := size(g.Batch[:split])
	for o := range outer {
		var aOff, bOff int64
		r := o
		for d := split - 1; d >= 0; d-- {
			q := int64(r % g.Batch[d])
			r /= g.Batch[d]
			aOff += q * g.AStrides[d]
			bOff += q * g.BStrides[d]
		}
		if err := f(aOff, bOff, int64(o)*int64(count)*mn, count, sa, sb, mn); err != nil {
			return err
		}
	}
	return nil
}

// KernelNames lists every kernel Run launches. A backend may build them
// all when it opens, so that a kernel its compiler rejects makes the device
// unavailable rather than failing operations later.
var KernelNames = []string{
	"k_binary", "k_add", "k_binary_bcast", "k_binary_scalar", "k_unary", "k_clip", "k_axpy", "k_triad",
	"k_gather", "k_scatter", "k_copy2d", "k_reduce_short", "k_reduce_rows", "k_reduce_cols", "k_reduce_parts", "k_matmul",
}

// ConvertKernels are the float32/float64 conversions, in the float64
// program only.
var ConvertKernels = []string{"k_f32_to_f64", "k_f64_to_f32"}

// Unsupported returns an error wrapping accel.ErrUnsupported.
func Unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", accel.ErrUnsupported, fmt.Sprintf(format, args...))
}

const (
	linear     = 256     // work-group size of element-wise kernels
	redLocal   = 256     // RED_LS in Source: the largest row-reduction group
	colsX      = 32      // COLS_X: columns per column-reduction group
	colsY      = 8       // COLS_Y: the deepest column-reduction group
	mmTile     = 64      // MM_T: the side of k_matmul's output tile
	mmLocal    = 16      // MM_L: k_matmul's group is mmLocal × mmLocal
	fillGroups = 1024    // groups worth splitting a reduction for
	oneGroup   = 1 << 15 // a reduction this short runs in one group
	shortRow   = 32      // rows this short are reduced by one item each
)

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
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

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// pow2Below returns the largest power of two not above n (0 for n < 1).
func pow2Below(n int) int {
	p := 0
	for q := 1; q <= n; q *= 2 {
		p = q
	}
	return p
}

// runner holds one operation's launcher and dtype.
type runner struct {
	l    Launcher
	caps Caps
	dt   accel.DType
}

// local returns the group size to launch kernel name with: want, halved
// until the kernel's limit on this device allows it, and at least least.
func (r *runner) local(name string, want, least int) (int, error) {
	limit, err := r.l.GroupLimit(r.dt, name)
	if err != nil {
		return 0, err
	}
	ls := min(want, pow2Below(limit))
	if ls < least {
		return 0, Unsupported("%s needs work groups of %d items; the device allows %d for it", name, least, limit)
	}
	return ls, nil
}

// launch1D runs kernel name on groups groups of local items, checking the
// grid against the device's limit.
func (r *runner) launch1D(name string, groups, local int, args ...any) error {
	if groups > r.caps.maxGrid(0) {
		return Unsupported("%s: %d work groups exceed the device's %d", name, groups, r.caps.maxGrid(0))
	}
	return r.l.Launch(r.dt, name, [3]int{groups, 1, 1}, [3]int{local, 1, 1}, args...)
}

// elementwise runs a kernel with one work item per element of n.
func (r *runner) elementwise(name string, n int, args ...any) error {
	if n == 0 {
		return nil
	}
	ls, err := r.local(name, linear, 1)
	if err != nil {
		return err
	}
	return r.launch1D(name, ceilDiv(n, ls), ls, args...)
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
	dt := op.Out.DType()
	if op.Kind == accel.OpReduce || op.Kind == accel.OpConvert {
		dt = op.In[0].DType()
	}
	if (dt == accel.Float64 || op.Out.DType() == accel.Float64) && !caps.FP64 {
		return Unsupported("the device has no double precision")
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
	r := &runner{l: l, caps: caps, dt: dt}
	n := op.Out.Size()
	outShape := op.Out.Shape()
	switch op.Kind {
	case accel.OpBinary:
		xs, ys := op.In[0].Shape(), op.In[1].Shape()
		if slices.Equal(xs, outShape) && slices.Equal(ys, outShape) {
			if op.Binary == accel.OpAdd {
				return r.elementwise("k_add", n, out, mems[0], mems[1], int64(n))
			}
			return r.elementwise("k_binary", n, out, mems[0], mems[1], int64(n), int32(op.Binary))
		}
		if len(outShape) > MaxDims {
			return Unsupported("broadcast over %d axes", len(outShape))
		}
		m := Meta{ND: int32(len(outShape)), A: bcastStrides(xs, outShape), B: bcastStrides(ys, outShape)}
		for i, d := range outShape {
			m.N[i] = int64(d)
		}
		return r.elementwise("k_binary_bcast", n, out, mems[0], mems[1], int64(n), int32(op.Binary), m)
	case accel.OpBinaryScalar:
		first := int32(0)
		if op.ScalarFirst {
			first = 1
		}
		return r.elementwise("k_binary_scalar", n, out, mems[0], scalar(dt, op.Scalar), int64(n), int32(op.Binary), first)
	case accel.OpUnary:
		return r.elementwise("k_unary", n, out, mems[0], int64(n), int32(op.Unary))
	case accel.OpClip:
		return r.elementwise("k_clip", n, out, mems[0], scalar(dt, op.Scalar), scalar(dt, op.Scalar2), int64(n))
	case accel.OpAxpy:
		return r.elementwise("k_axpy", n, out, mems[0], scalar(dt, op.Scalar), int64(n))
	case accel.OpTriad:
		return r.elementwise("k_triad", n, out, mems[0], mems[1], scalar(dt, op.Scalar), int64(n))
	case accel.OpGather:
		m, err := stridedMeta("gather", outShape, op.Strides)
		if err != nil {
			return err
		}
		return r.elementwise("k_gather", n, out, mems[0], int64(n), int64(op.Offset), m)
	case accel.OpScatter:
		shape := op.In[0].Shape()
		m, err := stridedMeta("scatter", shape, op.Strides)
		if err != nil {
			return err
		}
		return r.elementwise("k_scatter", size(shape), out, mems[0], int64(size(shape)), int64(op.Offset), m)
	case accel.OpConcat:
		ax := op.Axis
		outer, inner := size(outShape[:ax]), size(outShape[ax+1:])
		at := 0
		for i, a := range op.In {
			w := a.Shape()[ax]
			cols := w * inner
			if err := r.elementwise("k_copy2d", outer*cols, out, mems[i], int64(outer), int64(cols), int64(outShape[ax]*inner), int64(at*inner)); err != nil {
				return err
			}
			at += w
		}
		return nil
	case accel.OpConvert:
		switch {
		case dt == op.Out.DType():
			return r.elementwise("k_copy2d", n, out, mems[0], int64(1), int64(n), int64(0), int64(0))
		case dt == accel.Float32:
			r.dt = accel.Float64
			return r.elementwise("k_f32_to_f64", n, out, mems[0], int64(n))
		default:
			r.dt = accel.Float64
			return r.elementwise("k_f64_to_f32", n, out, mems[0], int64(n))
		}
	case accel.OpDot:
		return r.reduceRows(8, out, mems[0], mems[1], 1, op.In[0].Size())
	case accel.OpReduce:
		code := int32(op.Reduce)
		if op.Axis == accel.AllAxes {
			return r.reduceRows(code, out, mems[0], mems[0], 1, op.In[0].Size())
		}
		shape := op.In[0].Shape()
		outer, length, inner := size(shape[:op.Axis]), shape[op.Axis], size(shape[op.Axis+1:])
		if outer*inner == 0 {
			return nil
		}
		if inner == 1 {
			return r.reduceRows(code, out, mems[0], mems[0], outer, length)
		}
		return r.reduceCols(code, out, mems[0], outer, length, inner)
	case accel.OpMatmul:
		return r.matmul(op, out, mems, outShape)
	}
	return Unsupported("operation %s", op.Kind)
}

// rowLocal picks the group size for reducing n elements per group: a
// power of two from 32 up to redLocal, about n/4 so that every item loads
// a few elements.
func rowLocal(n int) int {
	return max(32, min(redLocal, pow2Below(max(1, n/4))))
}

// reduceRows reduces x viewed as [rows, n] along n into out (rows values).
// Rows too few to fill the device are split into chunks whose partial
// results a second pass combines.
func (r *runner) reduceRows(code int32, out, x, y any, rows, n int) error {
	if n <= shortRow && rows > 1 {
		return r.elementwise("k_reduce_short", rows, out, out, x, int64(rows), int64(n), code)
	}
	splits := 1
	if n > oneGroup && rows < fillGroups {
		splits = min(ceilDiv(fillGroups, rows), ceilDiv(n, 8*redLocal))
	}
	chunk := ceilDiv(n, splits)
	ls, err := r.local("k_reduce_rows", rowLocal(chunk), 1)
	if err != nil {
		return err
	}
	if splits == 1 {
		return r.launch1D("k_reduce_rows", rows, ls, out, out, out, out, x, y, int64(n), int64(max(chunk, 1)), int64(1), code)
	}
	pv, pi, done, err := r.partials(rows * splits)
	if err != nil {
		return err
	}
	defer done()
	if err := r.launch1D("k_reduce_rows", rows*splits, ls, out, out, pv, pi, x, y, int64(n), int64(chunk), int64(splits), code); err != nil {
		return err
	}
	return r.combine(code, out, pv, pi, rows, splits, n)
}

// reduceCols reduces x viewed as [outer, n, inner] along n (inner > 1) with
// column groups, whose reads are coalesced.
func (r *runner) reduceCols(code int32, out, x any, outer, n, inner int) error {
	limit, err := r.l.GroupLimit(r.dt, "k_reduce_cols")
	if err != nil {
		return err
	}
	ly := min(colsY, pow2Below(limit/colsX))
	if ly < 1 {
		return Unsupported("k_reduce_cols needs work groups of %d items; the device allows %d for it", colsX, limit)
	}
	tiles := ceilDiv(inner, colsX)
	base := outer * tiles
	splits := 1
	if base < fillGroups && n > 16*colsY {
		splits = min(ceilDiv(fillGroups, base), ceilDiv(n, 16*colsY))
	}
	chunk := max(1, ceilDiv(n, splits))
	args := func(pv, pi any) []any {
		return []any{out, out, pv, pi, x, int64(n), int64(inner), int64(tiles), int64(chunk), int64(splits), code}
	}
	launch := func(a []any) error {
		groups := base * splits
		if groups > r.caps.maxGrid(0) {
			return Unsupported("k_reduce_cols: %d work groups exceed the device's %d", groups, r.caps.maxGrid(0))
		}
		return r.l.Launch(r.dt, "k_reduce_cols", [3]int{groups, 1, 1}, [3]int{colsX, ly, 1}, a...)
	}
	if splits == 1 {
		return launch(args(out, out))
	}
	pv, pi, done, err := r.partials(outer * inner * splits)
	if err != nil {
		return err
	}
	defer done()
	if err := launch(args(pv, pi)); err != nil {
		return err
	}
	return r.combine(code, out, pv, pi, outer*inner, splits, n)
}

// partials allocates scratch for count partial results (value and index).
func (r *runner) partials(count int) (pv, pi any, done func(), err error) {
	pv, freeV, err := r.l.Temp(count * r.caps.ACCBytes())
	if err != nil {
		return nil, nil, nil, err
	}
	pi, freeI, err := r.l.Temp(count * 8)
	if err != nil {
		freeV()
		return nil, nil, nil, err
	}
	return pv, pi, func() { freeI(); freeV() }, nil
}

// combine reduces outputs×m partial results into out.
func (r *runner) combine(code int32, out, pv, pi any, outputs, m, n int) error {
	ls, err := r.local("k_reduce_parts", rowLocal(m), 1)
	if err != nil {
		return err
	}
	return r.launch1D("k_reduce_parts", outputs, ls, out, out, pv, pi, int64(m), int64(n), code)
}

// matmul computes every batch of the product with the device's GEMM when
// it has one and takes the product, else with the k_matmul kernel.
func (r *runner) matmul(op *accel.Op, out any, mems []any, outShape []int) error {
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
	if g, ok := r.l.(Gemmer); ok && k > 0 {
		gm := &Gemm{M: m, N: n, K: k, C: out, A: mems[0], B: mems[1], Batch: batch,
			AStrides: append([]int64(nil), meta.A[:len(batch)]...), BStrides: append([]int64(nil), meta.B[:len(batch)]...)}
		done, err := g.Gemm(r.dt, gm)
		if done || err != nil {
			return err
		}
	}
	if _, err := r.local("k_matmul", mmLocal*mmLocal, mmLocal*mmLocal); err != nil {
		return err
	}
	gx, gy := ceilDiv(m, mmTile), ceilDiv(n, mmTile)
	if gx > r.caps.maxGrid(0) || gy > r.caps.maxGrid(1) {
		return Unsupported("k_matmul: a %d×%d product needs %d×%d work groups; the device allows %d×%d", m, n, gx, gy, r.caps.maxGrid(0), r.caps.maxGrid(1))
	}
	for b0 := 0; b0 < nb; b0 += r.caps.maxGrid(2) {
		gz := min(nb-b0, r.caps.maxGrid(2))
		if err := r.l.Launch(r.dt, "k_matmul", [3]int{gx, gy, gz}, [3]int{mmLocal, mmLocal, 1},
			out, mems[0], mems[1], int64(m), int64(n), int64(k), int64(b0), meta); err != nil {
			return err
		}
	}
	return nil
}
