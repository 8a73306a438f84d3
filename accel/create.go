package accel

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
)

// FromFloat64s returns a float64 array of the given shape holding a copy of
// data, which lists the elements in row-major order.
func (e *Exec) FromFloat64s(data []float64, shape ...int) (*Array, error) {
	return fromSlice(e, Float64, data, shape)
}

// FromFloat32s returns a float32 array of the given shape holding a copy of
// data, which lists the elements in row-major order.
func (e *Exec) FromFloat32s(data []float32, shape ...int) (*Array, error) {
	return fromSlice(e, Float32, data, shape)
}

func fromSlice[T float](e *Exec, dt DType, data []T, shape []int) (*Array, error) {
	a, err := e.fromFlat("array", dt, len(data), shape)
	if err != nil {
		return nil, err
	}
	if err := copyIn(e, "array", a, data); err != nil {
		return nil, err
	}
	return a, nil
}

func (e *Exec) fromFlat(op string, dt DType, n int, shape []int) (*Array, error) {
	size, err := checkShape(op, shape)
	if err != nil {
		return nil, err
	}
	if size != n {
		return nil, errorf(ErrShape, "%s: %d values do not fill shape %s, which holds %d", op, n, formatShape(shape), size)
	}
	return e.alloc(op, dt, shape)
}

// copyIn writes host data (of either float type) into the new array a. If
// the device refuses, it frees a and returns an ErrDevice error for op.
func copyIn[T float](e *Exec, op string, a *Array, data []T) error {
	var err error
	switch hb := a.host(); {
	case hb != nil && a.dtype == Float64:
		convertInto(hb.f64, data)
	case hb != nil:
		convertInto(hb.f32, data)
	case a.dtype == Float64:
		tmp := make([]float64, len(data))
		convertInto(tmp, data)
		err = a.st.buffer().Write(tmp, 0)
	default:
		tmp := make([]float32, len(data))
		convertInto(tmp, data)
		err = a.st.buffer().Write(tmp, 0)
	}
	if err != nil {
		a.Free()
		return errorf(ErrDevice, "%s: writing to %s: %v", op, e.dev.Name(), err)
	}
	return nil
}

// convertInto sets dst[i] to src[i] converted, for every i of src.
func convertInto[D, S float](dst []D, src []S) {
	for i, v := range src {
		dst[i] = D(v)
	}
}

// fill allocates an array and sets element i to f(i), in row-major order.
func (e *Exec) fill(op string, dt DType, shape []int, f func(i int) float64) (*Array, error) {
	a, err := e.alloc(op, dt, shape)
	if err != nil {
		return nil, err
	}
	n := a.Size()
	if hb := a.host(); hb != nil {
		for i := range hb.f64 {
			hb.f64[i] = f(i)
		}
		for i := range hb.f32 {
			hb.f32[i] = float32(f(i))
		}
		return a, nil
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = f(i)
	}
	if err := copyIn(e, op, a, data); err != nil {
		return nil, err
	}
	return a, nil
}

// maxNesting bounds the depth of FromNested's input, which also stops a list
// that contains itself.
const maxNesting = 64

// FromNested returns an array from nested Go values: a number (float64,
// float32, any integer type or bool) gives a 0-d array, and slices or arrays
// of them ([]float64, [][]float32, []any holding numbers or further slices,
// …) give one axis per level. Nesting must be regular: every list at one
// level has the same length.
func (e *Exec) FromNested(data any, dt DType) (*Array, error) {
	if !dt.valid() {
		return nil, errorf(ErrDType, "array: invalid dtype %d: allowed are float64 and float32", dt)
	}
	if data == nil {
		return nil, errorf(ErrArgument, "array: data is nil: give a number or a list of numbers")
	}
	deref := func(v reflect.Value) (reflect.Value, bool) {
		for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return v, false
			}
			v = v.Elem()
		}
		return v, true
	}
	isList := func(v reflect.Value) bool { return v.Kind() == reflect.Slice || v.Kind() == reflect.Array }
	// The first element at each depth sets the shape; the walk then checks
	// that every list agrees with it.
	var shape []int
	for v, ok := deref(reflect.ValueOf(data)); ok && isList(v); {
		if len(shape) == maxNesting {
			return nil, errorf(ErrShape, "array: data is nested more than %d deep", maxNesting)
		}
		shape = append(shape, v.Len())
		if v.Len() == 0 {
			break
		}
		v, ok = deref(v.Index(0))
	}
	flat := make([]float64, 0, shapeSize(shape))
	var walk func(v reflect.Value, path []int) error
	walk = func(v reflect.Value, path []int) error {
		v, ok := deref(v)
		depth := len(path)
		if !ok {
			return errorf(ErrArgument, "array: nil at %s: elements must be numbers or lists", formatPath(path))
		}
		if isList(v) {
			if depth >= len(shape) {
				return errorf(ErrShape, "array: ragged nesting at %s: found a list where a number was expected", formatPath(path))
			}
			if v.Len() != shape[depth] {
				return errorf(ErrShape, "array: ragged nesting at %s: length %d, but the first list at this depth has length %d", formatPath(path), v.Len(), shape[depth])
			}
			for i := range v.Len() {
				if err := walk(v.Index(i), append(path, i)); err != nil {
					return err
				}
			}
			return nil
		}
		var x float64
		switch v.Kind() {
		case reflect.Float32, reflect.Float64:
			x = v.Float()
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			x = float64(v.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			x = float64(v.Uint())
		case reflect.Bool:
			if v.Bool() {
				x = 1
			}
		default:
			return errorf(ErrArgument, "array: element at %s is a %s: elements must be numbers", formatPath(path), v.Type())
		}
		if depth != len(shape) {
			return errorf(ErrShape, "array: ragged nesting at %s: found a number where a list of length %d was expected", formatPath(path), shape[depth])
		}
		flat = append(flat, x)
		return nil
	}
	if err := walk(reflect.ValueOf(data), nil); err != nil {
		return nil, err
	}
	a, err := e.alloc("array", dt, shape)
	if err != nil {
		return nil, err
	}
	if err := copyIn(e, "array", a, flat); err != nil {
		return nil, err
	}
	return a, nil
}

