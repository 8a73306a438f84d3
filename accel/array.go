package accel

import "runtime"

// Array is a dense N-d array of float64 or float32 elements that lives on a
// Device. Arrays are made and combined by an Exec, which charges their
// storage to its Budget. Operations never modify their operands, except
// the explicitly in-place ones (Axpy, Triad, CopyInto, SetAt and the Into
// variants).
//
// An array may be a view: Reshape, Slice, Index and Transpose return arrays
// that share their operand's storage (no copy, no budget charge), described
// by an element offset and per-axis strides, as in NumPy. A write through
// one view is seen by every array on the same storage; Copy makes an
// independent array. Every operation accepts views; devices that need
// contiguous operands get contiguous copies made for them.
//
// An Array is safe to read from several goroutines; writing one (an in-place
// operation) while others read it is a data race, as with a slice.
type Array struct {
	shape []int
	// strides are the element strides of each axis; nil means C order
	// (row-major and contiguous).
	strides []int
	off     int // element offset of the first element in the buffer
	dtype   DType
	st      *storage
	dims    [2]int // room for a small shape, so a new array is one allocation
}

// newArray returns an array over st with a copy of shape, contiguous from
// offset off.
func newArray(st *storage, dt DType, shape []int, off int) *Array {
	a := &Array{dtype: dt, st: st, off: off}
	a.setShape(shape)
	return a
}

// setShape gives a a copy of shape, in a.dims when it fits.
func (a *Array) setShape(shape []int) {
	if len(shape) <= len(a.dims) {
		a.shape = a.dims[:len(shape):len(shape)]
		copy(a.shape, shape)
	} else {
		a.shape = cloneInts(shape)
	}
}

// Shape returns a copy of the array's dimensions; a 0-d (scalar) array has
// an empty shape.
func (a *Array) Shape() []int { return cloneInts(a.shape) }

// NDim returns the number of axes.
func (a *Array) NDim() int { return len(a.shape) }

// Size returns the number of elements.
func (a *Array) Size() int { return shapeSize(a.shape) }

// Len returns the length of the first axis, or 0 for a 0-d array.
func (a *Array) Len() int {
	if len(a.shape) == 0 {
		return 0
	}
	return a.shape[0]
}

// DType returns the element type.
func (a *Array) DType() DType { return a.dtype }

// Offset returns the position in the Buffer of the array's first element
// (0 unless the array is a view into part of another).
func (a *Array) Offset() int { return a.off }

// Strides returns the element stride of each axis: how far apart in the
// Buffer two neighbours along the axis are. A C-ordered array has
// row-major strides ((4,1) for shape (3,4)); a transposed view has them
// reversed.
func (a *Array) Strides() []int {
	if a.strides == nil {
		return rowStrides(a.shape)
	}
	return cloneInts(a.strides)
}

// Contiguous reports whether the elements lie in the Buffer in row-major
// order without gaps, from Offset on. Views made by Reshape, Index and
// step-1 slices of the first axis are; transposes and strided slices
// usually are not.
func (a *Array) Contiguous() bool { return a.strides == nil }

// plain reports whether the array is contiguous from the buffer's start:
// what a device operation may assume of its operands.
func (a *Array) plain() bool { return a.strides == nil && a.off == 0 }

// Device returns the device holding the array's data (nil for a zero Array).
func (a *Array) Device() Device {
	if a.st == nil {
		return nil
	}
	return a.st.buffer().Device()
}

// Buffer returns the device buffer holding the array's elements (shared
// with views). Device backends use it; callers rarely need it.
func (a *Array) Buffer() Buffer {
	if a.st == nil {
		return nil
	}
	return a.st.buffer()
}

// Nbytes returns the bytes the array's elements occupy (Size times the
// dtype's size), as NumPy's nbytes; a view reports its own elements, not
// the storage it shares.
func (a *Array) Nbytes() int64 { return int64(a.Size()) * int64(a.dtype.Size()) }

// Free releases the array's storage now and returns its bytes to the budget.
// Arrays that share the storage (views) become unusable too: any later
// operation on them fails with an error wrapping ErrFreed. Freeing twice is
// harmless. A host buffer is reused for new arrays only once no array
// refers to it any more.
func (a *Array) Free() {
	if a != nil && a.st != nil {
		a.st.free()
	}
}

// release frees a temporary the Exec made and never handed out, recycling
// its buffer at once.
func (a *Array) release() {
	if a != nil && a.st != nil {
		a.st.recycle()
	}
}

// Freed reports whether the array's storage was released: by Free on it or
// on an array sharing its storage, or by Close of the Exec that made it.
func (a *Array) Freed() bool { return a.st == nil || a.st.isFreed() }

