package accel

import (
	"context"
	"strings"
)

// ReduceOp is a reduction of many elements to one.
type ReduceOp uint8

// The reductions.
const (
	OpSum ReduceOp = iota + 1
	OpMean
	OpMin    // NaN-propagating
	OpMax    // NaN-propagating
	OpArgMin // index of the first minimum (of the first NaN, if any)
	OpArgMax // index of the first maximum (of the first NaN, if any)
	OpNorm   // Euclidean (Frobenius) norm: sqrt of the sum of squares
)

var reduceNames = [...]string{"", "sum", "mean", "min", "max", "argmin", "argmax", "norm"}

// String returns the reduction's name, e.g. "sum".
func (op ReduceOp) String() string {
	if op > 0 && int(op) < len(reduceNames) {
		return reduceNames[op]
	}
	return "invalid"
}

// ParseReduceOp maps a name ("sum", "mean", "min", "max", "argmin",
// "argmax", "norm") to its ReduceOp.
func ParseReduceOp(name string) (ReduceOp, error) {
	for i, n := range reduceNames {
		if i > 0 && n == name {
			return ReduceOp(i), nil
		}
	}
	return 0, errorf(ErrArgument, "unknown reduction %q: allowed are %s", name, strings.Join(reduceNames[1:], ", "))
}

// needsElements reports whether the reduction has no value on empty input.
func (op ReduceOp) needsElements() bool {
	return op == OpMin || op == OpMax || op == OpArgMin || op == OpArgMax
}

func (op ReduceOp) isArg() bool { return op == OpArgMin || op == OpArgMax }

func (e *Exec) checkReduce(op ReduceOp, x *Array) error {
	if op.String() == "invalid" {
		return errorf(ErrArgument, "reduction %d is not one of %s", op, strings.Join(reduceNames[1:], ", "))
	}
	return e.checkOperands(op.String(), x)
}

// Reduce reduces all elements of x to one number. Sum, Mean and Norm of an
// empty array are 0, NaN and 0; Min, Max, ArgMin and ArgMax of an empty
// array are errors. ArgMin and ArgMax give the row-major flat index.
func (e *Exec) Reduce(ctx context.Context, op ReduceOp, x *Array) (float64, error) {
	if err := e.checkReduce(op, x); err != nil {
		return 0, err
	}
	name := op.String()
	if op.needsElements() && x.Size() == 0 {
		return 0, errorf(ErrArgument, "%s: array of shape %s is empty: %s needs at least one element", name, formatShape(x.shape), name)
	}
	dt := x.dtype
	if op.isArg() {
		dt = Float64
	}
	out, err := e.alloc(name, dt, nil)
	if err != nil {
		return 0, err
	}
	defer out.Free()
	if err := e.run(ctx, name, Op{Kind: OpReduce, Reduce: op, In: []*Array{x}, Out: out, Axis: AllAxes}); err != nil {
		return 0, err
	}
	return out.elemAt(0)
}

// ReduceAxis reduces x along one axis (negative counts from the end); the
// result has that axis removed. ArgMin and ArgMax give float64 indices along
// the axis.
func (e *Exec) ReduceAxis(ctx context.Context, op ReduceOp, x *Array, axis int) (*Array, error) {
	if err := e.checkReduce(op, x); err != nil {
		return nil, err
	}
	name := op.String()
	ax, err := normAxis(name, axis, len(x.shape))
	if err != nil {
		return nil, err
	}
	if op.needsElements() && x.shape[ax] == 0 {
		return nil, errorf(ErrArgument, "%s: axis %d of shape %s is empty: %s needs at least one element", name, axis, formatShape(x.shape), name)
	}
	shape := append(cloneInts(x.shape[:ax]), x.shape[ax+1:]...)
	dt := x.dtype
	if op.isArg() {
		dt = Float64
	}
	out, err := e.alloc(name, dt, shape)
	if err != nil {
		return nil, err
	}
	if err := e.run(ctx, name, Op{Kind: OpReduce, Reduce: op, In: []*Array{x}, Out: out, Axis: ax}); err != nil {
		out.Free()
		return nil, err
	}
	return out, nil
}

// Sum returns the sum of all elements.
func (e *Exec) Sum(ctx context.Context, x *Array) (float64, error) { return e.Reduce(ctx, OpSum, x) }

// Mean returns the arithmetic mean of all elements (NaN when empty).
func (e *Exec) Mean(ctx context.Context, x *Array) (float64, error) {
	return e.Reduce(ctx, OpMean, x)
}

// Min returns the smallest element (NaN if any element is NaN).
func (e *Exec) Min(ctx context.Context, x *Array) (float64, error) { return e.Reduce(ctx, OpMin, x) }

// Max returns the largest element (NaN if any element is NaN).
func (e *Exec) Max(ctx context.Context, x *Array) (float64, error) { return e.Reduce(ctx, OpMax, x) }

// ArgMin returns the flat row-major index of the first smallest element.
func (e *Exec) ArgMin(ctx context.Context, x *Array) (int, error) {
	v, err := e.Reduce(ctx, OpArgMin, x)
	return int(v), err
}

// ArgMax returns the flat row-major index of the first largest element.
func (e *Exec) ArgMax(ctx context.Context, x *Array) (int, error) {
	v, err := e.Reduce(ctx, OpArgMax, x)
	return int(v), err
}

// Norm returns the Euclidean norm of all elements (Frobenius for matrices).
func (e *Exec) Norm(ctx context.Context, x *Array) (float64, error) {
	return e.Reduce(ctx, OpNorm, x)
}

// Dot returns the inner product of two vectors (1-D arrays) of equal length;
// use Matmul for matrices. Mixed dtypes are computed in float64.
func (e *Exec) Dot(ctx context.Context, x, y *Array) (float64, error) {
	if err := e.checkOperands("dot", x, y); err != nil {
		return 0, err
	}
	if len(x.shape) != 1 || len(y.shape) != 1 {
		return 0, errorf(ErrShape, "dot: shapes %s and %s: dot takes two 1-D vectors (use matmul for matrices)", formatShape(x.shape), formatShape(y.shape))
	}
	if x.shape[0] != y.shape[0] {
		return 0, errorf(ErrShape, "dot: shapes %s and %s are not aligned: %d != %d", formatShape(x.shape), formatShape(y.shape), x.shape[0], y.shape[0])
	}
	dt := promote(x.dtype, y.dtype)
	xc, xdone, err := e.converted(ctx, "dot", x, dt)
	if err != nil {
		return 0, err
	}
	defer xdone()
	yc, ydone, err := e.converted(ctx, "dot", y, dt)
	if err != nil {
		return 0, err
	}
	defer ydone()
	out, err := e.alloc("dot", dt, nil)
	if err != nil {
		return 0, err
	}
	defer out.Free()
	if err := e.run(ctx, "dot", Op{Kind: OpDot, In: []*Array{xc, yc}, Out: out}); err != nil {
		return 0, err
	}
	return out.elemAt(0)
}
