package builtins

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/autonode/autonode/accel"
)

// Array is the Starlark value of an accel array ("array" to type()). It
// supports + - * / with arrays and numbers (broadcasting as NumPy), unary
// - and +, len(), iteration over the first axis, a[i], a[i, j] (a float
// when every axis is indexed), a[lo:hi:step], assignment a[i] = v and
// a[i, j] = v (so a[i] += v too), the attributes shape, dtype, size, ndim,
// T, device and nbytes, and the methods listed in Docs.
//
// Indexing, slicing, a.T and reshape give views: arrays sharing the
// original's elements, as in NumPy; a.copy() gives an independent array.
// Arrays change only through assignment, out= and the in-place functions
// (accel.axpy, accel.triad, accel.copyto, a.fill), which refuse frozen
// arrays and views of them: values shared between Starlark threads are
// frozen, so a shared array is never written. Operators and indexing run
// on the Exec (device, memory budget) and context of the array they start
// from, since Starlark passes them no thread; named functions and methods
// run on the calling thread's.
//
// No Go panic leaves these methods: one is reported as an error naming the
// operation ("array +: internal error: ..."), and counted by
// InternalErrors.
type Array struct {
	arr *accel.Array
	*arrayEnv
	// err, when set, makes this a failed result: Index and Slice cannot
	// return an error, so they return such a value, and any use of it
	// reports the error.
	err error
}

var (
	_ starlark.HasAttrs  = (*Array)(nil)
	_ starlark.HasBinary = (*Array)(nil)
	_ starlark.HasUnary  = (*Array)(nil)
	_ starlark.HasSetKey = (*Array)(nil)
	_ starlark.Sliceable = (*Array)(nil)
	_ starlark.Iterable  = (*Array)(nil)
	_ json.Marshaler     = (*Array)(nil)
)

// failed returns a failed result carrying err.
func (a *Array) failed(err error) *Array { return &Array{arrayEnv: a.arrayEnv, err: err} }

// arrayEnv is where an array's operators and indexing run: the Exec and
// context of the thread that made it. Arrays of one thread share one.
type arrayEnv struct {
	ex  *accel.Exec
	ctx context.Context
	m   *accelModule
}

// Accel returns the underlying accel array, or an error for a failed
// result. Embedders use it to hand arrays to Go kernels.
func (a *Array) Accel() (*accel.Array, error) {
	if a.err != nil {
		return nil, a.err
	}
	return a.arr, nil
}

// String prints the array like NumPy's repr.
func (a *Array) String() (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = "array(<" + Panicked("array repr", r).Error() + ">)"
		}
	}()
	if a.err != nil {
		return "array(<error: " + a.err.Error() + ">)"
	}
	return a.arr.String()
}

// Type returns "array".
func (a *Array) Type() string { return "array" }

// Freeze marks the array, and every array sharing its elements, read-only:
// assignment, out= and the in-place functions refuse it from then on.
func (a *Array) Freeze() {
	if a.arr != nil {
		a.arr.SetReadOnly() // kept by the storage, so that views see it too
	}
}

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
func (a *Array) MarshalJSON() (b []byte, err error) {
	defer recoverErr("json.encode of an array", &err)
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
	names := append([]string{"T", "device", "dtype", "nbytes", "ndim", "shape", "size"}, slices.Collect(maps.Keys(arrayMethods))...)
	slices.Sort(names)
	return names
}