// SetReadOnly makes the array's storage read-only, for this array and every
// view sharing it: in-place operations on them fail with an error wrapping
// ErrReadOnly from then on. It cannot be undone; Copy gives a writable
// array. The builtins call it when Starlark freezes an array.
func (a *Array) SetReadOnly() {
	if a != nil && a.st != nil {
		a.st.readOnly.Store(true)
	}
}

// ReadOnly reports whether SetReadOnly was called on this array or on one
// sharing its storage.
func (a *Array) ReadOnly() bool { return a != nil && a.st != nil && a.st.readOnly.Load() }

func (a *Array) live(op string) error {
	if a == nil {
		return errorf(ErrArgument, "%s: array is nil", op)
	}
	if a.st == nil {
		return errorf(ErrArgument, "%s: array was not made by an Exec (zero Array value)", op)
	}
	if a.st.isFreed() {
		return errorf(ErrFreed, "%s: array of shape %s was freed", op, formatShape(a.shape))
	}
	return nil
}

// writable checks that an in-place operation may write a.
func (a *Array) writable(op string) error {
	if err := a.live(op); err != nil {
		return err
	}
	if a.st.readOnly.Load() {
		return errorf(ErrReadOnly, "%s: the array of shape %s is read-only (frozen, or a view of a frozen array): write into a copy", op, formatShape(a.shape))
	}
	return nil
}

// host returns the array's host buffer, or nil when it lives on a device.
func (a *Array) host() *hostBuffer {
	if a.st.dev == nil {
		return &a.st.host
	}
	hb, _ := a.st.dev.(*hostBuffer) // a foreign host buffer (Device.Alloc)
	return hb
}

// span returns the lowest and one past the highest buffer position the
// array's elements occupy (lo == hi for an empty array).
func (a *Array) span() (lo, hi int) {
	if a.Size() == 0 {
		return a.off, a.off
	}
	if a.strides == nil {
		return a.off, a.off + a.Size()
	}
	lo, hi = a.off, a.off
	for d, n := range a.shape {
		if s := a.strides[d] * (n - 1); s < 0 {
			lo += s
		} else {
			hi += s
		}
	}
	return lo, hi + 1
}

// Float64s copies the elements, in row-major order, into a new []float64
// (converting float32 elements), reading them back from the device if needed.
func (a *Array) Float64s() ([]float64, error) {
	if err := a.live("Float64s"); err != nil {
		return nil, err
	}
	return elements[float64](a)
}

// Float32s copies the elements, in row-major order, into a new []float32,
// rounding float64 elements to the nearest float32.
func (a *Array) Float32s() ([]float32, error) {
	if err := a.live("Float32s"); err != nil {
		return nil, err
	}
	return elements[float32](a)
}

// elements copies a's elements in row-major order as []T. It keeps a
// reachable until the read is done: otherwise the collector may release
// its storage, and free the device buffer, during the read.
func elements[T float](a *Array) ([]T, error) {
	defer runtime.KeepAlive(a)
	n := a.Size()
	out := make([]T, n)
	if n == 0 {
		return out, nil
	}
	if hb := a.host(); hb != nil {
		if a.dtype == Float64 {
			gatherConvert(out, hb.f64, a.off, a.shape, a.strides)
		} else {
			gatherConvert(out, hb.f32, a.off, a.shape, a.strides)
		}
		return out, nil
	}
	lo, hi := a.span()
	if a.dtype == Float64 {
		tmp := make([]float64, hi-lo)
		if err := a.st.buffer().Read(tmp, lo); err != nil {
			return nil, err
		}
		gatherConvert(out, tmp, a.off-lo, a.shape, a.strides)
		return out, nil
	}
	tmp := make([]float32, hi-lo)
	if err := a.st.buffer().Read(tmp, lo); err != nil {
		return nil, err
	}
	gatherConvert(out, tmp, a.off-lo, a.shape, a.strides)
	return out, nil
}

// gatherConvert copies the elements of the view (off, shape, strides; nil
// strides: contiguous) of src into dst in row-major order, converting.
func gatherConvert[D, S float](dst []D, src []S, off int, shape, strides []int) {
	if strides == nil {
		convertInto(dst, src[off:off+len(dst)])
		return
	}
	sh, st := coalesce(shape, rowStrides(shape), strides)
	nd := len(sh)
	inner, si := sh[nd-1], st[1][nd-1]
	idx := make([]int, nd-1)
	for r := 0; r < len(dst); r += inner {
		p := off
		for d, i := range idx {
			p += i * st[1][d]
		}
		row := dst[r : r+inner]
		for j := range row {
			row[j] = D(src[p+j*si])
		}
		increment(idx, sh[:nd-1])
	}
}

