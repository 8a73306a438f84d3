package accel

import (
	"context"
	"math"
	"slices"
)

// Reshape returns an array with the same elements in row-major order and a
// new shape. One dimension may be -1, meaning whatever makes the sizes
// match. The result is a view sharing a's storage (no copy, no budget
// charge) whenever the new shape can be described by strides over a's
// elements, which is always the case for a contiguous a; otherwise (a
// transpose reshaped across its axes, say) it is a copy, as in NumPy.
func (e *Exec) Reshape(a *Array, shape ...int) (*Array, error) {
	if err := a.live("reshape"); err != nil {
		return nil, err
	}
	out := cloneInts(shape)
	unknown, known := -1, 1
	for i, d := range out {
		switch {
		case d == -1 && unknown >= 0:
			return nil, errorf(ErrShape, "reshape: shape %s has more than one -1: only one dimension can be inferred", formatShape(shape))
		case d == -1:
			unknown = i
		case d < 0:
			return nil, errorf(ErrShape, "reshape: negative dimension %d in shape %s: dimensions must be >= 0, or -1 once to infer one", d, formatShape(shape))
		default:
			if d != 0 && known > maxElements/d {
				return nil, errorf(ErrShape, "reshape: cannot reshape array of size %d into shape %s", a.Size(), formatShape(shape))
			}
			known *= d
		}
	}
	size := a.Size()
	if unknown >= 0 {
		if known == 0 || size%known != 0 {
			return nil, errorf(ErrShape, "reshape: cannot reshape array of size %d into shape %s", size, formatShape(shape))
		}
		out[unknown] = size / known
	} else if known != size {
		return nil, errorf(ErrShape, "reshape: cannot reshape array of size %d into shape %s: sizes must match", size, formatShape(shape))
	}
	if v, ok := reshapeView(a, out); ok {
		return v, nil
	}
	if err := e.checkOperands("reshape", a); err != nil {
		return nil, err
	}
	c, err := e.contiguousCopy(context.Background(), "reshape", a)
	if err != nil {
		return nil, err
	}
	return viewOf(c, out, 0, nil), nil
}

// viewOf returns an array on a's storage with the given shape, offset and
// strides (nil: C order; strides that amount to C order are stored as nil).
func viewOf(a *Array, shape []int, off int, strides []int) *Array {
	v := newArray(a.st, a.dtype, shape, off)
	if strides != nil && !isRowMajor(shape, strides) {
		v.strides = cloneInts(strides)
	}
	return v
}

// isRowMajor reports whether strides walk shape in C order without gaps.
func isRowMajor(shape, strides []int) bool {
	if shapeSize(shape) == 0 {
		return true
	}
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] != 1 && strides[i] != s {
			return false
		}
		s *= shape[i]
	}
	return true
}

// reshapeView returns a view of a with shape (of a's size), or false when
// a's strides cannot describe it.
func reshapeView(a *Array, shape []int) (*Array, bool) {
	if a.strides == nil || a.Size() == 0 {
		return viewOf(a, shape, a.off, nil), true
	}
	st, ok := reshapeStrides(a.shape, a.strides, shape)
	if !ok {
		return nil, false
	}
	return viewOf(a, shape, a.off, st), true
}