// Attr returns an attribute or a bound method.
func (a *Array) Attr(name string) (v starlark.Value, err error) {
	defer recoverValue("array."+name, &v, &err)
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
	return newBuiltin(a.m.e, "array."+name, func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
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

// operators maps Starlark's operator tokens to accel's operations (0 for
// none), from the Symbol column of accel's table.
var operators = func() (t [syntax.GTGT + 1]accel.BinaryOp) {
	for tok := syntax.PLUS; tok <= syntax.GTGT; tok++ {
		for _, op := range accel.BinaryOps() {
			if op.Symbol != "" && tok.String() == op.Symbol {
				t[tok] = op.Op
			}
		}
	}
	return t
}()

// Binary implements the operators of accel's table (+ - * /) with arrays,
// numbers and lists. Its errors read like the function's, named by the
// expression: "array + array: operands could not be broadcast ...".
func (a *Array) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (v starlark.Value, err error) {
	defer recoverOperator(op, &v, &err)
	var bop accel.BinaryOp
	if int(op) < len(operators) {
		bop = operators[op]
	}
	if bop == 0 {
		return nil, nil // not supported: Starlark reports the operator and types
	}
	if a.err != nil {
		return nil, a.err
	}
	var out *accel.Array
	switch yv := y.(type) {
	case *Array:
		if yv.err != nil {
			return nil, yv.err
		}
		if yv.arr.Device() != a.ex.Device() {
			out, err = a.binaryOperand(op, bop, y, side)
			break
		}
		left, right := a.arr, yv.arr
		if side == starlark.Right {
			left, right = right, left
		}
		// The result and its wrapper in one allocation (when small).
		var w *Array
		if out, w, err = accel.BinaryWith[Array](a.ex, a.ctx, bop, left, right); err != nil {
			break
		}
		w.arr, w.arrayEnv = out, a.m.arrayEnv(a.ex, a.ctx)
		return w, nil
	case starlark.Int, starlark.Float:
		f, _ := starlark.AsFloat(yv)
		if side == starlark.Left {
			out, err = a.ex.BinaryScalar(a.ctx, bop, a.arr, f)
		} else {
			out, err = a.ex.ScalarBinary(a.ctx, bop, f, a.arr)
		}
	case *starlark.List, starlark.Tuple:
		out, err = a.binaryOperand(op, bop, y, side)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, renameErr(operatorName(op, y, side), bop.String(), err)
	}
	return a.m.wrap(a.ex, a.ctx, out), nil
}

// binaryOperand is Binary with an operand that needs converting (a list,
// or an array on another device).
func (a *Array) binaryOperand(op syntax.Token, bop accel.BinaryOp, y starlark.Value, side starlark.Side) (*accel.Array, error) {
	x, other := arrayLike{a}, arrayLike{y}
	if side == starlark.Right {
		x, other = other, x
	}
	return a.m.binary(operatorName(op, y, side), a.ex, a.ctx, bop, x, other, nil)
}

// operatorName names an operator expression for errors: "array + list".
func operatorName(op syntax.Token, y starlark.Value, side starlark.Side) string {
	if side == starlark.Right {
		return y.Type() + " " + op.String() + " array"
	}
	return "array " + op.String() + " " + y.Type()
}

// recoverOperator is recoverValue for Binary, naming the operator only
// when there was a panic.
func recoverOperator(op syntax.Token, v *starlark.Value, err *error) {
	if r := recover(); r != nil {
		*v, *err = nil, Panicked("array "+op.String(), r)
	}
}

// renameErr replaces the accel operation's name at the start of err's
// message by name; errors.Is still sees err's sentinels.
func renameErr(name, short string, err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, short+": "); ok {
		msg = rest
	}
	return &namedError{msg: name + ": " + msg, err: err}
}

type namedError struct {
	msg string
	err error
}

func (e *namedError) Error() string { return e.msg }
func (e *namedError) Unwrap() error { return e.err }

// Unary implements -a and +a.
func (a *Array) Unary(op syntax.Token) (v starlark.Value, err error) {
	defer recoverValue("array unary "+op.String(), &v, &err)
	if a.err != nil {
		return nil, a.err
	}
	switch op {
	case syntax.PLUS:
		return a, nil
	case syntax.MINUS:
		out, err := a.ex.Neg(a.ctx, a.arr)
		if err != nil {
			return nil, renameErr("-array", accel.OpNeg.String(), err)
		}
		return a.m.wrap(a.ex, a.ctx, out), nil
	}
	return nil, nil
}

// indices converts a[k]'s key: an int or a tuple of ints.
func indices(k starlark.Value) ([]int, error) {
	switch x := k.(type) {
	case starlark.Int:
		i, err := starlark.AsInt32(x)
		if err != nil {
			return nil, fmt.Errorf("array index: %v", err)
		}
		return []int{i}, nil
	case starlark.Tuple:
		idx := make([]int, 0, len(x))
		for j, e := range x {
			i, ok := e.(starlark.Int)
			if !ok {
				return nil, fmt.Errorf("array index: got %s (%s) at position %d, want an int (slice one axis with a[lo:hi])", repr(e), e.Type(), j)
			}
			n, err := starlark.AsInt32(i)
			if err != nil {
				return nil, fmt.Errorf("array index: %v", err)
			}
			idx = append(idx, n)
		}
		return idx, nil
	}
	return nil, fmt.Errorf("array index: got %s (%s), want an int or a tuple of ints", repr(k), k.Type())
}

// Get implements a[i] and a[i, j, ...]: a view, or a float when every
// axis is indexed.
func (a *Array) Get(k starlark.Value) (v starlark.Value, found bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, found, err = nil, false, Panicked("array index", r)
		}
	}()
	if a.err != nil {
		return nil, false, a.err
	}
	idx, err := indices(k)
	if err != nil {
		return nil, false, err
	}
	if len(idx) == 0 {
		return a, true, nil
	}
	v, err = a.index(idx)
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (a *Array) index(idx []int) (starlark.Value, error) {
	if len(idx) == a.arr.NDim() {
		// One element: read it directly (on an error, Index below gives
		// the better message).
		if f, err := a.arr.At(idx...); err == nil {
			return starlark.Float(f), nil
		}
	}
	out, err := a.ex.Index(a.ctx, a.arr, idx...)
	if err != nil {
		return nil, fmt.Errorf("array index: %w", err)
	}
	if out.NDim() == 0 {
		f, err := out.Item()
		if err != nil {
			return nil, fmt.Errorf("array index: %w", err)
		}
		return starlark.Float(f), nil
	}
	return a.m.wrap(a.ex, a.ctx, out), nil
}

