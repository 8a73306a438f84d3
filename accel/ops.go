package accel

import (
	"math"
	"strings"

	"github.com/autonode/autonode/accel/internal/kern"
)

// The element-wise operations are defined once, in binaryTable and
// unaryTable below. Everything else is derived from these tables: the CPU
// kernels (runHost), the device functions of the OpenCL, CUDA and Metal
// backends (internal/gpukern/ops.go, generated from Device by
// `go generate ./accel/...`), the Starlark functions accel.<Name> and their
// documentation (package builtins), and the conformance suite (acceltest).
// CONTRIBUTING.md has the recipe for adding one.

// BinaryOp is an element-wise operation of two operands.
type BinaryOp uint8

// The element-wise binary operations; each is a row of binaryTable.
const (
	OpAdd BinaryOp = iota + 1
	OpSub
	OpMul
	OpDiv
	OpPow
	OpMaximum // NaN-propagating, like NumPy's maximum
	OpMinimum // NaN-propagating, like NumPy's minimum
)

// UnaryOp is an element-wise operation of one operand.
type UnaryOp uint8

// The element-wise unary operations; each is a row of unaryTable.
const (
	OpNeg UnaryOp = iota + 1
	OpAbs
	OpExp
	OpLog
	OpSqrt
	OpTanh
	OpSigmoid
	OpRelu
)

// BinaryInfo describes one element-wise binary operation.
type BinaryInfo struct {
	Op BinaryOp
	// Name is the operation's name: the Starlark function accel.<Name>,
	// and the prefix of its error messages ("add: operands could not be
	// broadcast ...").
	Name string
	// Alias is another name ParseBinaryOp accepts ("sub"), or "".
	Alias string
	// Symbol is the Starlark operator that computes it ("+"), or "".
	Symbol string
	// Doc is a one-line summary; Detail (may be empty) says more. Both
	// are the Starlark documentation.
	Doc, Detail string
	// F64 computes one float64 element; F32 one float32 element (nil:
	// F64 rounded to float32).
	F64 func(a, b float64) float64
	F32 func(a, b float32) float32
	// Device is the body of the device function in C, over a and b of
	// type T (OpenCL C, CUDA C++ and the Metal Shading Language accept the
	// same text): "return a + b;".
	Device string

	// Optional fast paths of the CPU backend (package kern): dst = x op y
	// on equal-length slices, and dst = x op s.
	kern64 func(dst, x, y []float64)
	kern32 func(dst, x, y []float32)
	scal64 func(dst, x []float64, s float64)
	scal32 func(dst, x []float32, s float32)
}

// UnaryInfo describes one element-wise unary operation; the fields are as
// in BinaryInfo, Device being the body of a device function of v.
type UnaryInfo struct {
	Op          UnaryOp
	Name, Alias string
	Doc, Detail string
	F64         func(v float64) float64
	F32         func(v float32) float32
	Device      string
}

// subScalar64 computes x - s as x + (-s), which is exact.
func subScalar64(dst, x []float64, s float64) { kern.AddScalarF64(dst, x, -s) }
func subScalar32(dst, x []float32, s float32) { kern.AddScalarF32(dst, x, -s) }

// maximum and minimum propagate NaN, as NumPy's do (math.Max and math.Min
// let an infinity win over NaN: Min(-Inf, NaN) is -Inf).
func maximum(a, b float64) float64 {
	if a != a || b != b {
		return math.NaN()
	}
	return math.Max(a, b)
}

func minimum(a, b float64) float64 {
	if a != a || b != b {
		return math.NaN()
	}
	return math.Min(a, b)
}

var binaryTable = []BinaryInfo{
	{Op: OpAdd, Name: "add", Symbol: "+", Doc: "Add element-wise.",
		F64: func(a, b float64) float64 { return a + b }, F32: func(a, b float32) float32 { return a + b },
		Device: "return a + b;",
		kern64: kern.AddF64, kern32: kern.AddF32, scal64: kern.AddScalarF64, scal32: kern.AddScalarF32},
	{Op: OpSub, Name: "subtract", Alias: "sub", Symbol: "-", Doc: "Subtract element-wise.",
		F64: func(a, b float64) float64 { return a - b }, F32: func(a, b float32) float32 { return a - b },
		Device: "return a - b;",
		kern64: kern.SubF64, kern32: kern.SubF32, scal64: subScalar64, scal32: subScalar32},
	{Op: OpMul, Name: "multiply", Alias: "mul", Symbol: "*", Doc: "Multiply element-wise.",
		F64: func(a, b float64) float64 { return a * b }, F32: func(a, b float32) float32 { return a * b },
		Device: "return a * b;",
		kern64: kern.MulF64, kern32: kern.MulF32, scal64: kern.MulScalarF64, scal32: kern.MulScalarF32},
	{Op: OpDiv, Name: "divide", Alias: "div", Symbol: "/", Doc: "Divide element-wise.",
		Detail: "IEEE arithmetic: x / 0 is inf, -inf or nan.",
		F64:    func(a, b float64) float64 { return a / b }, F32: func(a, b float32) float32 { return a / b },
		Device: "return a / b;",
		kern64: kern.DivF64, kern32: kern.DivF32},
	{Op: OpPow, Name: "power", Alias: "pow", Doc: "Raise to a power element-wise.",
		Detail: "Starlark has no ** operator: write accel.power(a, 2).",
		F64:    math.Pow, Device: "return pow(a, b);"},
	{Op: OpMaximum, Name: "maximum", Doc: "Element-wise maximum (NaN propagates).",
		F64: maximum, Device: "if (a != a || b != b) return a + b; return a > b ? a : b;"},
	{Op: OpMinimum, Name: "minimum", Doc: "Element-wise minimum (NaN propagates).",
		F64: minimum, Device: "if (a != a || b != b) return a + b; return a < b ? a : b;"},
}

