package builtins

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/autonode/autonode/accel"
)

// accelModule holds what the accel module's functions share.
type accelModule struct {
	e Engine
	// lastEnv is the arrayEnv wrap used last, reused while the Exec and the
	// context stay the same (one thread's arrays).
	lastEnv atomic.Pointer[arrayEnv]
}

// accelFunc implements one accel function.
type accelFunc func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

// arrayMethod implements one method of Array.
type arrayMethod func(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

var (
	accelFuncs   map[string]accelFunc
	arrayMethods map[string]arrayMethod
)

// reductions are the methods (and functions) that reduce an array.
var reductions = map[string]accel.ReduceOp{
	"sum": accel.OpSum, "mean": accel.OpMean, "min": accel.OpMin, "max": accel.OpMax,
	"argmin": accel.OpArgMin, "argmax": accel.OpArgMax, "norm": accel.OpNorm,
}

func init() {
	accelFuncs = map[string]accelFunc{
		"array":       accelArray,
		"zeros":       fillFunc(0),
		"ones":        fillFunc(1),
		"full":        accelFull,
		"arange":      accelArange,
		"linspace":    accelLinspace,
		"eye":         accelEye,
		"rand":        randFunc(false),
		"randn":       randFunc(true),
		"clip":        onArray(methodClip),
		"dot":         onArray(methodDot),
		"matmul":      onArray(methodMatmul),
		"transpose":   onArray(methodTranspose),
		"reshape":     onArray(methodReshape),
		"astype":      onArray(methodAstype),
		"copy":        onArray(methodCopy),
		"tolist":      onArray(methodTolist),
		"concatenate": joinFunc(false),
		"stack":       joinFunc(true),
		"copyto":      accelCopyto,
		"axpy":        accelAxpy,
		"triad":       accelTriad,
		"devices":     accelDevices,
		"save":        accelSave,
		"save_npy":    accelSave,
		// load is a keyword of Starlark: accel.load(p) does not parse, so
		// load_npy is its callable name (getattr(accel, "load") works too).
		"load":     accelLoad,
		"load_npy": accelLoad,
	}
	// The element-wise functions come from accel's operation table.
	for _, op := range accel.BinaryOps() {
		accelFuncs[op.Name] = binaryFunc(op.Op)
	}
	for _, op := range accel.UnaryOps() {
		accelFuncs[op.Name] = unaryFunc(op.Op)
	}
	arrayMethods = map[string]arrayMethod{
		"tolist":    methodTolist,
		"item":      methodItem,
		"reshape":   methodReshape,
		"flatten":   methodFlatten,
		"astype":    methodAstype,
		"copy":      methodCopy,
		"fill":      methodFill,
		"transpose": methodTranspose,
		"dot":       methodDot,
		"matmul":    methodMatmul,
		"clip":      methodClip,
	}
	for name, op := range reductions {
		accelFuncs[name] = onArray(reduceMethod(op))
		arrayMethods[name] = reduceMethod(op)
	}
}

// newAccelModule returns the accel module bound to e.
func newAccelModule(e Engine) *starlarkstruct.Module {
	m := &accelModule{e: e}
	mod := &starlarkstruct.Module{Name: "accel", Members: starlark.StringDict{}}
	for name, impl := range accelFuncs {
		mod.Members[name] = newBuiltin(e, "accel."+name, func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return impl(m, th, fn, args, kwargs)
		})
	}
	return mod
}

// env returns the calling thread's Exec and context.
func (m *accelModule) env(th *starlark.Thread, fn string) (*accel.Exec, context.Context, error) {
	ex := m.e.Accel(th)
	if ex == nil {
		return nil, nil, errorf(fn, "no accel execution context for this thread")
	}
	return ex, contextOf(m.e, th), nil
}

// wrap makes the Starlark value of a new array.
func (m *accelModule) wrap(ex *accel.Exec, ctx context.Context, arr *accel.Array) *Array {
	return &Array{arr: arr, arrayEnv: m.arrayEnv(ex, ctx)}
}

// arrayEnv returns the environment of arrays made with ex and ctx, shared by
// the arrays made one after the other in the same thread.
func (m *accelModule) arrayEnv(ex *accel.Exec, ctx context.Context) *arrayEnv {
	env := m.lastEnv.Load()
	if env == nil || env.ex != ex || env.ctx != ctx {
		env = &arrayEnv{ex: ex, ctx: ctx, m: m}
		m.lastEnv.Store(env)
	}
	return env
}

