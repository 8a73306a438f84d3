package builtins

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/autonode/autonode/accel"
)

// accelModule holds what the accel module's functions share.
type accelModule struct{ e Engine }

// accelFunc implements one accel function.
type accelFunc func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

// arrayMethod implements one method of Array.
type arrayMethod func(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

var (
	accelFuncs   map[string]accelFunc
	arrayMethods map[string]arrayMethod
)

func init() {
	accelFuncs = map[string]accelFunc{
		"array":       accelArray,
		"zeros":       fillFunc("zeros"),
		"ones":        fillFunc("ones"),
		"full":        accelFull,
		"arange":      accelArange,
		"linspace":    accelLinspace,
		"eye":         accelEye,
		"rand":        randFunc(false),
		"randn":       randFunc(true),
		"add":         binaryFunc(accel.OpAdd),
		"subtract":    binaryFunc(accel.OpSub),
		"multiply":    binaryFunc(accel.OpMul),
		"divide":      binaryFunc(accel.OpDiv),
		"power":       binaryFunc(accel.OpPow),
		"maximum":     binaryFunc(accel.OpMaximum),
		"minimum":     binaryFunc(accel.OpMinimum),
		"negative":    unaryFunc(accel.OpNeg),
		"abs":         unaryFunc(accel.OpAbs),
		"exp":         unaryFunc(accel.OpExp),
		"log":         unaryFunc(accel.OpLog),
		"sqrt":        unaryFunc(accel.OpSqrt),
		"tanh":        unaryFunc(accel.OpTanh),
		"sigmoid":     unaryFunc(accel.OpSigmoid),
		"relu":        unaryFunc(accel.OpRelu),
		"clip":        onArray(methodClip),
		"sum":         onArray(reduceMethod(accel.OpSum)),
		"mean":        onArray(reduceMethod(accel.OpMean)),
		"min":         onArray(reduceMethod(accel.OpMin)),
		"max":         onArray(reduceMethod(accel.OpMax)),
		"argmin":      onArray(reduceMethod(accel.OpArgMin)),
		"argmax":      onArray(reduceMethod(accel.OpArgMax)),
		"norm":        onArray(reduceMethod(accel.OpNorm)),
		"dot":         onArray(methodDot),
		"matmul":      onArray(methodMatmul),
		"transpose":   onArray(methodTranspose),
		"reshape":     onArray(methodReshape),
		"astype":      onArray(methodAstype),
		"copy":        onArray(methodCopy),
		"tolist":      onArray(methodTolist),
		"concatenate": joinFunc(false),
		"stack":       joinFunc(true),
		"axpy":        accelAxpy,
		"triad":       accelTriad,
		"devices":     accelDevices,
	}
	arrayMethods = map[string]arrayMethod{
		"tolist":    methodTolist,
		"item":      methodItem,
		"reshape":   methodReshape,
		"flatten":   methodFlatten,
		"astype":    methodAstype,
		"copy":      methodCopy,
		"transpose": methodTranspose,
		"dot":       methodDot,
		"matmul":    methodMatmul,
		"clip":      methodClip,
		"sum":       reduceMethod(accel.OpSum),
		"mean":      reduceMethod(accel.OpMean),
		"min":       reduceMethod(accel.OpMin),
		"max":       reduceMethod(accel.OpMax),
		"argmin":    reduceMethod(accel.OpArgMin),
		"argmax":    reduceMethod(accel.OpArgMax),
		"norm":      reduceMethod(accel.OpNorm),
	}
}

// newAccelModule returns the accel module bound to e.
func newAccelModule(e Engine) *starlarkstruct.Module {
	m := &accelModule{e: e}
	mod := &starlarkstruct.Module{Name: "accel", Members: starlark.StringDict{}}
	for name, impl := range accelFuncs {
		impl := impl
		mod.Members[name] = newBuiltin("accel."+name, func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
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
	return &Array{arr: arr, ex: ex, ctx: ctx, m: m}
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

// toDType converts a dtype name.
func toDType(fn, param string, v starlark.Value) (accel.DType, error) {
	s, err := toString(fn, param, v)
	if err != nil {
		return 0, err
	}
	dt, err := accel.ParseDType(s)
	if err != nil {
		return 0, valueError(fn, param, v, `"float64" or "float32"`)
	}
	return dt, nil
}

// maxDim bounds one dimension given from Starlark; accel checks the total.
const maxDim = 1 << 40

// toShape converts a shape: an int or a tuple or list of ints.
func toShape(fn, param string, v starlark.Value) ([]int, error) {
	var items []starlark.Value
	switch v.(type) {
	case starlark.Int:
		items = []starlark.Value{v}
	case starlark.Tuple, *starlark.List:
		items = listItems(v)
	default:
		return nil, typeError(fn, param, v, "a shape (an int or a tuple of ints)")
	}
	if len(items) > 32 {
		return nil, valueError(fn, param, v, "at most 32 dimensions")
	}
	shape := make([]int, len(items))
	for i, it := range items {
		n, err := toInt(fn, fmt.Sprintf("%s[%d]", param, i), it)
		if err != nil {
			return nil, err
		}
		if n < 0 || n > maxDim {
			return nil, valueError(fn, param, v, "non-negative dimensions")
		}
		shape[i] = int(n)
	}
	return shape, nil
}

// toAxis converts an axis argument (None: every axis).
func toAxis(fn string, v starlark.Value) (int, bool, error) {
	if isNone(v) {
		return 0, false, nil
	}
	n, err := toInt(fn, "axis", v)
	if err != nil {
		return 0, false, err
	}
	if n < -64 || n > 64 {
		return 0, false, valueError(fn, "axis", v, "an axis of the array")
	}
	return int(n), true, nil
}

// accel.array(data, dtype="float64")
func accelArray(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var data starlark.Value
	var dtV starlark.Value = starlark.String("float64")
	if err := starlark.UnpackArgs(fn, args, kwargs, "data", &data, "dtype?", &dtV); err != nil {
		return nil, err
	}
	dt, err := toDType(fn, "dtype", dtV)
	if err != nil {
		return nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	var out *accel.Array
	if a, ok := data.(*Array); ok {
		src, release, err := m.toArray(fn, "data", ex, ctx, a)
		if err != nil {
			return nil, err
		}
		defer release()
		out, err = ex.AsType(ctx, src, dt)
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return m.wrap(ex, ctx, out), nil
	}
	nested, err := nestedFloats(fn, "data", data, 0)
	if err != nil {
		return nil, err
	}
	if out, err = ex.FromNested(nested, dt); err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// accel.zeros(shape, dtype="float64"), accel.ones(shape, dtype="float64")
func fillFunc(kind string) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var shapeV starlark.Value
		var dtV starlark.Value = starlark.String("float64")
		if err := starlark.UnpackArgs(fn, args, kwargs, "shape", &shapeV, "dtype?", &dtV); err != nil {
			return nil, err
		}
		shape, err := toShape(fn, "shape", shapeV)
		if err != nil {
			return nil, err
		}
		dt, err := toDType(fn, "dtype", dtV)
		if err != nil {
			return nil, err
		}
		ex, ctx, err := m.env(th, fn)
		if err != nil {
			return nil, err
		}
		var out *accel.Array
		if kind == "zeros" {
			out, err = ex.Zeros(dt, shape...)
		} else {
			out, err = ex.Ones(dt, shape...)
		}
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return m.wrap(ex, ctx, out), nil
	}
}

// accel.full(shape, value, dtype="float64")
func accelFull(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var shapeV, valV starlark.Value
	var dtV starlark.Value = starlark.String("float64")
	if err := starlark.UnpackArgs(fn, args, kwargs, "shape", &shapeV, "value", &valV, "dtype?", &dtV); err != nil {
		return nil, err
	}
	shape, err := toShape(fn, "shape", shapeV)
	if err != nil {
		return nil, err
	}
	val, err := toFloat(fn, "value", valV)
	if err != nil {
		return nil, err
	}
	dt, err := toDType(fn, "dtype", dtV)
	if err != nil {
		return nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	out, err := ex.Full(dt, val, shape...)
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// accel.arange(start, stop=None, step=1, dtype="float64")
func accelArange(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var startV, stopV, stepV, dtV starlark.Value = nil, starlark.None, starlark.MakeInt(1), starlark.String("float64")
	if err := starlark.UnpackArgs(fn, args, kwargs, "start", &startV, "stop?", &stopV, "step?", &stepV, "dtype?", &dtV); err != nil {
		return nil, err
	}
	start, err := toFloat(fn, "start", startV)
	if err != nil {
		return nil, err
	}
	stop := start
	if isNone(stopV) {
		start = 0
	} else if stop, err = toFloat(fn, "stop", stopV); err != nil {
		return nil, err
	}
	step, err := toFloat(fn, "step", stepV)
	if err != nil {
		return nil, err
	}
	if step == 0 || math.IsNaN(step) || math.IsInf(step, 0) {
		return nil, valueError(fn, "step", stepV, "a finite, non-zero number")
	}
	dt, err := toDType(fn, "dtype", dtV)
	if err != nil {
		return nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	out, err := ex.Arange(dt, start, stop, step)
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// accel.linspace(start, stop, num=50, dtype="float64")
func accelLinspace(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var startV, stopV, numV, dtV starlark.Value = nil, nil, starlark.MakeInt(50), starlark.String("float64")
	if err := starlark.UnpackArgs(fn, args, kwargs, "start", &startV, "stop", &stopV, "num?", &numV, "dtype?", &dtV); err != nil {
		return nil, err
	}
	start, err := toFloat(fn, "start", startV)
	if err != nil {
		return nil, err
	}
	stop, err := toFloat(fn, "stop", stopV)
	if err != nil {
		return nil, err
	}
	num, err := toInt(fn, "num", numV)
	if err != nil {
		return nil, err
	}
	if num < 0 || num > maxDim {
		return nil, valueError(fn, "num", numV, "a non-negative number of points")
	}
	dt, err := toDType(fn, "dtype", dtV)
	if err != nil {
		return nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	out, err := ex.Linspace(dt, start, stop, int(num))
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// accel.eye(n, m=None, dtype="float64")
func accelEye(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var nV, mV, dtV starlark.Value = nil, starlark.None, starlark.String("float64")
	if err := starlark.UnpackArgs(fn, args, kwargs, "n", &nV, "m?", &mV, "dtype?", &dtV); err != nil {
		return nil, err
	}
	shape, err := toShape(fn, "n", nV)
	if err != nil || len(shape) != 1 {
		return nil, typeError(fn, "n", nV, "a number of rows (int)")
	}
	rows, cols := shape[0], shape[0]
	if !isNone(mV) {
		s, err := toShape(fn, "m", mV)
		if err != nil || len(s) != 1 {
			return nil, typeError(fn, "m", mV, "a number of columns (int)")
		}
		cols = s[0]
	}
	dt, err := toDType(fn, "dtype", dtV)
	if err != nil {
		return nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	out, err := ex.Eye(dt, rows, cols)
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// accel.rand(shape, seed=None, dtype="float64"), accel.randn likewise
func randFunc(normal bool) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var shapeV, seedV, dtV starlark.Value = nil, starlark.None, starlark.String("float64")
		if err := starlark.UnpackArgs(fn, args, kwargs, "shape", &shapeV, "seed?", &seedV, "dtype?", &dtV); err != nil {
			return nil, err
		}
		shape, err := toShape(fn, "shape", shapeV)
		if err != nil {
			return nil, err
		}
		var seed uint64
		if isNone(seedV) {
			var b [8]byte
			if _, err := rand.Read(b[:]); err != nil {
				return nil, wrapErr(fn, err)
			}
			seed = binary.LittleEndian.Uint64(b[:])
		} else {
			s, err := toInt(fn, "seed", seedV)
			if err != nil {
				return nil, err
			}
			if s < 0 {
				return nil, valueError(fn, "seed", seedV, "a non-negative int")
			}
			seed = uint64(s)
		}
		dt, err := toDType(fn, "dtype", dtV)
		if err != nil {
			return nil, err
		}
		ex, ctx, err := m.env(th, fn)
		if err != nil {
			return nil, err
		}
		var out *accel.Array
		if normal {
			out, err = ex.Randn(dt, seed, shape...)
		} else {
			out, err = ex.Rand(dt, seed, shape...)
		}
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return m.wrap(ex, ctx, out), nil
	}
}

// accel.add(x, y) and the other element-wise binary functions
func binaryFunc(op accel.BinaryOp) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var xV, yV starlark.Value
		if err := starlark.UnpackArgs(fn, args, kwargs, "x", &xV, "y", &yV); err != nil {
			return nil, err
		}
		ex, ctx, err := m.env(th, fn)
		if err != nil {
			return nil, err
		}
		_, xNum := starlark.AsFloat(xV)
		_, yNum := starlark.AsFloat(yV)
		if _, isBool := xV.(starlark.Bool); isBool {
			xNum = false
		}
		if _, isBool := yV.(starlark.Bool); isBool {
			yNum = false
		}
		var out *accel.Array
		switch {
		case yNum && !xNum:
			x, release, err := m.toArray(fn, "x", ex, ctx, xV)
			if err != nil {
				return nil, err
			}
			defer release()
			s, _ := starlark.AsFloat(yV)
			out, err = ex.BinaryScalar(ctx, op, x, s)
		case xNum && !yNum:
			y, release, err := m.toArray(fn, "y", ex, ctx, yV)
			if err != nil {
				return nil, err
			}
			defer release()
			s, _ := starlark.AsFloat(xV)
			out, err = ex.ScalarBinary(ctx, op, s, y)
		default:
			x, xrel, err := m.toArray(fn, "x", ex, ctx, xV)
			if err != nil {
				return nil, err
			}
			defer xrel()
			y, yrel, err := m.toArray(fn, "y", ex, ctx, yV)
			if err != nil {
				return nil, err
			}
			defer yrel()
			out, err = ex.Binary(ctx, op, x, y)
		}
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return m.wrap(ex, ctx, out), nil
	}
}

// accel.exp(x) and the other element-wise unary functions
func unaryFunc(op accel.UnaryOp) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var xV starlark.Value
		if err := starlark.UnpackArgs(fn, args, kwargs, "x", &xV); err != nil {
			return nil, err
		}
		ex, ctx, err := m.env(th, fn)
		if err != nil {
			return nil, err
		}
		x, release, err := m.toArray(fn, "x", ex, ctx, xV)
		if err != nil {
			return nil, err
		}
		defer release()
		out, err := ex.Unary(ctx, op, x)
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return m.wrap(ex, ctx, out), nil
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

// a.sum(axis=None) and the other reductions: a number without axis, an
// array with it; argmin and argmax give ints.
func reduceMethod(op accel.ReduceOp) arrayMethod {
	return func(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var axisV starlark.Value = starlark.None
		if err := starlark.UnpackArgs(fn, args, kwargs, "axis?", &axisV); err != nil {
			return nil, err
		}
		axis, hasAxis, err := toAxis(fn, axisV)
		if err != nil {
			return nil, err
		}
		ex, ctx, arr, release, err := m.operand(a, th, fn)
		if err != nil {
			return nil, err
		}
		defer release()
		if hasAxis {
			out, err := ex.ReduceAxis(ctx, op, arr, axis)
			if err != nil {
				return nil, wrapErr(fn, err)
			}
			return m.wrap(ex, ctx, out), nil
		}
		v, err := ex.Reduce(ctx, op, arr)
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		if op == accel.OpArgMin || op == accel.OpArgMax {
			return starlark.MakeInt64(int64(v)), nil
		}
		return starlark.Float(v), nil
	}
}

// a.clip(lo=None, hi=None)
func methodClip(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var loV, hiV starlark.Value = starlark.None, starlark.None
	if err := starlark.UnpackArgs(fn, args, kwargs, "lo?", &loV, "hi?", &hiV); err != nil {
		return nil, err
	}
	lo, hi := math.Inf(-1), math.Inf(1)
	var err error
	if !isNone(loV) {
		if lo, err = toFloat(fn, "lo", loV); err != nil {
			return nil, err
		}
	}
	if !isNone(hiV) {
		if hi, err = toFloat(fn, "hi", hiV); err != nil {
			return nil, err
		}
	}
	if math.IsNaN(lo) || math.IsNaN(hi) || lo > hi {
		return nil, errorf(fn, "lo: got %v and hi %v, want lo <= hi", lo, hi)
	}
	ex, ctx, arr, release, err := m.operand(a, th, fn)
	if err != nil {
		return nil, err
	}
	defer release()
	out, err := ex.Clip(ctx, arr, lo, hi)
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// a.dot(b) -> float
func methodDot(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return m.withOther(a, th, fn, args, kwargs, func(ex *accel.Exec, ctx context.Context, x, y *accel.Array) (starlark.Value, error) {
		v, err := ex.Dot(ctx, x, y)
		return starlark.Float(v), err
	})
}

// a.matmul(b) -> array
func methodMatmul(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return m.withOther(a, th, fn, args, kwargs, func(ex *accel.Exec, ctx context.Context, x, y *accel.Array) (starlark.Value, error) {
		out, err := ex.Matmul(ctx, x, y)
		if err != nil {
			return nil, err
		}
		return m.wrap(ex, ctx, out), nil
	})
}

// withOther runs op on a's array and the method's one argument b (an
// array, or a value that converts to one), wrapping op's error with fn.
func (m *accelModule) withOther(a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple, op func(ex *accel.Exec, ctx context.Context, x, y *accel.Array) (starlark.Value, error)) (starlark.Value, error) {
	var bV starlark.Value
	if err := starlark.UnpackArgs(fn, args, kwargs, "b", &bV); err != nil {
		return nil, err
	}
	ex, ctx, arr, release, err := m.operand(a, th, fn)
	if err != nil {
		return nil, err
	}
	defer release()
	b, brel, err := m.toArray(fn, "b", ex, ctx, bV)
	if err != nil {
		return nil, err
	}
	defer brel()
	v, err := op(ex, ctx, arr, b)
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
		n, err := toInt(fn, fmt.Sprintf("%s[%d]", param, i), it)
		if err != nil {
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
	ex, ctx, arr, release, err := m.operand(a, th, fn)
	if err != nil {
		return nil, err
	}
	out, err := ex.Reshape(arr, shape...)
	if err != nil {
		release()
		return nil, wrapErr(fn, err)
	}
	// Reshape shares storage: the copy (if any) lives on in the result.
	return m.wrap(ex, ctx, out), nil
}

// a.flatten()
func methodFlatten(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn, args, kwargs); err != nil {
		return nil, err
	}
	ex, ctx, arr, release, err := m.operand(a, th, fn)
	if err != nil {
		return nil, err
	}
	defer release()
	c, err := ex.Copy(ctx, arr)
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	out, err := ex.Reshape(c, -1)
	if err != nil {
		c.Free()
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// a.transpose(*axes)
func methodTranspose(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var axes []int
	var err error
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
	if axes, err = intsArg(fn, "axes", args); err != nil {
		return nil, err
	}
	return m.apply(a, th, fn, func(ex *accel.Exec, ctx context.Context, arr *accel.Array) (*accel.Array, error) {
		return ex.Transpose(ctx, arr, axes...)
	})
}

// a.astype(dtype)
func methodAstype(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dtV starlark.Value
	if err := starlark.UnpackArgs(fn, args, kwargs, "dtype", &dtV); err != nil {
		return nil, err
	}
	dt, err := toDType(fn, "dtype", dtV)
	if err != nil {
		return nil, err
	}
	return m.apply(a, th, fn, func(ex *accel.Exec, ctx context.Context, arr *accel.Array) (*accel.Array, error) {
		return ex.AsType(ctx, arr, dt)
	})
}

// a.copy()
func methodCopy(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn, args, kwargs); err != nil {
		return nil, err
	}
	return m.apply(a, th, fn, func(ex *accel.Exec, ctx context.Context, arr *accel.Array) (*accel.Array, error) {
		return ex.Copy(ctx, arr)
	})
}

// apply runs op on a's array (on its device, under the caller's context)
// and wraps the result.
func (m *accelModule) apply(a *Array, th *starlark.Thread, fn string, op func(ex *accel.Exec, ctx context.Context, arr *accel.Array) (*accel.Array, error)) (starlark.Value, error) {
	ex, ctx, arr, release, err := m.operand(a, th, fn)
	if err != nil {
		return nil, err
	}
	defer release()
	out, err := op(ex, ctx, arr)
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return m.wrap(ex, ctx, out), nil
}

// a.tolist() -> nested lists of floats (a float for a 0-d array)
func methodTolist(m *accelModule, a *Array, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn, args, kwargs); err != nil {
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
	if err := starlark.UnpackArgs(fn, args, kwargs); err != nil {
		return nil, err
	}
	f, err := a.arr.Item()
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return starlark.Float(f), nil
}

// accel.concatenate(arrays, axis=0), accel.stack(arrays, axis=0)
func joinFunc(stack bool) accelFunc {
	return func(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var arraysV, axisV starlark.Value = nil, starlark.MakeInt(0)
		if err := starlark.UnpackArgs(fn, args, kwargs, "arrays", &arraysV, "axis?", &axisV); err != nil {
			return nil, err
		}
		if !isListLike(arraysV) {
			return nil, typeError(fn, "arrays", arraysV, "a list of arrays")
		}
		axis, _, err := toAxis(fn, axisV)
		if err != nil {
			return nil, err
		}
		ex, ctx, err := m.env(th, fn)
		if err != nil {
			return nil, err
		}
		items := listItems(arraysV)
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
			out, err = ex.Stack(ctx, arrs, axis)
		} else {
			out, err = ex.Concatenate(ctx, arrs, axis)
		}
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return m.wrap(ex, ctx, out), nil
	}
}

// mutable returns the array a names for an in-place operation, refusing
// frozen arrays and anything that is not an array.
func mutable(fn, param string, v starlark.Value) (*Array, error) {
	a, ok := v.(*Array)
	if !ok {
		return nil, typeError(fn, param, v, "an array")
	}
	if a.err != nil {
		return nil, fmt.Errorf("%s: %s: %w", fn, param, a.err)
	}
	if a.frozen.Load() {
		return nil, errorf(fn, "%s: the array is frozen (shared between threads, or a global of a loaded module) and cannot be changed in place; work on a copy: %s.copy()", param, param)
	}
	return a, nil
}

// accel.axpy(alpha, x, y): y += alpha*x, in place
func accelAxpy(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var alphaV, xV, yV starlark.Value
	if err := starlark.UnpackArgs(fn, args, kwargs, "alpha", &alphaV, "x", &xV, "y", &yV); err != nil {
		return nil, err
	}
	alpha, err := toFloat(fn, "alpha", alphaV)
	if err != nil {
		return nil, err
	}
	y, err := mutable(fn, "y", yV)
	if err != nil {
		return nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	x, release, err := m.toArray(fn, "x", ex, ctx, xV)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := ex.Axpy(ctx, alpha, x, y.arr); err != nil {
		return nil, wrapErr(fn, err)
	}
	return starlark.None, nil
}

// accel.triad(dst, b, c, s): dst = b + s*c, in place
func accelTriad(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dstV, bV, cV, sV starlark.Value
	if err := starlark.UnpackArgs(fn, args, kwargs, "dst", &dstV, "b", &bV, "c", &cV, "s", &sV); err != nil {
		return nil, err
	}
	dst, err := mutable(fn, "dst", dstV)
	if err != nil {
		return nil, err
	}
	s, err := toFloat(fn, "s", sV)
	if err != nil {
		return nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	b, brel, err := m.toArray(fn, "b", ex, ctx, bV)
	if err != nil {
		return nil, err
	}
	defer brel()
	c, crel, err := m.toArray(fn, "c", ex, ctx, cV)
	if err != nil {
		return nil, err
	}
	defer crel()
	if err := ex.Triad(ctx, dst.arr, b, c, s); err != nil {
		return nil, wrapErr(fn, err)
	}
	return starlark.None, nil
}

// accel.devices() -> list of struct(name, kind, found, reason, detail)
func accelDevices(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn, args, kwargs); err != nil {
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

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}
