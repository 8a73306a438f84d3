package accel

import "runtime"

// Array is a dense, row-major N-d array of float64 or float32 elements that
// lives on a Device. Arrays are made and combined by an Exec, which charges
// their storage to its Budget. Operations never modify their operands, except
// the explicitly in-place ones (Axpy, Triad and the Into variants).
//
// An Array is safe to read from several goroutines; writing one (an in-place
// operation) while others read it is a data race, as with a slice.
type Array struct {
	shape []int
	dtype DType
	st    *storage
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

// Device returns the device holding the array's data (nil for a zero Array).
func (a *Array) Device() Device {
	if a.st == nil {
		return nil
	}
	return a.st.buf.Device()
}

// Buffer returns the device buffer holding the array's elements (shared
// with reshaped views). Device backends use it; callers rarely need it.
func (a *Array) Buffer() Buffer {
	if a.st == nil {
		return nil
	}
	return a.st.buf
}

// Nbytes returns the bytes of element storage the array's buffer holds.
func (a *Array) Nbytes() int64 {
	if a.st == nil {
		return 0
	}
	return a.st.bytes
}

// Free releases the array's storage now and returns its bytes to the budget.
// Arrays that share the storage (Reshape results) become unusable too: any
// later operation on them fails with an error wrapping ErrFreed. Freeing
// twice is harmless.
func (a *Array) Free() {
	if a != nil && a.st != nil {
		a.st.free()
	}
}

// Freed reports whether the array's storage was released: by Free on it or
// on an array sharing its storage, or by Close of the Exec that made it.
func (a *Array) Freed() bool { return a.st == nil || a.st.isFreed() }

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

// host returns the array's host buffer, or nil when it lives on a device.
func (a *Array) host() *hostBuffer {
	hb, _ := a.st.buf.(*hostBuffer)
	return hb
}

// Float64s copies the elements, in row-major order, into a new []float64
// (converting float32 elements), reading them back from the device if needed.
func (a *Array) Float64s() ([]float64, error) {
	if err := a.live("Float64s"); err != nil {
		return nil, err
	}
	n := a.Size()
	if hb := a.host(); hb != nil {
		if a.dtype == Float64 {
			return append([]float64(nil), hb.f64[:n]...), nil
		}
		out := make([]float64, n)
		for i, v := range hb.f32[:n] {
			out[i] = float64(v)
		}
		return out, nil
	}
	return readAs[float64](a, 0, n)
}

// Float32s copies the elements, in row-major order, into a new []float32,
// rounding float64 elements to the nearest float32.
func (a *Array) Float32s() ([]float32, error) {
	if err := a.live("Float32s"); err != nil {
		return nil, err
	}
	n := a.Size()
	if hb := a.host(); hb != nil {
		if a.dtype == Float32 {
			return append([]float32(nil), hb.f32[:n]...), nil
		}
		out := make([]float32, n)
		for i, v := range hb.f64[:n] {
			out[i] = float32(v)
		}
		return out, nil
	}
	return readAs[float32](a, 0, n)
}

// readAs reads n elements from offset of a device array as T. It keeps a
// reachable until the read is done: otherwise the collector may run the
// storage's cleanup, which frees the device buffer, during the read.
func readAs[T float](a *Array, offset, n int) ([]T, error) {
	defer runtime.KeepAlive(a)
	out := make([]T, n)
	if a.dtype == Float64 {
		tmp := make([]float64, n)
		if err := a.st.buf.Read(tmp, offset); err != nil {
			return nil, err
		}
		for i, v := range tmp {
			out[i] = T(v)
		}
		return out, nil
	}
	tmp := make([]float32, n)
	if err := a.st.buf.Read(tmp, offset); err != nil {
		return nil, err
	}
	for i, v := range tmp {
		out[i] = T(v)
	}
	return out, nil
}

// Float64View returns the float64 array's own element slice without copying:
// writes through it change the array. It fails for float32 arrays and for
// arrays not in host memory.
func (a *Array) Float64View() ([]float64, error) {
	if err := a.live("Float64View"); err != nil {
		return nil, err
	}
	hb := a.host()
	if hb == nil {
		return nil, errorf(ErrDevice, "Float64View: array lives on device %s, not in host memory: use Float64s to copy it back", a.Device().Name())
	}
	if a.dtype != Float64 {
		return nil, errorf(ErrDType, "Float64View: array has dtype %s, not float64", a.dtype)
	}
	return hb.f64[:a.Size():a.Size()], nil
}

// Float32View is Float64View for float32 arrays.
func (a *Array) Float32View() ([]float32, error) {
	if err := a.live("Float32View"); err != nil {
		return nil, err
	}
	hb := a.host()
	if hb == nil {
		return nil, errorf(ErrDevice, "Float32View: array lives on device %s, not in host memory: use Float32s to copy it back", a.Device().Name())
	}
	if a.dtype != Float32 {
		return nil, errorf(ErrDType, "Float32View: array has dtype %s, not float32", a.dtype)
	}
	return hb.f32[:a.Size():a.Size()], nil
}

// flatIndex validates a full index (negative values count from the end) and
// returns the row-major element offset.
func (a *Array) flatIndex(op string, idx []int) (int, error) {
	if len(idx) != len(a.shape) {
		return 0, errorf(ErrIndex, "%s: got %d indices for an array of dimension %d (shape %s)", op, len(idx), len(a.shape), formatShape(a.shape))
	}
	off := 0
	for d, i := range idx {
		n := a.shape[d]
		if i < -n || i >= n {
			return 0, errorf(ErrIndex, "%s: index %d is out of bounds for axis %d with size %d", op, i, d, n)
		}
		if i < 0 {
			i += n
		}
		off = off*n + i
	}
	return off, nil
}

// At returns the element at the given index, one per axis; negative indices
// count from the end.
func (a *Array) At(idx ...int) (float64, error) {
	if err := a.live("At"); err != nil {
		return 0, err
	}
	off, err := a.flatIndex("At", idx)
	if err != nil {
		return 0, err
	}
	return a.elem(off)
}

func (a *Array) elem(off int) (float64, error) {
	if hb := a.host(); hb != nil {
		if a.dtype == Float64 {
			return hb.f64[off], nil
		}
		return float64(hb.f32[off]), nil
	}
	v, err := readAs[float64](a, off, 1)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// Item returns the only element of a one-element array (any shape).
func (a *Array) Item() (float64, error) {
	if err := a.live("Item"); err != nil {
		return 0, err
	}
	if n := a.Size(); n != 1 {
		return 0, errorf(ErrShape, "Item: array of shape %s has %d elements: only a one-element array converts to a number", formatShape(a.shape), n)
	}
	return a.elem(0)
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
