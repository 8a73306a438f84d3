package builtins

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/autonode/autonode/accel"
)

// accelFuzzEngine gives every call a CPU Exec with a small budget and
// refuses host access (save and load must not touch files here).
type accelFuzzEngine struct {
	nilEngine
	ex *accel.Exec
}

func (e *accelFuzzEngine) Accel(*starlark.Thread) *accel.Exec { return e.ex }
func (e *accelFuzzEngine) HostAccess(*starlark.Thread, string) error {
	return errors.New("refused: no host access while fuzzing")
}

// fuzzBytes hands out the fuzzer's bytes; past the end it gives zeros.
type fuzzBytes []byte

func (b *fuzzBytes) next() int {
	if len(*b) == 0 {
		return 0
	}
	v := (*b)[0]
	*b = (*b)[1:]
	return int(v)
}

var fuzzElements = []float64{0, 1, -1, 0.5, -2.25, 3, 7, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e300, 1e-300, 2, -0.125, 100}

// array makes a random array value: rank 0-3, dimensions 0-4, either
// dtype, elements from fuzzElements; sometimes a strided view of one.
func (b *fuzzBytes) array(m *accelModule, ex *accel.Exec) *Array {
	nd := b.next() % 4
	shape := make([]int, nd)
	for i := range shape {
		shape[i] = b.next() % 5
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = fuzzElements[b.next()%len(fuzzElements)]
	}
	a, err := ex.FromFloat64s(data, shape...)
	if err != nil {
		panic(err)
	}
	if b.next()%3 == 0 {
		a, _ = ex.AsType(context.Background(), a, accel.Float32)
	}
	switch b.next() % 4 {
	case 0:
		if nd > 1 {
			a, _ = ex.Transpose(context.Background(), a)
		}
	case 1:
		if nd > 0 && shape[0] > 0 {
			a, _ = ex.Slice(context.Background(), a, accel.Range{Start: shape[0] - 1, Stop: math.MinInt, Step: -1})
		}
	}
	return m.wrap(ex, context.Background(), a)
}

// value makes a random argument: an array, a number, None, a bool, a
// string, or a (possibly nested, possibly ragged) list or tuple.
func (b *fuzzBytes) value(m *accelModule, ex *accel.Exec, depth int) starlark.Value {
	switch k := b.next() % 12; {
	case k <= 3:
		return b.array(m, ex)
	case k == 4:
		return starlark.MakeInt([]int{0, 1, 2, 3, -1, 5, 1 << 40}[b.next()%7])
	case k == 5:
		return starlark.Float(fuzzElements[b.next()%len(fuzzElements)])
	case k == 6:
		return starlark.None
	case k == 7:
		return starlark.Bool(b.next()%2 == 0)
	case k == 8:
		return starlark.String([]string{"float32", "float64", "int8", "", "x"}[b.next()%5])
	case k == 9 && depth < 2:
		n := b.next() % 4
		items := make([]starlark.Value, n)
		for i := range items {
			items[i] = b.value(m, ex, depth+1)
		}
		if b.next()%2 == 0 {
			return starlark.Tuple(items)
		}
		return starlark.NewList(items)
	case k == 10:
		return starlark.Tuple{starlark.MakeInt(b.next() % 4), starlark.MakeInt(b.next() % 4)}
	}
	return starlark.NewList([]starlark.Value{starlark.MakeInt(1), starlark.Float(2.5), starlark.MakeInt(-3)})
}

var fuzzKeywords = []string{"out", "axis", "keepdims", "dtype", "lo", "hi", "seed", "num", "m", "axes", "shape", "stop", "step", "b", "y", "value"}

// accelFuzzTargets lists what FuzzAccel calls: every accel function, every
// array method, the operators, indexing, assignment and slicing.
func accelFuzzTargets() []string {
	var out []string
	for name := range accelFuncs {
		out = append(out, "accel."+name)
	}
	for name := range arrayMethods {
		out = append(out, "array."+name)
	}
	out = append(out, "OP+", "OP-", "OP*", "OP/", "NEG", "GET", "SET", "SLICE", "ITER", "ATTR")
	slices.Sort(out)
	return out
}