func formatPath(path []int) string {
	s := "data"
	for _, i := range path {
		s += "[" + strconv.Itoa(i) + "]"
	}
	return s
}

// Zeros returns an array of zeros.
func (e *Exec) Zeros(dt DType, shape ...int) (*Array, error) {
	return e.fill("zeros", dt, shape, func(int) float64 { return 0 })
}

// Ones returns an array of ones.
func (e *Exec) Ones(dt DType, shape ...int) (*Array, error) {
	return e.fill("ones", dt, shape, func(int) float64 { return 1 })
}

// Full returns an array with every element set to value.
func (e *Exec) Full(dt DType, value float64, shape ...int) (*Array, error) {
	return e.fill("full", dt, shape, func(int) float64 { return value })
}

// Scalar returns a 0-d array holding v.
func (e *Exec) Scalar(dt DType, v float64) (*Array, error) {
	return e.fill("scalar", dt, nil, func(int) float64 { return v })
}

// Arange returns the 1-D array start, start+step, … up to but excluding
// stop, like NumPy's arange: ceil((stop-start)/step) elements.
func (e *Exec) Arange(dt DType, start, stop, step float64) (*Array, error) {
	if step == 0 || math.IsNaN(step) || math.IsInf(step, 0) {
		return nil, errorf(ErrArgument, "arange: step %v is not allowed: use a finite, non-zero step", step)
	}
	if math.IsNaN(start) || math.IsNaN(stop) || math.IsInf(start, 0) || math.IsInf(stop, 0) {
		return nil, errorf(ErrArgument, "arange: bounds %v and %v must be finite numbers", start, stop)
	}
	count := math.Ceil((stop - start) / step)
	if count < 0 || math.IsNaN(count) {
		count = 0
	}
	if count > maxElements {
		return nil, errorf(ErrShape, "arange: %v..%v by %v has too many elements", start, stop, step)
	}
	return e.fill("arange", dt, []int{int(count)}, func(i int) float64 { return start + float64(i)*step })
}

// Linspace returns num evenly spaced numbers from start to stop, both
// included, like NumPy's linspace.
func (e *Exec) Linspace(dt DType, start, stop float64, num int) (*Array, error) {
	if num < 0 {
		return nil, errorf(ErrArgument, "linspace: num %d is negative: it must be >= 0", num)
	}
	if num == 1 {
		return e.Full(dt, start, 1)
	}
	step := (stop - start) / float64(num-1)
	return e.fill("linspace", dt, []int{num}, func(i int) float64 {
		if i == num-1 {
			return stop
		}
		return start + float64(i)*step
	})
}

// Eye returns a rows×cols matrix with ones on the main diagonal and zeros
// elsewhere.
func (e *Exec) Eye(dt DType, rows, cols int) (*Array, error) {
	return e.fill("eye", dt, []int{rows, cols}, func(i int) float64 {
		if i/cols == i%cols {
			return 1
		}
		return 0
	})
}

// Rand returns an array of uniform random numbers in [0, 1). The same seed
// always gives the same numbers.
func (e *Exec) Rand(dt DType, seed uint64, shape ...int) (*Array, error) {
	r := rand.New(rand.NewPCG(seed, 0x61636365_6c72616e)) // "accelran"
	if dt == Float32 {
		// Float32 draws directly: rounding a float64 draw could give 1.
		return e.fill("rand", dt, shape, func(int) float64 { return float64(r.Float32()) })
	}
	return e.fill("rand", dt, shape, func(int) float64 { return r.Float64() })
}

// Randn returns an array of standard normal random numbers (mean 0,
// variance 1). The same seed always gives the same numbers.
func (e *Exec) Randn(dt DType, seed uint64, shape ...int) (*Array, error) {
	r := rand.New(rand.NewPCG(seed, 0x61636365_6c6e726d)) // "accelnrm"
	return e.fill("randn", dt, shape, func(int) float64 { return r.NormFloat64() })
}