func noRelease() {}

// toArray converts an operand: an array (copied to ex's device when it
// lives elsewhere), a (nested) list or tuple of numbers, or a number (a 0-d
// array). release frees what the conversion allocated.
func (m *accelModule) toArray(fn, param string, ex *accel.Exec, ctx context.Context, v starlark.Value) (*accel.Array, func(), error) {
	switch x := v.(type) {
	case *Array:
		if x.err != nil {
			return nil, nil, fmt.Errorf("%s: %s: %w", fn, param, x.err)
		}
		if x.arr.Device() != ex.Device() {
			c, err := ex.ToDevice(ctx, x.arr)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", fn, param, err)
			}
			return c, c.Free, nil
		}
		return x.arr, noRelease, nil
	case starlark.Int, starlark.Float:
		f, _ := starlark.AsFloat(x)
		a, err := ex.Scalar(accel.Float64, f)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %s: %w", fn, param, err)
		}
		return a, a.Free, nil
	case *starlark.List, starlark.Tuple:
		data, err := nestedFloats(fn, param, v, 0)
		if err != nil {
			return nil, nil, err
		}
		a, err := ex.FromNested(data, accel.Float64)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %s: %w", fn, param, err)
		}
		return a, a.Free, nil
	}
	return nil, nil, typeError(fn, param, v, "an array, a list of numbers or a number")
}