// FuzzAccel calls every accel function and method with random shapes,
// dtypes, scalars, None and lists. No input may panic (the wrappers would
// report "internal error", which fails the test); element-wise functions
// must agree with the broadcasting rule written out below, with a scalar
// reference for their values, and with their operator.
func FuzzAccel(f *testing.F) {
	targets := accelFuzzTargets()
	for i := range targets {
		f.Add(uint16(i), []byte{2, 0, 1, 4, 9, 2, 3, 1, 0, 0, 5, 7})
		f.Add(uint16(i), []byte{1, 3, 3, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0, 0, 9, 1, 2})
	}
	f.Fuzz(func(t *testing.T, which uint16, data []byte) {
		ex := accel.New(accel.Options{Budget: accel.NewBudget(8 << 20)})
		defer ex.Close()
		eng := &accelFuzzEngine{ex: ex}
		m := &accelModule{e: eng}
		mod := newAccelModule(eng)
		th := &starlark.Thread{Name: "fuzz"}
		b := fuzzBytes(data)
		target := targets[int(which)%len(targets)]
		before := InternalErrors()
		nargs := b.next() % 4
		args := make(starlark.Tuple, nargs)
		for i := range args {
			args[i] = b.value(m, ex, 0)
		}
		var kwargs []starlark.Tuple
		if b.next()%3 == 0 {
			kw := fuzzKeywords[b.next()%len(fuzzKeywords)]
			kwargs = append(kwargs, starlark.Tuple{starlark.String(kw), b.value(m, ex, 0)})
		}
		var err error
		var res starlark.Value
		switch target {
		case "OP+", "OP-", "OP*", "OP/":
			tok := map[string]syntax.Token{"OP+": syntax.PLUS, "OP-": syntax.MINUS, "OP*": syntax.STAR, "OP/": syntax.SLASH}[target]
			x, y := b.array(m, ex), b.value(m, ex, 0)
			if b.next()%2 == 0 {
				res, err = starlark.Binary(tok, x, y)
			} else {
				res, err = starlark.Binary(tok, y, x)
			}
		case "NEG":
			res, err = starlark.Unary(syntax.MINUS, b.array(m, ex))
		case "GET":
			res, err = starlark.Call(th, starlark.NewBuiltin("get", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
				v, _, err := b.array(m, ex).Get(b.value(m, ex, 0))
				return v, err
			}), nil, nil)
		case "SET":
			err = b.array(m, ex).SetKey(b.value(m, ex, 0), b.value(m, ex, 0))
		case "SLICE":
			a := b.array(m, ex)
			res = a.Slice(b.next()%6-1, b.next()%6-1, []int{1, 2, -1, -2}[b.next()%4])
			_ = res.String()
		case "ITER":
			a := b.array(m, ex)
			var v starlark.Value
			for it := a.Iterate(); it.Next(&v); {
				_ = v.String()
			}
		case "ATTR":
			a := b.array(m, ex)
			for _, name := range a.AttrNames() {
				if _, err := a.Attr(name); err != nil && strings.Contains(err.Error(), "internal error") {
					t.Fatalf("array.%s: %v", name, err)
				}
			}
			_, _ = a.MarshalJSON()
		default:
			var fn starlark.Value
			if name, ok := strings.CutPrefix(target, "accel."); ok {
				fn = mod.Members[name]
			} else {
				fn, _ = b.array(m, ex).Attr(strings.TrimPrefix(target, "array."))
			}
			res, err = starlark.Call(th, fn, args, kwargs)
		}
		if err != nil && (errors.Is(err, ErrInternal) || strings.Contains(err.Error(), "internal error")) {
			t.Fatalf("%s%v %v: %v", target, args, kwargs, err)
		}
		if n := InternalErrors() - before; n > 0 {
			t.Fatalf("%s%v %v: %d panics were recovered", target, args, kwargs, n)
		}
		if res != nil {
			_ = res.String()
		}
		name := strings.TrimPrefix(target, "accel.")
		for _, op := range accel.BinaryOps() {
			if name == op.Name && len(kwargs) == 0 && len(args) == 2 {
				checkBinaryOracle(t, op, args[0], args[1], res, err)
			}
		}
		for _, op := range accel.UnaryOps() {
			if name == op.Name && len(kwargs) == 0 && len(args) == 1 {
				checkUnaryOracle(t, op, args[0], res, err)
			}
		}
	})
}