// reshapeStrides finds strides that give the elements of (oldShape,
// oldStrides) the new shape in row-major order, as NumPy's no-copy reshape
// does: old and new axes are grouped into runs of equal product, and the
// old axes of each run must be contiguous among themselves. Both shapes
// have the same non-zero size.
func reshapeStrides(oldShape, oldStrides, newShape []int) ([]int, bool) {
	var os, ost []int
	for i, d := range oldShape {
		if d != 1 {
			os, ost = append(os, d), append(ost, oldStrides[i])
		}
	}
	nst := make([]int, len(newShape))
	for i := range nst {
		nst[i] = 1
	}
	oi, ni := 0, 0
	for oi < len(os) {
		if ni >= len(newShape) {
			return nil, false
		}
		np, op := newShape[ni], os[oi]
		nj, oj := ni+1, oi+1
		for np != op {
			if np < op {
				if nj >= len(newShape) {
					return nil, false
				}
				np *= newShape[nj]
				nj++
			} else {
				if oj >= len(os) {
					return nil, false
				}
				op *= os[oj]
				oj++
			}
		}
		for k := oi; k < oj-1; k++ {
			if ost[k] != ost[k+1]*os[k+1] {
				return nil, false
			}
		}
		nst[nj-1] = ost[oj-1]
		for k := nj - 1; k > ni; k-- {
			nst[k-1] = nst[k] * newShape[k]
		}
		ni, oi = nj, oj
	}
	return nst, true
}

// Range selects positions along one axis as Python's start:stop:step does:
// negative Start and Stop count from the end and out-of-range bounds are
// clamped. For an omitted bound use the value Python uses: Start 0 and Stop
// math.MaxInt when Step > 0; Start math.MaxInt and Stop math.MinInt when
// Step < 0 (or call All). Step must not be zero.
type Range struct{ Start, Stop, Step int }

// All selects a whole axis (Python's ":").
func All() Range { return Range{0, math.MaxInt, 1} }

// resolve returns the first position, the step and the count that r selects
// along an axis of length n (Python's PySlice_AdjustIndices).
func (r Range) resolve(n int) (start, step, count int) {
	step = r.Step
	clampIdx := func(i, lo, hi int) int {
		if i < 0 {
			if i < -n {
				return lo
			}
			i += n
		}
		return min(i, hi)
	}
	if step > 0 {
		start, stop := clampIdx(r.Start, 0, n), clampIdx(r.Stop, 0, n)
		if stop > start {
			count = (stop-start-1)/step + 1
		}
		return start, step, count
	}
	start, stop := clampIdx(r.Start, -1, n-1), clampIdx(r.Stop, -1, n-1)
	if step < -maxElements {
		step = -maxElements // so that -step cannot overflow
	}
	if start > stop {
		count = (start-stop-1)/(-step) + 1
	}
	return start, step, count
}

// Slice returns the part of a that ranges select, one Range per leading
// axis (axes without one are taken whole), as a view sharing a's storage.
func (e *Exec) Slice(ctx context.Context, a *Array, ranges ...Range) (*Array, error) {
	if err := e.checkOperands("slice", a); err != nil {
		return nil, err
	}
	if len(ranges) > len(a.shape) {
		return nil, errorf(ErrIndex, "slice: %d ranges for an array of dimension %d (shape %s)", len(ranges), len(a.shape), formatShape(a.shape))
	}
	src := a.Strides()
	shape := cloneInts(a.shape)
	strides := cloneInts(src)
	offset := a.off
	for d, r := range ranges {
		if r.Step == 0 {
			return nil, errorf(ErrArgument, "slice: step is zero at axis %d: a step must be a non-zero integer", d)
		}
		start, step, count := r.resolve(a.shape[d])
		shape[d] = count
		if count > 1 { // then |step| < shape[d], so this cannot overflow
			strides[d] = step * src[d]
		}
		if count > 0 {
			offset += start * src[d]
		}
	}
	return viewOf(a, shape, offset, strides), nil
}

// Index returns the sub-array at integer indices on the leading axes
// (negative counts from the end), as a view sharing a's storage: for a of
// shape (3,4,5), Index(a, 1) has shape (4,5) and Index(a, 1, 2, 3) is a 0-d
// array (read it with Item).
func (e *Exec) Index(ctx context.Context, a *Array, idx ...int) (*Array, error) {
	if err := e.checkOperands("index", a); err != nil {
		return nil, err
	}
	if len(idx) > len(a.shape) {
		return nil, errorf(ErrIndex, "index: too many indices for array: array is %d-dimensional (shape %s), but %d were given", len(a.shape), formatShape(a.shape), len(idx))
	}
	src := a.Strides()
	offset := a.off
	for d, i := range idx {
		n := a.shape[d]
		if i < -n || i >= n {
			return nil, errorf(ErrIndex, "index: index %d is out of bounds for axis %d with size %d", i, d, n)
		}
		if i < 0 {
			i += n
		}
		offset += i * src[d]
	}
	rest := len(idx)
	return viewOf(a, a.shape[rest:], offset, src[rest:]), nil
}

