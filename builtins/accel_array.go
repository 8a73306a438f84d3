package builtins

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync/atomic"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/autonode/autonode/accel"
)

// Array is the Starlark value of an accel array ("array" to type()). It
// supports + - * / with arrays and numbers (broadcasting as NumPy), unary
// - and +, len(), iteration over the first axis, a[i], a[i, j] (a float
// when every axis is indexed), a[lo:hi:step], the attributes shape, dtype,
// size, ndim, T, device and nbytes, and the methods listed in Docs.
//
// Operations never modify an array, except accel.axpy and accel.triad,
// which refuse frozen arrays: values shared between Starlark threads are
// frozen, so a shared array is never written. Operators and indexing run
// on the Exec (device, memory budget) and context of the array they start
// from, since Starlark passes them no thread; named functions and methods
// run on the calling thread's.
type Array struct {
	arr    *accel.Array
	ex     *accel.Exec
	ctx    context.Context
	m      *accelModule
	frozen atomic.Bool
	// err, when set, makes this a failed result: Index and Slice cannot
	// return an error, so they return such a value, and any use of it
	// reports the error.
	err error
}

var (
	_ starlark.HasAttrs  = (*Array)(nil)
	_ starlark.HasBinary = (*Array)(nil)
	_ starlark.HasUnary  = (*Array)(nil)
	_ starlark.Mapping   = (*Array)(nil)
	_ starlark.Sliceable = (*Array)(nil)
	_ starlark.Iterable  = (*Array)(nil)
	_ json.Marshaler     = (*Array)(nil)
)

// Accel returns the underlying accel array, or an error for a failed
// result. Embedders use it to hand arrays to Go kernels.
func (a *Array) Accel() (*accel.Array, error) {
	if a.err != nil {
		return nil, a.err
	}
	return a.arr, nil
}

// String prints the array like NumPy's repr.
func (a *Array) String() string {
	if a.err != nil {
		return "array(<error: " + a.err.Error() + ">)"
	}
	return a.arr.String()
}

// Type returns "array".
func (a *Array) Type() string { return "array" }

// Freeze marks the array immutable: accel.axpy and accel.triad refuse it.
func (a *Array) Freeze() { a.frozen.Store(true) }

// Truth is True for an array with at least one element.
func (a *Array) Truth() starlark.Bool { return a.err == nil && a.arr.Size() > 0 }

// Hash fails: arrays are not hashable.
func (a *Array) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: array") }

// Len is the length of the first axis (0 for a 0-d array).
func (a *Array) Len() int {
	if a.err != nil {
		return 0
	}
	return a.arr.Len()
}

// MarshalJSON encodes the elements as nested lists (json.encode).
func (a *Array) MarshalJSON() ([]byte, error) {
	if a.err != nil {
		return nil, a.err
	}
	l, err := a.arr.ToList()
	if err != nil {
		return nil, err
	}
	return json.Marshal(l)
}

// AttrNames lists the attributes and methods.
func (a *Array) AttrNames() []string {
	names := []string{"T", "device", "dtype", "nbytes", "ndim", "shape", "size"}
	for k := range arrayMethods {
		names = append(names, k)
	}
	return sortStrings(names)
}

// Attr returns an attribute or a bound method.
func (a *Array) Attr(name string) (starlark.Value, error) {
	if a.err != nil {
		return nil, a.err
	}
	switch name {
	case "shape":
		return shapeTuple(a.arr.Shape()), nil
	case "dtype":
		return starlark.String(a.arr.DType().String()), nil
	case "size":
		return starlark.MakeInt(a.arr.Size()), nil
	case "ndim":
		return starlark.MakeInt(a.arr.NDim()), nil
	case "nbytes":
		return starlark.MakeInt64(a.arr.Nbytes()), nil
	case "device":
		if d := a.arr.Device(); d != nil {
			return starlark.String(d.Name()), nil
		}
		return starlark.None, nil
	case "T":
		out, err := a.ex.Transpose(a.ctx, a.arr)
		if err != nil {
			return nil, fmt.Errorf("array.T: %w", err)
		}
		return a.m.wrap(a.ex, a.ctx, out), nil
	}
	impl, ok := arrayMethods[name]
	if !ok {
		return nil, nil
	}
	return newBuiltin("array."+name, func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return impl(a.m, a, th, fn, args, kwargs)
	}), nil
}