// operandOf reads an operand the way accel's functions see it: its shape,
// dtype (float64 for lists and numbers) and elements, or ok false when it
// is not an operand.
func operandOf(v starlark.Value) (shape []int, dt accel.DType, data []float64, num, ok bool) {
	switch x := v.(type) {
	case *Array:
		d, err := x.arr.Float64s()
		if err != nil {
			return nil, 0, nil, false, false
		}
		return x.arr.Shape(), x.arr.DType(), d, false, true
	case starlark.Int, starlark.Float:
		f, _ := starlark.AsFloat(x)
		return nil, accel.Float64, []float64{f}, true, true
	}
	return nil, 0, nil, false, false
}

// refBroadcast is NumPy's rule, written out: shapes align at the last axis
// and each axis must be equal or 1.
func refBroadcast(a, b []int) ([]int, bool) {
	nd := max(len(a), len(b))
	out := make([]int, nd)
	for i := 1; i <= nd; i++ {
		x, y := 1, 1
		if i <= len(a) {
			x = a[len(a)-i]
		}
		if i <= len(b) {
			y = b[len(b)-i]
		}
		switch {
		case x == y || y == 1:
			out[nd-i] = x
		case x == 1:
			out[nd-i] = y
		default:
			return nil, false
		}
	}
	return out, true
}

// refAt reads the element of data (of shape) that position idx of the
// broadcast result reads.
func refAt(data []float64, shape, idx []int) float64 {
	off := len(idx) - len(shape)
	p := 0
	for d, n := range shape {
		i := idx[off+d]
		if n == 1 {
			i = 0
		}
		p = p*n + i
	}
	return data[p]
}

func refElement(op accel.BinaryOp, a, b float64) float64 {
	switch op {
	case accel.OpAdd:
		return a + b
	case accel.OpSub:
		return a - b
	case accel.OpMul:
		return a * b
	case accel.OpDiv:
		return a / b
	case accel.OpPow:
		return math.Pow(a, b)
	case accel.OpMaximum, accel.OpMinimum:
		if a != a || b != b {
			return math.NaN()
		}
		if op == accel.OpMaximum {
			return math.Max(a, b)
		}
		return math.Min(a, b)
	}
	panic("no reference for " + op.String() + ": add it to refElement")
}

func sameFloat(got, want float64, dt accel.DType) bool {
	if dt == accel.Float32 {
		want = float64(float32(want))
	}
	switch {
	case math.IsNaN(want) || math.IsNaN(got):
		return math.IsNaN(want) && math.IsNaN(got)
	case math.IsInf(want, 0) || math.IsInf(got, 0):
		return got == want || (dt == accel.Float32 && math.Abs(want) > math.MaxFloat32)
	}
	tol := 1e-12
	if dt == accel.Float32 {
		tol = 1e-6
	}
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

func checkBinaryOracle(t *testing.T, op accel.BinaryInfo, x, y, res starlark.Value, err error) {
	xs, xdt, xd, xNum, ok1 := operandOf(x)
	ys, ydt, yd, yNum, ok2 := operandOf(y)
	if !ok1 || !ok2 {
		return
	}
	shape, ok := refBroadcast(xs, ys)
	if !ok {
		if err == nil || !strings.Contains(err.Error(), "operands could not be broadcast together") {
			t.Fatalf("accel.%s on %v and %v: want a broadcast error, got %v, %v", op.Name, xs, ys, res, err)
		}
		if op.Symbol != "" {
			_, opErr := starlark.Binary(symbolToken(op.Symbol), x, y)
			if opErr == nil || after(opErr.Error(), ": ") != after(err.Error(), ": ") {
				t.Fatalf("x %s y raised %v but accel.%s raised %v", op.Symbol, opErr, op.Name, err)
			}
		}
		return
	}
	if err != nil {
		if errors.Is(err, accel.ErrBudget) {
			return
		}
		t.Fatalf("accel.%s on %v and %v: %v", op.Name, xs, ys, err)
	}
	dt := accel.Float64
	switch {
	case xNum && !yNum:
		dt = ydt
	case yNum && !xNum:
		dt = xdt
	case xdt == accel.Float32 && ydt == accel.Float32:
		dt = accel.Float32
	}
	r := res.(*Array)
	if r.arr.DType() != dt || !slices.Equal(r.arr.Shape(), shape) {
		t.Fatalf("accel.%s on %v %s and %v %s: result %v %s, want %v %s", op.Name, xs, xdt, ys, ydt, r.arr.Shape(), r.arr.DType(), shape, dt)
	}
	got, _ := r.arr.Float64s()
	n := len(got)
	for p := range n {
		idx := make([]int, len(shape))
		q := p
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d] = q % shape[d]
			q /= shape[d]
		}
		a, b := refAt(xd, xs, idx), refAt(yd, ys, idx)
		if dt == accel.Float32 { // computed in float32 from rounded operands
			a, b = float64(float32(a)), float64(float32(b))
		}
		if want := refElement(op.Op, a, b); !sameFloat(got[p], want, dt) {
			t.Fatalf("accel.%s(%v, %v)[%v] = %v, want %v", op.Name, a, b, idx, got[p], want)
		}
	}
	if op.Symbol != "" {
		viaOp, opErr := starlark.Binary(symbolToken(op.Symbol), x, y)
		if _, isArr := x.(*Array); !isArr {
			if _, isArr := y.(*Array); !isArr {
				return // numbers only: the operator is Starlark's own
			}
		}
		if opErr != nil {
			t.Fatalf("accel.%s succeeded but x %s y failed: %v", op.Name, op.Symbol, opErr)
		}
		o, _ := viaOp.(*Array).arr.Float64s()
		for i := range o {
			if !sameFloat(o[i], got[i], dt) {
				t.Fatalf("x %s y and accel.%s differ at %d: %v vs %v", op.Symbol, op.Name, i, o[i], got[i])
			}
		}
	}
}