// nestedFloats converts nested lists and tuples of numbers to nested []any
// of float64 for accel.Exec.FromNested.
func nestedFloats(fn, param string, v starlark.Value, depth int) (any, error) {
	if depth > maxConvertDepth {
		return nil, errorf(fn, "%s: nested deeper than %d levels (or contains itself)", param, maxConvertDepth)
	}
	switch x := v.(type) {
	case starlark.Int, starlark.Float:
		f, _ := starlark.AsFloat(x)
		return f, nil
	case starlark.Bool:
		if x {
			return 1.0, nil
		}
		return 0.0, nil
	case *Array:
		if x.err != nil {
			return nil, fmt.Errorf("%s: %s: %w", fn, param, x.err)
		}
		l, err := x.arr.ToList()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", fn, param, err)
		}
		return l, nil
	case *starlark.List, starlark.Tuple:
		items := listItems(v)
		out := make([]any, len(items))
		for i, it := range items {
			e, err := nestedFloats(fn, fmt.Sprintf("%s[%d]", param, i), it, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	return nil, typeError(fn, param, v, "a number or a list of numbers")
}

// writable returns the array an in-place operation writes (an out=, the
// target of axpy), refusing frozen arrays.
func writable(fn, param string, a *Array) (*accel.Array, error) {
	if a.err != nil {
		return nil, fmt.Errorf("%s: %s: %w", fn, param, a.err)
	}
	if a.arr.ReadOnly() {
		return nil, errorf(fn, "%s: the array is frozen (shared between threads, a global of a loaded module, or a view of such an array) and cannot be changed in place; work on a copy: %s.copy()", param, param)
	}
	return a.arr, nil
}

// target is mutable for the array an in-place builtin writes, with the
// thread's accel environment.
func (m *accelModule) target(th *starlark.Thread, fn, param string, v starlark.Value) (*accel.Array, *accel.Exec, context.Context, error) {
	a, err := mutable(fn, param, v)
	if err != nil {
		return nil, nil, nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, nil, nil, err
	}
	return a, ex, ctx, nil
}

// mutable is writable for a parameter that must be an array.
func mutable(fn, param string, v starlark.Value) (*accel.Array, error) {
	a, ok := v.(*Array)
	if !ok {
		return nil, typeError(fn, param, v, "an array")
	}
	return writable(fn, param, a)
}

// outArray returns the array out= names, or nil.
func outArray(fn string, out outArg) (*accel.Array, error) {
	if out.a == nil {
		return nil, nil
	}
	return writable(fn, "out", out.a)
}

// result wraps an operation's result: out's own value when the result was
// written into out=.
func (m *accelModule) result(ex *accel.Exec, ctx context.Context, arr *accel.Array, out outArg) starlark.Value {
	if out.a != nil {
		return out.a
	}
	return m.wrap(ex, ctx, arr)
}

// accel.array(data, dtype="float64")
func accelArray(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var data starlark.Value
	dt := defaultDType()
	if err := unpack(fn, args, kwargs, "data", &data, "dtype?", &dt); err != nil {
		return nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	if a, ok := data.(*Array); ok {
		src, release, err := m.toArray(fn, "data", ex, ctx, a)
		if err != nil {
			return nil, err
		}
		defer release()
		out, err := ex.AsType(ctx, src, accel.DType(dt))
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return m.wrap(ex, ctx, out), nil
	}
	nested, err := nestedFloats(fn, "data", data, 0)
	if err != nil {
		return nil, err
	}
	out, err := ex.FromNested(nested, accel.DType(dt))
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// accel.zeros(shape, dtype="float64"), accel.ones(shape, dtype="float64")
func fillFunc(value float64) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var shape shapeArg
		dt := defaultDType()
		if err := unpack(fn, args, kwargs, "shape", &shape, "dtype?", &dt); err != nil {
			return nil, err
		}
		return m.made(th, fn, func(ex *accel.Exec) (*accel.Array, error) {
			if value == 0 {
				return ex.Zeros(accel.DType(dt), shape...)
			}
			return ex.Ones(accel.DType(dt), shape...)
		})
	}
}

// made wraps the array make returns on the calling thread's Exec.
func (m *accelModule) made(th *starlark.Thread, fn string, make func(ex *accel.Exec) (*accel.Array, error)) (starlark.Value, error) {
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	out, err := make(ex)
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// accel.full(shape, value, dtype="float64")
func accelFull(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var shape shapeArg
	var val numberArg
	dt := defaultDType()
	if err := unpack(fn, args, kwargs, "shape", &shape, "value", &val, "dtype?", &dt); err != nil {
		return nil, err
	}
	return m.made(th, fn, func(ex *accel.Exec) (*accel.Array, error) {
		return ex.Full(accel.DType(dt), float64(val), shape...)
	})
}

// accel.arange(start, stop=None, step=1, dtype="float64")
func accelArange(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var start, step numberArg
	var stop optNumber
	var stepV starlark.Value = starlark.MakeInt(1)
	dt := defaultDType()
	if err := unpack(fn, args, kwargs, "start", &start, "stop?", &stop, "step?", &stepV, "dtype?", &dt); err != nil {
		return nil, err
	}
	if err := step.Unpack(stepV); err != nil {
		return nil, fmt.Errorf("%s: step: %v", fn, err)
	}
	lo, hi := 0.0, float64(start)
	if stop.set {
		lo, hi = float64(start), float64(stop.v)
	}
	if s := float64(step); s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, valueError(fn, "step", stepV, "a finite, non-zero number")
	}
	return m.made(th, fn, func(ex *accel.Exec) (*accel.Array, error) {
		return ex.Arange(accel.DType(dt), lo, hi, float64(step))
	})
}

// accel.linspace(start, stop, num=50, dtype="float64")
func accelLinspace(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var start, stop numberArg
	num := intArg(50)
	dt := defaultDType()
	if err := unpack(fn, args, kwargs, "start", &start, "stop", &stop, "num?", &num, "dtype?", &dt); err != nil {
		return nil, err
	}
	if num < 0 || num > maxDim {
		return nil, errorf(fn, "num: got %d, want a non-negative number of points", num)
	}
	return m.made(th, fn, func(ex *accel.Exec) (*accel.Array, error) {
		return ex.Linspace(accel.DType(dt), float64(start), float64(stop), int(num))
	})
}

// sizeArg is a non-negative count of rows or columns.
type sizeArg int

func (p *sizeArg) Unpack(v starlark.Value) error {
	var n intArg
	if err := n.Unpack(v); err != nil {
		return got(v, "a number of rows or columns (int)")
	}
	if n < 0 || n > maxDim {
		return gotValue(v, "a non-negative number of rows or columns")
	}
	*p = sizeArg(n)
	return nil
}

// accel.eye(n, m=None, dtype="float64")
func accelEye(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var rows sizeArg
	var colsV starlark.Value = starlark.None
	dt := defaultDType()
	if err := unpack(fn, args, kwargs, "n", &rows, "m?", &colsV, "dtype?", &dt); err != nil {
		return nil, err
	}
	cols := rows
	if colsV != starlark.None {
		if err := cols.Unpack(colsV); err != nil {
			return nil, fmt.Errorf("%s: m: %v", fn, err)
		}
	}
	return m.made(th, fn, func(ex *accel.Exec) (*accel.Array, error) {
		return ex.Eye(accel.DType(dt), int(rows), int(cols))
	})
}

// seedInt is a random seed: a non-negative int.
type seedInt uint64

func (p *seedInt) Unpack(v starlark.Value) error {
	var n intArg
	if err := n.Unpack(v); err != nil {
		return got(v, "a non-negative int or None")
	}
	if n < 0 {
		return gotValue(v, "a non-negative int")
	}
	*p = seedInt(n)
	return nil
}

// seedArg is a seed, or None for a random one.
type seedArg = optional[seedInt, *seedInt]

// accel.rand(shape, seed=None, dtype="float64"), accel.randn likewise
func randFunc(normal bool) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var shape shapeArg
		var seed seedArg
		dt := defaultDType()
		if err := unpack(fn, args, kwargs, "shape", &shape, "seed?", &seed, "dtype?", &dt); err != nil {
			return nil, err
		}
		if !seed.set {
			var b [8]byte
			if _, err := rand.Read(b[:]); err != nil {
				return nil, wrapErr(fn, err)
			}
			seed.v = seedInt(binary.LittleEndian.Uint64(b[:]))
		}
		return m.made(th, fn, func(ex *accel.Exec) (*accel.Array, error) {
			if normal {
				return ex.Randn(accel.DType(dt), uint64(seed.v), shape...)
			}
			return ex.Rand(accel.DType(dt), uint64(seed.v), shape...)
		})
	}
}