var unaryTable = []UnaryInfo{
	{Op: OpNeg, Name: "negative", Alias: "neg", Doc: "Negate element-wise.", Detail: "Same as -x.",
		F64: func(v float64) float64 { return -v }, F32: func(v float32) float32 { return -v },
		Device: "return -v;"},
	{Op: OpAbs, Name: "abs", Doc: "Absolute value element-wise.",
		F64: math.Abs, Device: "return fabs(v);"},
	{Op: OpExp, Name: "exp", Doc: "Exponential element-wise.",
		F64: math.Exp, Device: "return exp(v);"},
	{Op: OpLog, Name: "log", Doc: "Natural logarithm element-wise.", Detail: "log of a negative number is nan, log(0) is -inf.",
		F64: math.Log, Device: "return log(v);"},
	{Op: OpSqrt, Name: "sqrt", Doc: "Square root element-wise.", Detail: "sqrt of a negative number is nan.",
		F64: math.Sqrt, Device: "return sqrt(v);"},
	{Op: OpTanh, Name: "tanh", Doc: "Hyperbolic tangent element-wise.",
		F64: math.Tanh, Device: "return tanh(v);"},
	{Op: OpSigmoid, Name: "sigmoid", Doc: "Logistic sigmoid 1/(1+exp(-x)) element-wise.", Detail: "Computed without overflow for large |x|.",
		F64:    sigmoid,
		Device: "if (v >= (T)0) return (T)1 / ((T)1 + exp(-v)); { T e = exp(v); return e / ((T)1 + e); }"},
	{Op: OpRelu, Name: "relu", Doc: "Rectified linear unit max(x, 0) element-wise.", Detail: "nan stays nan.",
		F64:    relu[float64],
		F32:    relu[float32],
		Device: "return (v > (T)0 || v != v) ? v : (T)0;"},
}

// sigmoid is 1/(1+e^-x), written so that neither branch overflows.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func relu[T float](v T) T {
	if v > 0 || v != v {
		return v
	}
	return 0
}

func init() {
	for i := range binaryTable {
		b := &binaryTable[i]
		if int(b.Op) != i+1 {
			panic("accel: binaryTable is out of order at " + b.Name)
		}
		if b.F32 == nil {
			f := b.F64
			b.F32 = func(x, y float32) float32 { return float32(f(float64(x), float64(y))) }
		}
	}
	for i := range unaryTable {
		u := &unaryTable[i]
		if int(u.Op) != i+1 {
			panic("accel: unaryTable is out of order at " + u.Name)
		}
		if u.F32 == nil {
			f := u.F64
			u.F32 = func(v float32) float32 { return float32(f(float64(v))) }
		}
	}
}

// BinaryOps returns the element-wise binary operations, in BinaryOp order.
func BinaryOps() []BinaryInfo { return append([]BinaryInfo(nil), binaryTable...) }

// UnaryOps returns the element-wise unary operations, in UnaryOp order.
func UnaryOps() []UnaryInfo { return append([]UnaryInfo(nil), unaryTable...) }

func (op BinaryOp) info() *BinaryInfo {
	if op == 0 || int(op) > len(binaryTable) {
		return nil
	}
	return &binaryTable[op-1]
}

func (op UnaryOp) info() *UnaryInfo {
	if op == 0 || int(op) > len(unaryTable) {
		return nil
	}
	return &unaryTable[op-1]
}

// String returns the operation's name, e.g. "add" or "subtract".
func (op BinaryOp) String() string {
	if i := op.info(); i != nil {
		return i.Name
	}
	return "invalid"
}

// String returns the operation's name, e.g. "exp".
func (op UnaryOp) String() string {
	if i := op.info(); i != nil {
		return i.Name
	}
	return "invalid"
}

// ParseBinaryOp maps a name ("add", "subtract", ...; see BinaryOps) or its
// alias ("sub") to its BinaryOp.
func ParseBinaryOp(name string) (BinaryOp, error) {
	for _, b := range binaryTable {
		if name == b.Name || (b.Alias != "" && name == b.Alias) {
			return b.Op, nil
		}
	}
	return 0, errorf(ErrArgument, "unknown binary operation %q: allowed are %s", name, binaryNames())
}

// ParseUnaryOp maps a name ("negative", "exp", ...; see UnaryOps) or its
// alias ("neg") to its UnaryOp.
func ParseUnaryOp(name string) (UnaryOp, error) {
	for _, u := range unaryTable {
		if name == u.Name || (u.Alias != "" && name == u.Alias) {
			return u.Op, nil
		}
	}
	return 0, errorf(ErrArgument, "unknown unary operation %q: allowed are %s", name, unaryNames())
}

func binaryNames() string {
	names := make([]string, len(binaryTable))
	for i, b := range binaryTable {
		names[i] = b.Name
	}
	return strings.Join(names, ", ")
}

func unaryNames() string {
	names := make([]string, len(unaryTable))
	for i, u := range unaryTable {
		names[i] = u.Name
	}
	return strings.Join(names, ", ")
}