func shapeTuple(shape []int) starlark.Tuple {
	t := make(starlark.Tuple, len(shape))
	for i, d := range shape {
		t[i] = starlark.MakeInt(d)
	}
	return t
}

// Binary implements a+b, a-b, a*b and a/b with arrays, numbers and lists.
func (a *Array) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	var bop accel.BinaryOp
	switch op {
	case syntax.PLUS:
		bop = accel.OpAdd
	case syntax.MINUS:
		bop = accel.OpSub
	case syntax.STAR:
		bop = accel.OpMul
	case syntax.SLASH:
		bop = accel.OpDiv
	default:
		return nil, nil // not supported: Starlark reports the operator and types
	}
	if a.err != nil {
		return nil, a.err
	}
	name := "array " + op.String()
	var out *accel.Array
	var err error
	switch yv := y.(type) {
	case starlark.Int, starlark.Float:
		s, _ := starlark.AsFloat(yv)
		if side == starlark.Left {
			out, err = a.ex.BinaryScalar(a.ctx, bop, a.arr, s)
		} else {
			out, err = a.ex.ScalarBinary(a.ctx, bop, s, a.arr)
		}
	case *Array, *starlark.List, starlark.Tuple:
		var other *accel.Array
		var release func()
		other, release, err = a.m.toArray(name, "operand", a.ex, a.ctx, y)
		if err != nil {
			return nil, err
		}
		defer release()
		if side == starlark.Left {
			out, err = a.ex.Binary(a.ctx, bop, a.arr, other)
		} else {
			out, err = a.ex.Binary(a.ctx, bop, other, a.arr)
		}
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return a.m.wrap(a.ex, a.ctx, out), nil
}

// Unary implements -a and +a.
func (a *Array) Unary(op syntax.Token) (starlark.Value, error) {
	if a.err != nil {
		return nil, a.err
	}
	switch op {
	case syntax.PLUS:
		return a, nil
	case syntax.MINUS:
		out, err := a.ex.Neg(a.ctx, a.arr)
		if err != nil {
			return nil, fmt.Errorf("array unary -: %w", err)
		}
		return a.m.wrap(a.ex, a.ctx, out), nil
	}
	return nil, nil
}