// SetKey implements a[i] = v and a[i, j, ...] = v: v (a number, an array or
// a list) is broadcast into the indexed part and converted to a's dtype.
func (a *Array) SetKey(k, v starlark.Value) (err error) {
	defer recoverErr("array index assignment", &err)
	const fn = "array index assignment"
	if a.err != nil {
		return a.err
	}
	if _, err := writable(fn, "a", a); err != nil {
		return err
	}
	idx, err := indices(k)
	if err != nil {
		return fmt.Errorf("%s: %s", fn, strings.TrimPrefix(err.Error(), "array index: "))
	}
	var src arrayLike
	if err := src.Unpack(v); err != nil {
		return fmt.Errorf("%s: value: %v", fn, err)
	}
	if f, ok := src.number(); ok && len(idx) == a.arr.NDim() {
		if err := a.arr.SetAt(f, idx...); err != nil {
			return renameErr(fn, "SetAt", err)
		}
		return nil
	}
	dst, err := a.ex.Index(a.ctx, a.arr, idx...)
	if err != nil {
		return renameErr(fn, "index", err)
	}
	if err := a.m.store(fn, a.ex, a.ctx, dst, src); err != nil {
		return renameErr(fn, "copyto", err)
	}
	return nil
}

// Index returns a[i] for iteration; an error gives a failed result.
func (a *Array) Index(i int) (v starlark.Value) {
	defer func() {
		if r := recover(); r != nil {
			v = a.failed(Panicked("array index", r))
		}
	}()
	if a.err != nil {
		return a
	}
	v, err := a.index([]int{i})
	if err != nil {
		return a.failed(err)
	}
	return v
}

// Slice implements a[start:end:step] along the first axis (Starlark has
// already clamped the bounds to the length), as a view.
func (a *Array) Slice(start, end, step int) (v starlark.Value) {
	defer func() {
		if r := recover(); r != nil {
			v = a.failed(Panicked("array slice", r))
		}
	}()
	if a.err != nil {
		return a
	}
	if a.arr.NDim() == 0 {
		return a.failed(fmt.Errorf("array slice: a 0-d array cannot be sliced"))
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
		return a.failed(fmt.Errorf("array slice: %w", err))
	}
	return a.m.wrap(a.ex, a.ctx, out)
}

// Iterate iterates over the first axis: floats for a 1-D array, views
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