func checkUnaryOracle(t *testing.T, op accel.UnaryInfo, x, res starlark.Value, err error) {
	xs, xdt, xd, _, ok := operandOf(x)
	if !ok {
		return
	}
	if err != nil {
		if errors.Is(err, accel.ErrBudget) {
			return
		}
		t.Fatalf("accel.%s on %v: %v", op.Name, xs, err)
	}
	r := res.(*Array)
	if !slices.Equal(r.arr.Shape(), xs) || r.arr.DType() != xdt {
		t.Fatalf("accel.%s on %v %s: result %v %s", op.Name, xs, xdt, r.arr.Shape(), r.arr.DType())
	}
	got, _ := r.arr.Float64s()
	for i, v := range xd {
		var want float64
		switch op.Op {
		case accel.OpNeg:
			want = -v
		case accel.OpAbs:
			want = math.Abs(v)
		case accel.OpExp:
			want = math.Exp(v)
		case accel.OpLog:
			want = math.Log(v)
		case accel.OpSqrt:
			want = math.Sqrt(v)
		case accel.OpTanh:
			want = math.Tanh(v)
		case accel.OpSigmoid:
			want = 1 / (1 + math.Exp(-v))
		case accel.OpRelu:
			want = v
			if v <= 0 {
				want = 0
			}
		default:
			panic("no reference for " + op.Name + ": add it to checkUnaryOracle")
		}
		if xdt == accel.Float32 && op.Op != accel.OpNeg && op.Op != accel.OpAbs && op.Op != accel.OpRelu {
			// float32 transcendental results round twice: compare loosely.
			if !sameFloat(got[i], want, accel.Float32) && math.Abs(got[i]-want) > 1e-6*math.Max(1, math.Abs(want)) {
				t.Fatalf("accel.%s(%v) = %v, want %v", op.Name, v, got[i], want)
			}
			continue
		}
		if !sameFloat(got[i], want, xdt) {
			t.Fatalf("accel.%s(%v) = %v, want %v", op.Name, v, got[i], want)
		}
	}
}

func symbolToken(sym string) syntax.Token {
	for tok := syntax.PLUS; tok <= syntax.GTGT; tok++ {
		if tok.String() == sym {
			return tok
		}
	}
	panic("no token " + sym)
}

// after returns what follows the first sep in s.
func after(s, sep string) string {
	_, rest, _ := strings.Cut(s, sep)
	return rest
}

// TestAccelFuzzTargets checks that the fuzz target covers every accel
// function and array method.
func TestAccelFuzzTargets(t *testing.T) {
	targets := accelFuzzTargets()
	mod := newAccelModule(nilEngine{})
	for name := range mod.Members {
		if !slices.Contains(targets, "accel."+name) {
			t.Errorf("FuzzAccel does not call accel.%s", name)
		}
	}
	_ = starlarkstruct.Default
	_ = fmt.Sprint
}