// Get implements a[i] and a[i, j, ...]: an array, or a float when every
// axis is indexed.
func (a *Array) Get(k starlark.Value) (starlark.Value, bool, error) {
	if a.err != nil {
		return nil, false, a.err
	}
	var idx []int
	switch x := k.(type) {
	case starlark.Int:
		i, err := starlark.AsInt32(x)
		if err != nil {
			return nil, false, fmt.Errorf("array index: %v", err)
		}
		idx = []int{i}
	case starlark.Tuple:
		if len(x) == 0 {
			return a, true, nil
		}
		for j, e := range x {
			i, ok := e.(starlark.Int)
			if !ok {
				return nil, false, fmt.Errorf("array index: got %s (%s) at position %d, want an int (slice one axis with a[lo:hi])", repr(e), e.Type(), j)
			}
			n, err := starlark.AsInt32(i)
			if err != nil {
				return nil, false, fmt.Errorf("array index: %v", err)
			}
			idx = append(idx, n)
		}
	default:
		return nil, false, fmt.Errorf("array index: got %s (%s), want an int or a tuple of ints", repr(k), k.Type())
	}
	v, err := a.index(idx)
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (a *Array) index(idx []int) (starlark.Value, error) {
	if len(idx) == a.arr.NDim() {
		// One element: read it directly, without allocating (on an
		// error, Index below gives the better message).
		if f, err := a.arr.At(idx...); err == nil {
			return starlark.Float(f), nil
		}
	}
	out, err := a.ex.Index(a.ctx, a.arr, idx...)
	if err != nil {
		return nil, fmt.Errorf("array index: %w", err)
	}
	if out.NDim() == 0 {
		defer out.Free()
		f, err := out.Item()
		if err != nil {
			return nil, fmt.Errorf("array index: %w", err)
		}
		return starlark.Float(f), nil
	}
	return a.m.wrap(a.ex, a.ctx, out), nil
}

// Index returns a[i] for iteration; an error gives a failed result.
func (a *Array) Index(i int) starlark.Value {
	if a.err != nil {
		return a
	}
	v, err := a.index([]int{i})
	if err != nil {
		return &Array{m: a.m, err: err}
	}
	return v
}

// Slice implements a[start:end:step] along the first axis (Starlark has
// already clamped the bounds to the length); it copies.
func (a *Array) Slice(start, end, step int) starlark.Value {
	if a.err != nil {
		return a
	}
	if a.arr.NDim() == 0 {
		return &Array{m: a.m, err: fmt.Errorf("array slice: a 0-d array cannot be sliced")}
	}
	r := accel.Range{Start: start, Stop: end, Step: step}
	if step < 0 {
		// Starlark's -1 means "before the first element", not "the last".
		if start < 0 {
			r.Start = math.MinInt
		}
		if end < 0 {
			r.Stop = math.MinInt
		}
	}
	out, err := a.ex.Slice(a.ctx, a.arr, r)
	if err != nil {
		return &Array{m: a.m, err: fmt.Errorf("array slice: %w", err)}
	}
	return a.m.wrap(a.ex, a.ctx, out)
}

// Iterate iterates over the first axis: floats for a 1-D array, arrays
// otherwise.
func (a *Array) Iterate() starlark.Iterator {
	it := &arrayIter{a: a}
	if a.err == nil && a.arr.NDim() == 1 {
		// Read a vector once rather than element by element.
		if data, err := a.arr.Float64s(); err == nil {
			it.flat = data
		}
	}
	return it
}

type arrayIter struct {
	a    *Array
	flat []float64
	i    int
}

func (it *arrayIter) Next(p *starlark.Value) bool {
	if it.flat != nil {
		if it.i >= len(it.flat) {
			return false
		}
		*p = starlark.Float(it.flat[it.i])
		it.i++
		return true
	}
	if it.i >= it.a.Len() {
		return false
	}
	*p = it.a.Index(it.i)
	it.i++
	return true
}

func (it *arrayIter) Done() {}

// summary is FromStarlark's form of an array.
func (a *Array) summary() (any, error) {
	if a.err != nil {
		return nil, a.err
	}
	data, err := a.arr.Float64s()
	if err != nil {
		return nil, err
	}
	shape := make([]any, a.arr.NDim())
	for i, d := range a.arr.Shape() {
		shape[i] = int64(d)
	}
	finite := func(f float64) any {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return f
	}
	sum := 0.0
	for _, v := range data {
		sum += v
	}
	m := map[string]any{
		"shape": shape,
		"dtype": a.arr.DType().String(),
		"size":  int64(len(data)),
		"sum":   finite(sum),
		"mean":  nil,
	}
	if len(data) > 0 {
		m["mean"] = finite(sum / float64(len(data)))
	}
	if len(data) <= smallArray {
		l, err := a.arr.ToList()
		if err != nil {
			return nil, err
		}
		m["values"] = jsonSafe(l)
	}
	return m, nil
}

// jsonSafe replaces NaN and infinities in nested lists of float64 by nil.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case []any:
		for i, e := range x {
			x[i] = jsonSafe(e)
		}
	}
	return v
}