// binary computes x op y for the operator and the function alike: x and y
// are arrays, lists or numbers (a number stays a scalar, keeping the
// array's dtype); out, when not nil, receives the result.
func (m *accelModule) binary(fn string, ex *accel.Exec, ctx context.Context, op accel.BinaryOp, x, y arrayLike, out *accel.Array) (*accel.Array, error) {
	xs, xNum := x.number()
	ys, yNum := y.number()
	if xNum && yNum { // two numbers: 0-d arrays
		xNum, yNum = false, false
	}
	// No defer here: this is the path of every operator with a list or a
	// number, and deferred calls would cost more than the operation.
	var xa, ya *accel.Array
	xrel, yrel := noRelease, noRelease
	var err error
	if !xNum {
		if xa, xrel, err = m.toArray(fn, "x", ex, ctx, x.v); err != nil {
			return nil, err
		}
	}
	if !yNum {
		if ya, yrel, err = m.toArray(fn, "y", ex, ctx, y.v); err != nil {
			xrel()
			return nil, err
		}
	}
	res, err := binaryOn(ctx, ex, op, out, xa, ya, xs, ys)
	xrel()
	yrel()
	return res, err
}

// binaryOn picks the Exec method for x op y, where a nil array stands for
// its number (which then keeps the other operand's dtype), writing into
// out when it is not nil.
func binaryOn(ctx context.Context, ex *accel.Exec, op accel.BinaryOp, out, xa, ya *accel.Array, xs, ys float64) (*accel.Array, error) {
	switch {
	case ya == nil && out != nil:
		return out, ex.BinaryScalarInto(ctx, op, out, xa, ys)
	case ya == nil:
		return ex.BinaryScalar(ctx, op, xa, ys)
	case xa == nil && out != nil:
		return out, ex.ScalarBinaryInto(ctx, op, out, xs, ya)
	case xa == nil:
		return ex.ScalarBinary(ctx, op, xs, ya)
	case out != nil:
		return out, ex.BinaryInto(ctx, op, out, xa, ya)
	}
	return ex.Binary(ctx, op, xa, ya)
}

// accel.add(x, y, out=None) and every other element-wise binary function
func binaryFunc(op accel.BinaryOp) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var x, y arrayLike
		var out outArg
		if err := unpack(fn, args, kwargs, "x", &x, "y", &y, "out?", &out); err != nil {
			return nil, err
		}
		dst, err := outArray(fn, out)
		if err != nil {
			return nil, err
		}
		ex, ctx, err := m.env(th, fn)
		if err != nil {
			return nil, err
		}
		res, err := m.binary(fn, ex, ctx, op, x, y, dst)
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return m.result(ex, ctx, res, out), nil
	}
}