// Concatenate joins arrays along an existing axis; all other axes must
// match. Mixed dtypes give float64.
func (e *Exec) Concatenate(ctx context.Context, arrays []*Array, axis int) (*Array, error) {
	return e.concat(ctx, "concatenate", arrays, axis)
}

func (e *Exec) concat(ctx context.Context, name string, arrays []*Array, axis int) (*Array, error) {
	if len(arrays) == 0 {
		return nil, errorf(ErrArgument, "%s: need at least one array", name)
	}
	if err := e.checkOperands(name, arrays...); err != nil {
		return nil, err
	}
	first := arrays[0]
	if len(first.shape) == 0 {
		return nil, errorf(ErrShape, "%s: zero-dimensional arrays cannot be concatenated", name)
	}
	ax, err := normAxis(name, axis, len(first.shape))
	if err != nil {
		return nil, err
	}
	shape := cloneInts(first.shape)
	shape[ax] = 0
	dt := first.dtype
	for i, a := range arrays {
		if len(a.shape) != len(first.shape) {
			return nil, errorf(ErrShape, "%s: array %d has shape %s but array 0 has %s: all must have the same number of dimensions", name, i, formatShape(a.shape), formatShape(first.shape))
		}
		for d := range a.shape {
			if d != ax && a.shape[d] != first.shape[d] {
				return nil, errorf(ErrShape, "%s: array %d has shape %s but array 0 has %s: sizes must match except along axis %d", name, i, formatShape(a.shape), formatShape(first.shape), ax)
			}
		}
		if shape[ax] > maxElements-a.shape[ax] {
			return nil, errorf(ErrShape, "%s: result is too large", name)
		}
		shape[ax] += a.shape[ax]
		dt = promote(dt, a.dtype)
	}
	out, err := e.alloc(name, dt, shape)
	if err != nil {
		return nil, err
	}
	ins := make([]*Array, len(arrays))
	for i, a := range arrays {
		c, done, err := e.converted(ctx, name, a, dt)
		if err != nil {
			out.Free()
			return nil, err
		}
		defer done()
		ins[i] = c
	}
	if err := e.run(ctx, name, Op{Kind: OpConcat, In: ins, Out: out, Axis: ax}); err != nil {
		out.Free()
		return nil, err
	}
	return out, nil
}

// Stack joins arrays of one shape along a new axis, which has index axis in
// the result (negative counts from the end of the result's axes).
func (e *Exec) Stack(ctx context.Context, arrays []*Array, axis int) (*Array, error) {
	if len(arrays) == 0 {
		return nil, errorf(ErrArgument, "stack: need at least one array")
	}
	if err := e.checkOperands("stack", arrays...); err != nil {
		return nil, err
	}
	first := arrays[0].shape
	ax, err := normAxis("stack", axis, len(first)+1)
	if err != nil {
		return nil, err
	}
	views := make([]*Array, len(arrays))
	for i, a := range arrays {
		if !slices.Equal(a.shape, first) {
			return nil, errorf(ErrShape, "stack: array %d has shape %s but array 0 has %s: all input arrays must have the same shape", i, formatShape(a.shape), formatShape(first))
		}
		s := append(cloneInts(a.shape[:ax]), 1)
		views[i], _ = reshapeView(a, append(s, a.shape[ax:]...)) // inserting an axis always fits
	}
	return e.concat(ctx, "stack", views, ax)
}