// Float64View returns the float64 array's own element slice without copying:
// writes through it change the array. It fails for float32 arrays, for
// arrays not in host memory and for views that are not contiguous. The
// slice keeps its memory alive; the array's buffer is then never recycled
// for another array.
func (a *Array) Float64View() ([]float64, error) {
	if err := a.checkView("Float64View", Float64); err != nil {
		return nil, err
	}
	a.st.escape()
	n := a.Size()
	return a.host().f64[a.off : a.off+n : a.off+n], nil
}

// Float32View is Float64View for float32 arrays.
func (a *Array) Float32View() ([]float32, error) {
	if err := a.checkView("Float32View", Float32); err != nil {
		return nil, err
	}
	a.st.escape()
	n := a.Size()
	return a.host().f32[a.off : a.off+n : a.off+n], nil
}

func (a *Array) checkView(op string, dt DType) error {
	if err := a.live(op); err != nil {
		return err
	}
	if a.host() == nil {
		return errorf(ErrDevice, "%s: array lives on device %s, not in host memory: use Float64s to copy it back", op, a.Device().Name())
	}
	if a.dtype != dt {
		return errorf(ErrDType, "%s: array has dtype %s, not %s", op, a.dtype, dt)
	}
	if a.strides != nil {
		return errorf(ErrArgument, "%s: the array of shape %s is a strided view, not contiguous: use Copy first", op, formatShape(a.shape))
	}
	return nil
}

// position validates a full index (negative values count from the end) and
// returns the element's position in the buffer.
func (a *Array) position(op string, idx []int) (int, error) {
	if len(idx) != len(a.shape) {
		return 0, errorf(ErrIndex, "%s: got %d indices for an array of dimension %d (shape %s)", op, len(idx), len(a.shape), formatShape(a.shape))
	}
	p, flat := a.off, 0
	for d, i := range idx {
		n := a.shape[d]
		if i < -n || i >= n {
			return 0, errorf(ErrIndex, "%s: index %d is out of bounds for axis %d with size %d", op, i, d, n)
		}
		if i < 0 {
			i += n
		}
		if a.strides != nil {
			p += i * a.strides[d]
		}
		flat = flat*n + i
	}
	if a.strides == nil {
		p += flat
	}
	return p, nil
}

// At returns the element at the given index, one per axis; negative indices
// count from the end.
func (a *Array) At(idx ...int) (float64, error) {
	if err := a.live("At"); err != nil {
		return 0, err
	}
	p, err := a.position("At", idx)
	if err != nil {
		return 0, err
	}
	return a.elemAt(p)
}

// elemAt reads the element at buffer position p.
func (a *Array) elemAt(p int) (float64, error) {
	if hb := a.host(); hb != nil {
		if a.dtype == Float64 {
			return hb.f64[p], nil
		}
		return float64(hb.f32[p]), nil
	}
	if a.dtype == Float64 {
		v := make([]float64, 1)
		err := a.st.buffer().Read(v, p)
		return v[0], err
	}
	v := make([]float32, 1)
	err := a.st.buffer().Read(v, p)
	return float64(v[0]), err
}

// SetAt writes v (rounded to the dtype) at the given index, one per axis;
// negative indices count from the end. The array must be writable.
func (a *Array) SetAt(v float64, idx ...int) error {
	if err := a.writable("SetAt"); err != nil {
		return err
	}
	p, err := a.position("SetAt", idx)
	if err != nil {
		return err
	}
	if hb := a.host(); hb != nil {
		if a.dtype == Float64 {
			hb.f64[p] = v
		} else {
			hb.f32[p] = float32(v)
		}
		return nil
	}
	if a.dtype == Float64 {
		return a.st.buffer().Write([]float64{v}, p)
	}
	return a.st.buffer().Write([]float32{float32(v)}, p)
}

// Item returns the only element of a one-element array (any shape).
func (a *Array) Item() (float64, error) {
	if err := a.live("Item"); err != nil {
		return 0, err
	}
	if n := a.Size(); n != 1 {
		return 0, errorf(ErrShape, "Item: array of shape %s has %d elements: only a one-element array converts to a number", formatShape(a.shape), n)
	}
	return a.elemAt(a.off)
}

// ToList returns the elements as nested []any of float64, one level per axis,
// like NumPy's tolist; a 0-d array gives a bare float64.
func (a *Array) ToList() (any, error) {
	data, err := a.Float64s()
	if err != nil {
		return nil, err
	}
	if len(a.shape) == 0 {
		return data[0], nil
	}
	var build func(d, off int) []any
	build = func(d, off int) []any {
		n := a.shape[d]
		out := make([]any, n)
		if d == len(a.shape)-1 {
			for i := range n {
				out[i] = data[off+i]
			}
			return out
		}
		step := shapeSize(a.shape[d+1:])
		for i := range n {
			out[i] = build(d+1, off+i*step)
		}
		return out
	}
	return build(0, 0), nil
}