// accel.exp(x, out=None) and every other element-wise unary function
func unaryFunc(op accel.UnaryOp) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var x arrayLike
		var out outArg
		if err := unpack(fn, args, kwargs, "x", &x, "out?", &out); err != nil {
			return nil, err
		}
		dst, err := outArray(fn, out)
		if err != nil {
			return nil, err
		}
		ex, ctx, err := m.env(th, fn)
		if err != nil {
			return nil, err
		}
		xa, release, err := m.toArray(fn, "x", ex, ctx, x.v)
		if err != nil {
			return nil, err
		}
		defer release()
		var res *accel.Array
		if dst != nil {
			res, err = dst, ex.UnaryInto(ctx, op, dst, xa)
		} else {
			res, err = ex.Unary(ctx, op, xa)
		}
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return m.result(ex, ctx, res, out), nil
	}
}

// onArray turns a method into a module function whose first parameter,
// a, is the array (or anything toArray accepts).
func onArray(method arrayMethod) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var aV starlark.Value
		rest := args
		if len(args) > 0 {
			aV, rest = args[0], args[1:]
		} else {
			var kept []starlark.Tuple
			for _, kv := range kwargs {
				if k, _ := starlark.AsString(kv[0]); k == "a" && aV == nil {
					aV = kv[1]
					continue
				}
				kept = append(kept, kv)
			}
			kwargs = kept
		}
		if aV == nil {
			return nil, errorf(fn, "missing argument for a")
		}
		a, ok := aV.(*Array)
		if !ok {
			var al arrayLike
			if err := al.Unpack(aV); err != nil {
				return nil, fmt.Errorf("%s: a: %v", fn, err)
			}
			ex, ctx, err := m.env(th, fn)
			if err != nil {
				return nil, err
			}
			arr, _, err := m.toArray(fn, "a", ex, ctx, aV)
			if err != nil {
				return nil, err
			}
			a = m.wrap(ex, ctx, arr)
		}
		if a.err != nil {
			return nil, wrapErr(fn, a.err)
		}
		return method(m, a, th, fn, rest, kwargs)
	}
}

// operand returns a's array on the calling thread's device.
func (m *accelModule) operand(a *Array, th *starlark.Thread, fn string) (*accel.Exec, context.Context, *accel.Array, func(), error) {
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	arr, release, err := m.toArray(fn, "a", ex, ctx, a)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return ex, ctx, arr, release, nil
}

// a.sum(axis=None, keepdims=False) and the other reductions: a number
// without axis, an array with it (or with keepdims); argmin and argmax
// give ints.
func reduceMethod(op accel.ReduceOp) arrayMethod {
	return func(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var axis axisArg
		var keep boolArg
		if err := unpack(fn, args, kwargs, "axis?", &axis, "keepdims?", &keep); err != nil {
			return nil, err
		}
		ex, ctx, arr, release, err := m.operand(a, th, fn)
		if err != nil {
			return nil, err
		}
		defer release()
		if axis.set {
			out, err := ex.ReduceAxis(ctx, op, arr, int(axis.v))
			if err == nil && keep {
				shape := arr.Shape()
				ax := int(axis.v)
				if ax < 0 {
					ax += len(shape)
				}
				shape[ax] = 1
				out, err = ex.Reshape(out, shape...)
			}
			if err != nil {
				return nil, wrapErr(fn, err)
			}
			return m.wrap(ex, ctx, out), nil
		}
		v, err := ex.Reduce(ctx, op, arr)
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		if keep {
			ones := make([]int, arr.NDim())
			for i := range ones {
				ones[i] = 1
			}
			dt := arr.DType()
			if op == accel.OpArgMin || op == accel.OpArgMax {
				dt = accel.Float64
			}
			out, err := ex.Full(dt, v, ones...)
			if err != nil {
				return nil, wrapErr(fn, err)
			}
			return m.wrap(ex, ctx, out), nil
		}
		if op == accel.OpArgMin || op == accel.OpArgMax {
			return starlark.MakeInt64(int64(v)), nil
		}
		return starlark.Float(v), nil
	}
}