// CopyInto writes src's elements into dst, which must be writable: src
// broadcasts to dst's shape (a number as a 0-d array fills dst) and is
// converted to dst's dtype. dst may be a view; it may overlap src.
func (e *Exec) CopyInto(ctx context.Context, dst, src *Array) error {
	if err := e.checkOperands("copyto", dst, src); err != nil {
		return err
	}
	if err := dst.writable("copyto"); err != nil {
		return err
	}
	var buf [8]int
	shape, err := broadcastShapesBuf(buf[:0], "copyto", dst.shape, src.shape)
	if err != nil || !slices.Equal(shape, dst.shape) {
		return errorf(ErrShape, "copyto: a value of shape %s cannot be written into an array of shape %s: its axes, counted from the last, must be equal to the target's or 1", formatShape(src.shape), formatShape(dst.shape))
	}
	sc, done, err := e.converted(ctx, "copyto", src, dst.dtype)
	if err != nil {
		return err
	}
	defer done()
	// Read sc with stride 0 along the axes it is broadcast over.
	strides := make([]int, len(dst.shape))
	sst := sc.Strides()
	lead := len(dst.shape) - len(sc.shape)
	for i, d := range sc.shape {
		if d != 1 || dst.shape[lead+i] == 1 {
			strides[lead+i] = sst[i]
		}
	}
	gather := func(out *Array) error {
		return e.run(ctx, "copyto", Op{Kind: OpGather, In: []*Array{whole(sc)}, Out: out, Offset: sc.off, Strides: strides})
	}
	if e.fitting(dst) && !(dst.st == sc.st && overlaps(dst, sc)) {
		return gather(dst)
	}
	tmp, err := e.alloc("copyto", dst.dtype, dst.shape)
	if err != nil {
		return err
	}
	defer tmp.release()
	if err := gather(tmp); err != nil {
		return err
	}
	return e.writeInto(ctx, dst, tmp)
}

// Copy returns a new array with a's shape, dtype and elements.
func (e *Exec) Copy(ctx context.Context, a *Array) (*Array, error) {
	if err := e.checkOperands("copy", a); err != nil {
		return nil, err
	}
	return e.AsType(ctx, a, a.dtype)
}

// AsType returns a copy of a converted to dtype dt (float64 to float32
// rounds to nearest).
func (e *Exec) AsType(ctx context.Context, a *Array, dt DType) (*Array, error) {
	if err := e.checkOperands("astype", a); err != nil {
		return nil, err
	}
	if a.dtype == dt && a.strides != nil {
		return e.contiguousCopy(ctx, "astype", a) // one strided pass
	}
	out, err := e.alloc("astype", dt, a.shape)
	if err != nil {
		return nil, err
	}
	if err := e.run(ctx, "astype", Op{Kind: OpConvert, In: []*Array{a}, Out: out}); err != nil {
		out.Free()
		return nil, err
	}
	return out, nil
}

// ToDevice returns a copy of a on this Exec's device, charged to its budget;
// a may live on any device. It is how data moves between host and GPU.
func (e *Exec) ToDevice(ctx context.Context, a *Array) (*Array, error) {
	if err := a.live("to_device"); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, wrapCtx("to_device", err)
	}
	out, err := e.alloc("to_device", a.dtype, a.shape)
	if err != nil {
		return nil, err
	}
	n := a.Size()
	if a.dtype == Float64 {
		var data []float64
		if data, err = a.Float64s(); err == nil {
			err = out.st.buffer().Write(data[:n], 0)
		}
	} else {
		var data []float32
		if data, err = a.Float32s(); err == nil {
			err = out.st.buffer().Write(data[:n], 0)
		}
	}
	if err != nil {
		out.Free()
		return nil, errorf(ErrDevice, "to_device: copying %s from %s to %s: %v", formatShape(a.shape), a.Device().Name(), e.dev.Name(), err)
	}
	return out, nil
}
