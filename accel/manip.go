package accel

import (
	"context"
	"math"
)

// Reshape returns an array with the same elements in row-major order and a
// new shape, sharing a's storage (no copy, no budget charge). One dimension
// may be -1, meaning whatever makes the sizes match.
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
	return a.view(out), nil
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

// Slice returns a copy of the part of a that ranges select, one Range per
// leading axis (axes without one are taken whole).
func (e *Exec) Slice(ctx context.Context, a *Array, ranges ...Range) (*Array, error) {
	if err := e.checkOperands("slice", a); err != nil {
		return nil, err
	}
	if len(ranges) > len(a.shape) {
		return nil, errorf(ErrIndex, "slice: %d ranges for an array of dimension %d (shape %s)", len(ranges), len(a.shape), formatShape(a.shape))
	}
	src := rowStrides(a.shape)
	shape := cloneInts(a.shape)
	strides := cloneInts(src)
	offset := 0
	for d, r := range ranges {
		if r.Step == 0 {
			return nil, errorf(ErrArgument, "slice: step is zero at axis %d: a step must be a non-zero integer", d)
		}
		start, step, count := r.resolve(a.shape[d])
		shape[d], strides[d] = count, 0
		if count > 1 { // then |step| < shape[d], so this cannot overflow
			strides[d] = step * src[d]
		}
		if count > 0 {
			offset += start * src[d]
		}
	}
	return e.gather(ctx, "slice", a, shape, offset, strides)
}

// Index returns a copy of the sub-array at integer indices on the leading
// axes (negative counts from the end): for a of shape (3,4,5), Index(a, 1)
// has shape (4,5) and Index(a, 1, 2, 3) is a 0-d array (read it with Item).
func (e *Exec) Index(ctx context.Context, a *Array, idx ...int) (*Array, error) {
	if err := e.checkOperands("index", a); err != nil {
		return nil, err
	}
	if len(idx) > len(a.shape) {
		return nil, errorf(ErrIndex, "index: too many indices for array: array is %d-dimensional (shape %s), but %d were given", len(a.shape), formatShape(a.shape), len(idx))
	}
	src := rowStrides(a.shape)
	offset := 0
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
	return e.gather(ctx, "index", a, a.shape[rest:], offset, src[rest:])
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
		if !sameShape(a.shape, first) {
			return nil, errorf(ErrShape, "stack: array %d has shape %s but array 0 has %s: all input arrays must have the same shape", i, formatShape(a.shape), formatShape(first))
		}
		s := append(cloneInts(a.shape[:ax]), 1)
		views[i] = a.view(append(s, a.shape[ax:]...))
	}
	return e.concat(ctx, "stack", views, ax)
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
			err = out.st.buf.Write(data[:n], 0)
		}
	} else {
		var data []float32
		if data, err = a.Float32s(); err == nil {
			err = out.st.buf.Write(data[:n], 0)
		}
	}
	if err != nil {
		out.Free()
		return nil, errorf(ErrDevice, "to_device: copying %s from %s to %s: %v", formatShape(a.shape), a.Device().Name(), e.dev.Name(), err)
	}
	return out, nil
}