// a.clip(lo=None, hi=None, out=None)
func methodClip(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var lo, hi optNumber
	var out outArg
	if err := unpack(fn, args, kwargs, "lo?", &lo, "hi?", &hi, "out?", &out); err != nil {
		return nil, err
	}
	if !lo.set {
		lo.v = numberArg(math.Inf(-1))
	}
	if !hi.set {
		hi.v = numberArg(math.Inf(1))
	}
	l, h := float64(lo.v), float64(hi.v)
	if math.IsNaN(l) || math.IsNaN(h) || l > h {
		return nil, errorf(fn, "lo: got %v and hi %v, want lo <= hi", l, h)
	}
	dst, err := outArray(fn, out)
	if err != nil {
		return nil, err
	}
	ex, ctx, arr, release, err := m.operand(a, th, fn)
	if err != nil {
		return nil, err
	}
	defer release()
	var res *accel.Array
	if dst != nil {
		res, err = dst, ex.ClipInto(ctx, dst, arr, l, h)
	} else {
		res, err = ex.Clip(ctx, arr, l, h)
	}
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.result(ex, ctx, res, out), nil
}

// a.dot(b) -> float
func methodDot(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var b arrayLike
	if err := unpack(fn, args, kwargs, "b", &b); err != nil {
		return nil, err
	}
	return m.withOther(a, b, th, fn, func(ex *accel.Exec, ctx context.Context, x, y *accel.Array) (starlark.Value, error) {
		v, err := ex.Dot(ctx, x, y)
		return starlark.Float(v), err
	})
}

// a.matmul(b, out=None) -> array
func methodMatmul(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var b arrayLike
	var out outArg
	if err := unpack(fn, args, kwargs, "b", &b, "out?", &out); err != nil {
		return nil, err
	}
	dst, err := outArray(fn, out)
	if err != nil {
		return nil, err
	}
	return m.withOther(a, b, th, fn, func(ex *accel.Exec, ctx context.Context, x, y *accel.Array) (starlark.Value, error) {
		if dst != nil {
			if err := ex.MatmulInto(ctx, dst, x, y); err != nil {
				return nil, err
			}
			return out.a, nil
		}
		res, err := ex.Matmul(ctx, x, y)
		if err != nil {
			return nil, err
		}
		return m.wrap(ex, ctx, res), nil
	})
}

// withOther runs op on a's array and b (an array, or a value that converts
// to one), wrapping op's error with fn.
func (m *accelModule) withOther(a *Array, b arrayLike, th *starlark.Thread, fn string, op func(ex *accel.Exec, ctx context.Context, x, y *accel.Array) (starlark.Value, error)) (starlark.Value, error) {
	ex, ctx, arr, release, err := m.operand(a, th, fn)
	if err != nil {
		return nil, err
	}
	defer release()
	ba, brel, err := m.toArray(fn, "b", ex, ctx, b.v)
	if err != nil {
		return nil, err
	}
	defer brel()
	v, err := op(ex, ctx, arr, ba)
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return v, nil
}

// intsArg collects int arguments given one by one or as one tuple or list
// (a.reshape(2, 3) or a.reshape((2, 3))).
func intsArg(fn, param string, args starlark.Tuple) ([]int, error) {
	items := []starlark.Value(args)
	if len(args) == 1 && isListLike(args[0]) {
		items = listItems(args[0])
	}
	if len(items) > 64 {
		return nil, errorf(fn, "%s: too many values (%d)", param, len(items))
	}
	out := make([]int, len(items))
	for i, it := range items {
		var n intArg
		if err := arg(fn, fmt.Sprintf("%s[%d]", param, i), it, &n); err != nil {
			return nil, err
		}
		if n < -maxDim || n > maxDim {
			return nil, valueError(fn, param, it, "a dimension or axis")
		}
		out[i] = int(n)
	}
	return out, nil
}

// a.reshape(*shape)
func methodReshape(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(kwargs) == 1 && len(args) == 0 {
		if k, _ := starlark.AsString(kwargs[0][0]); k == "shape" {
			args, kwargs = starlark.Tuple{kwargs[0][1]}, nil
		}
	}
	if len(kwargs) > 0 {
		return nil, errorf(fn, "unexpected keyword argument %s", kwargs[0][0])
	}
	shape, err := intsArg(fn, "shape", args)
	if err != nil {
		return nil, err
	}
	ex, ctx, arr, _, err := m.operand(a, th, fn)
	if err != nil {
		return nil, err
	}
	// A view shares the storage: a copy made for the device (if any) lives
	// on in the result.
	out, err := ex.Reshape(arr, shape...)
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// a.flatten() -> a 1-D copy
func methodFlatten(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := unpack(fn, args, kwargs); err != nil {
		return nil, err
	}
	return m.apply(a, th, fn, func(ex *accel.Exec, ctx context.Context, arr *accel.Array) (*accel.Array, error) {
		c, err := ex.Copy(ctx, arr)
		if err != nil {
			return nil, err
		}
		return ex.Reshape(c, -1)
	})
}

// a.transpose(*axes)
func methodTranspose(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(kwargs) == 1 {
		if k, _ := starlark.AsString(kwargs[0][0]); k == "axes" && len(args) == 0 {
			if !isNone(kwargs[0][1]) {
				args = starlark.Tuple{kwargs[0][1]}
			}
			kwargs = nil
		}
	}
	if len(kwargs) > 0 {
		return nil, errorf(fn, "unexpected keyword argument %s", kwargs[0][0])
	}
	if len(args) == 1 && isNone(args[0]) {
		args = nil
	}
	axes, err := intsArg(fn, "axes", args)
	if err != nil {
		return nil, err
	}
	return m.apply(a, th, fn, func(ex *accel.Exec, ctx context.Context, arr *accel.Array) (*accel.Array, error) {
		return ex.Transpose(ctx, arr, axes...)
	})
}

// a.astype(dtype)
func methodAstype(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dt dtypeArg
	if err := unpack(fn, args, kwargs, "dtype", &dt); err != nil {
		return nil, err
	}
	return m.apply(a, th, fn, func(ex *accel.Exec, ctx context.Context, arr *accel.Array) (*accel.Array, error) {
		return ex.AsType(ctx, arr, accel.DType(dt))
	})
}

// a.copy()
func methodCopy(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := unpack(fn, args, kwargs); err != nil {
		return nil, err
	}
	return m.apply(a, th, fn, func(ex *accel.Exec, ctx context.Context, arr *accel.Array) (*accel.Array, error) {
		return ex.Copy(ctx, arr)
	})
}

// a.fill(value): set every element, in place
func methodFill(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var v numberArg
	if err := unpack(fn, args, kwargs, "value", &v); err != nil {
		return nil, err
	}
	return m.storeInto(th, fn, "a", a, arrayLike{starlark.Float(v)})
}

// storeInto writes src into the array dstV names, for fill and copyto.
func (m *accelModule) storeInto(th *starlark.Thread, fn, param string, dstV starlark.Value, src arrayLike) (starlark.Value, error) {
	dst, ex, ctx, err := m.target(th, fn, param, dstV)
	if err != nil {
		return nil, err
	}
	if err := m.store(fn, ex, ctx, dst, src); err != nil {
		return nil, renameErr(fn, "copyto", err)
	}
	return starlark.None, nil
}

// store writes src (a number, an array or a list) into dst, broadcasting
// it to dst's shape and converting it to dst's dtype.
func (m *accelModule) store(fn string, ex *accel.Exec, ctx context.Context, dst *accel.Array, src arrayLike) error {
	if v, ok := src.number(); ok {
		return assign(ex, ctx, dst, v)
	}
	s, release, err := m.toArray(fn, "value", ex, ctx, src.v)
	if err != nil {
		return err
	}
	defer release()
	return ex.CopyInto(ctx, dst, s)
}

// assign writes the number v into every element of dst.
func assign(ex *accel.Exec, ctx context.Context, dst *accel.Array, v float64) error {
	s, err := ex.Scalar(dst.DType(), v)
	if err != nil {
		return err
	}
	defer s.Free()
	return ex.CopyInto(ctx, dst, s)
}

// apply runs op on a's array (on its device, under the caller's context)
// and wraps the result.
func (m *accelModule) apply(a *Array, th *starlark.Thread, fn string, op func(ex *accel.Exec, ctx context.Context, arr *accel.Array) (*accel.Array, error)) (starlark.Value, error) {
	ex, ctx, arr, release, err := m.operand(a, th, fn)
	if err != nil {
		return nil, err
	}
	out, err := op(ex, ctx, arr)
	if err != nil {
		release()
		return nil, wrapErr(fn, err)
	}
	if out.Buffer() != arr.Buffer() {
		release() // the result does not share the operand's copy
	}
	return m.wrap(ex, ctx, out), nil
}

// a.tolist() -> nested lists of floats (a float for a 0-d array)
func methodTolist(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := unpack(fn, args, kwargs); err != nil {
		return nil, err
	}
	l, err := a.arr.ToList()
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return ToStarlark(l)
}

// a.item() -> float
func methodItem(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := unpack(fn, args, kwargs); err != nil {
		return nil, err
	}
	f, err := a.arr.Item()
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return starlark.Float(f), nil
}

// arraysArg is a list or tuple of operands (arrays, lists or numbers).
type arraysArg []starlark.Value

func (p *arraysArg) Unpack(v starlark.Value) error {
	if !isListLike(v) {
		return got(v, "a list of arrays")
	}
	items := listItems(v)
	for i, it := range items {
		var a arrayLike
		if err := a.Unpack(it); err != nil {
			return fmt.Errorf("[%d]: %v", i, err)
		}
	}
	*p = items
	return nil
}

// accel.concatenate(arrays, axis=0), accel.stack(arrays, axis=0)
func joinFunc(stack bool) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var items arraysArg
		axis := axisArg{set: true}
		if err := unpack(fn, args, kwargs, "arrays", &items, "axis?", &axis); err != nil {
			return nil, err
		}
		if !axis.set {
			return nil, errorf(fn, "axis: got None, want an int")
		}
		ex, ctx, err := m.env(th, fn)
		if err != nil {
			return nil, err
		}
		arrs := make([]*accel.Array, len(items))
		for i, it := range items {
			a, release, err := m.toArray(fn, fmt.Sprintf("arrays[%d]", i), ex, ctx, it)
			if err != nil {
				return nil, err
			}
			defer release()
			arrs[i] = a
		}
		var out *accel.Array
		if stack {
			out, err = ex.Stack(ctx, arrs, int(axis.v))
		} else {
			out, err = ex.Concatenate(ctx, arrs, int(axis.v))
		}
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return m.wrap(ex, ctx, out), nil
	}
}

// accel.copyto(dst, src): dst[...] = src, broadcasting, in place
func accelCopyto(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dstV starlark.Value
	var src arrayLike
	if err := unpack(fn, args, kwargs, "dst", &dstV, "src", &src); err != nil {
		return nil, err
	}
	return m.storeInto(th, fn, "dst", dstV, src)
}

// accel.axpy(alpha, x, y): y += alpha*x, in place
func accelAxpy(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var alpha numberArg
	var x arrayLike
	var yV starlark.Value
	if err := unpack(fn, args, kwargs, "alpha", &alpha, "x", &x, "y", &yV); err != nil {
		return nil, err
	}
	y, ex, ctx, err := m.target(th, fn, "y", yV)
	if err != nil {
		return nil, err
	}
	xa, release, err := m.toArray(fn, "x", ex, ctx, x.v)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := ex.Axpy(ctx, float64(alpha), xa, y); err != nil {
		return nil, wrapErr(fn, err)
	}
	return starlark.None, nil
}

// accel.triad(dst, b, c, s): dst = b + s*c, in place
func accelTriad(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dstV starlark.Value
	var b, c arrayLike
	var s numberArg
	if err := unpack(fn, args, kwargs, "dst", &dstV, "b", &b, "c", &c, "s", &s); err != nil {
		return nil, err
	}
	dst, ex, ctx, err := m.target(th, fn, "dst", dstV)
	if err != nil {
		return nil, err
	}
	ba, brel, err := m.toArray(fn, "b", ex, ctx, b.v)
	if err != nil {
		return nil, err
	}
	defer brel()
	ca, crel, err := m.toArray(fn, "c", ex, ctx, c.v)
	if err != nil {
		return nil, err
	}
	defer crel()
	if err := ex.Triad(ctx, dst, ba, ca, float64(s)); err != nil {
		return nil, wrapErr(fn, err)
	}
	return starlark.None, nil
}

// accel.devices() -> list of struct(name, kind, found, reason, detail)
func accelDevices(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := unpack(fn, args, kwargs); err != nil {
		return nil, err
	}
	infos := accel.Devices()
	out := make([]starlark.Value, len(infos))
	for i, d := range infos {
		s := starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
			"name": starlark.String(d.Name), "kind": starlark.String(d.Kind), "found": starlark.Bool(d.Found),
			"reason": starlark.String(d.Reason), "detail": starlark.String(d.Detail),
		})
		s.Freeze()
		out[i] = s
	}
	return starlark.NewList(out), nil
}
