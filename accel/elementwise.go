package accel

import (
	"context"
	"errors"
	"math"
	"slices"
)

func noop() {}

// converted returns a in dtype dt: a itself when it already has it, else a
// temporary copy that the caller frees with done.
func (e *Exec) converted(ctx context.Context, name string, a *Array, dt DType) (*Array, func(), error) {
	if a.dtype == dt {
		return a, noop, nil
	}
	c, err := e.alloc(name, dt, a.shape)
	if err != nil {
		return nil, nil, err
	}
	if err := e.run(ctx, name, Op{Kind: OpConvert, In: []*Array{a}, Out: c}); err != nil {
		c.Free()
		return nil, nil, err
	}
	return c, c.release, nil
}

// Binary returns x op y element by element. Shapes broadcast as in NumPy;
// mixed dtypes give float64.
func (e *Exec) Binary(ctx context.Context, op BinaryOp, x, y *Array) (*Array, error) {
	if info := e.quickBinary(ctx, op, x, y); info != nil {
		out, err := e.alloc(info.Name, x.dtype, x.shape)
		if err != nil {
			return nil, err
		}
		runQuickBinary(info, out, x, y)
		return out, nil
	}
	name := op.String()
	if err := e.checkBinary(name, op, x, y); err != nil {
		return nil, err
	}
	var buf [8]int
	shape, err := broadcastShapesBuf(buf[:0], name, x.shape, y.shape)
	if err != nil {
		return nil, err
	}
	out, err := e.alloc(name, promote(x.dtype, y.dtype), shape)
	if err != nil {
		return nil, err
	}
	if err := e.binaryInto(ctx, name, op, out, x, y); err != nil {
		out.Free()
		return nil, err
	}
	return out, nil
}

// BinaryWith is e.Binary(ctx, op, x, y) that also returns a zero W made
// in the same allocation as a small result: a language binding that wraps
// every result in a value of its own (a W holding the *Array) saves an
// allocation, and the collector an object, per small operation. The
// result and the W live as long as either is reachable. A result of more
// than 1 KiB gets a W of its own.
func BinaryWith[W any](e *Exec, ctx context.Context, op BinaryOp, x, y *Array) (*Array, *W, error) {
	if info := e.quickBinary(ctx, op, x, y); info != nil {
		var w *W
		out, err := e.allocIn(info.Name, x.dtype, x.shape, func() *tinyArray {
			both := new(struct {
				t tinyArray
				w W
			})
			w = &both.w
			return &both.t
		})
		if err != nil {
			return nil, nil, err
		}
		if w == nil {
			w = new(W)
		}
		runQuickBinary(info, out, x, y)
		return out, w, nil
	}
	out, err := e.Binary(ctx, op, x, y)
	if err != nil {
		return nil, nil, err
	}
	return out, new(W), nil
}

// BinaryInto computes x op y into out, which must have the broadcast shape
// and the result's dtype (float64 if either operand is). out may be a view,
// and may be x or y itself (an update in place); it must be writable.
func (e *Exec) BinaryInto(ctx context.Context, op BinaryOp, out, x, y *Array) error {
	if info := e.quickBinary(ctx, op, x, y); info != nil && quickOut(out, x, y) {
		runQuickBinary(info, out, x, y)
		return nil
	}
	name := op.String()
	if err := e.checkBinary(name, op, x, y); err != nil {
		return err
	}
	var buf [8]int
	shape, err := broadcastShapesBuf(buf[:0], name, x.shape, y.shape)
	if err != nil {
		return err
	}
	return e.into(name, out, promote(x.dtype, y.dtype), shape, func(dst *Array) error {
		return e.binaryInto(ctx, name, op, dst, x, y)
	})
}

// quickBinary returns op's table entry when x op y is the commonest case,
// which Binary and BinaryInto run without the general path's checks,
// conversions and chunking: a kern kernel for op, and x and y live,
// contiguous arrays in host memory of this CPU Exec, of one dtype and
// shape, small enough to need neither Options.Busy nor a check of ctx
// between chunks. Otherwise it returns nil (the general path then runs,
// and reports whatever is wrong, a done ctx included).
func (e *Exec) quickBinary(ctx context.Context, op BinaryOp, x, y *Array) *BinaryInfo {
	if !e.host || !quickHost(x) || !quickHost(y) || x.dtype != y.dtype || !slices.Equal(x.shape, y.shape) {
		return nil
	}
	info := op.info()
	if info == nil || info.kern64 == nil || info.kern32 == nil || x.Size() >= LongOpWork || ctx.Err() != nil {
		return nil
	}
	return info
}

// quickHost reports whether a is a live, contiguous array in host memory
// (the CPU's, not a device's host-visible buffer).
func quickHost(a *Array) bool {
	return a != nil && a.st != nil && a.st.dev == nil && a.strides == nil && !a.st.isFreed()
}

// quickOut reports whether out can take the result of quickBinary's x and
// y as it is: writable, of their dtype and shape, and either apart from
// each or the very same elements (an update in place).
func quickOut(out, x, y *Array) bool {
	if !quickHost(out) || out.dtype != x.dtype || !slices.Equal(out.shape, x.shape) || out.st.readOnly.Load() {
		return false
	}
	for _, in := range [2]*Array{x, y} {
		if in.st == out.st && in.off != out.off {
			return false
		}
	}
	return true
}

// runQuickBinary runs info's kernel over arrays quickBinary and quickOut
// accepted. It slices the buffers itself: hostData's generic type switch
// costs as much as a 16-element add.
func runQuickBinary(info *BinaryInfo, out, x, y *Array) {
	n := x.Size()
	if x.dtype == Float64 {
		info.kern64(out.st.host.f64[out.off:out.off+n], x.st.host.f64[x.off:x.off+n], y.st.host.f64[y.off:y.off+n])
		return
	}
	info.kern32(out.st.host.f32[out.off:out.off+n], x.st.host.f32[x.off:x.off+n], y.st.host.f32[y.off:y.off+n])
}

// into checks that out can take a result of dtype dt and shape, then has
// compute write it there.
func (e *Exec) into(name string, out *Array, dt DType, shape []int, compute func(dst *Array) error) error {
	if err := e.checkOperands(name, out); err != nil {
		return err
	}
	if err := out.writable(name); err != nil {
		return err
	}
	if !slices.Equal(out.shape, shape) {
		return errorf(ErrShape, "%s: output has shape %s but the result has shape %s", name, formatShape(out.shape), formatShape(shape))
	}
	if out.dtype != dt {
		return errorf(ErrDType, "%s: output has dtype %s but the result is %s: give an output of dtype %s", name, out.dtype, dt, dt)
	}
	return compute(out)
}

func (e *Exec) checkBinary(name string, op BinaryOp, x, y *Array) error {
	if op.info() == nil {
		return errorf(ErrArgument, "binary operation %d is not one of %s", op, binaryNames())
	}
	return e.checkOperands(name, x, y)
}

func (e *Exec) binaryInto(ctx context.Context, name string, op BinaryOp, out, x, y *Array) error {
	xc, xdone, err := e.converted(ctx, name, x, out.dtype)
	if err != nil {
		return err
	}
	defer xdone()
	yc, ydone, err := e.converted(ctx, name, y, out.dtype)
	if err != nil {
		return err
	}
	defer ydone()
	if e.hostFits(out, xc, yc) {
		// The common case, without building an Op (whose operand list would
		// be one more allocation on the path of every small operation).
		defer e.long(ctx, out.Size())()
		return wrapHostErr(ctx, name, hostBinary(ctx, op, out, xc, yc))
	}
	return e.run(ctx, name, Op{Kind: OpBinary, Binary: op, In: []*Array{xc, yc}, Out: out})
}

// hostFits reports whether an element-wise operation writing out from ins
// can run on the host as it is: see fits.
func (e *Exec) hostFits(out *Array, ins ...*Array) bool {
	if !e.host || out.strides != nil {
		return false
	}
	for _, a := range ins {
		if a.strides != nil || (a.st == out.st && a != out && overlaps(a, out) && !sameView(a, out)) {
			return false
		}
	}
	return true
}

// hostBinary is runHost for OpBinary.
func hostBinary(ctx context.Context, op BinaryOp, out, x, y *Array) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if out.dtype == Float64 {
		return binaryHost(ctx, op, hostData[float64](out), out.shape, hostData[float64](x), x.shape, hostData[float64](y), y.shape)
	}
	return binaryHost(ctx, op, hostData[float32](out), out.shape, hostData[float32](x), x.shape, hostData[float32](y), y.shape)
}

// hostBinaryScalar is runHost for OpBinaryScalar.
func hostBinaryScalar(ctx context.Context, op BinaryOp, out, x *Array, s float64, first bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if out.dtype == Float64 {
		return binaryScalarHost(ctx, op, hostData[float64](out), hostData[float64](x), s, first)
	}
	return binaryScalarHost(ctx, op, hostData[float32](out), hostData[float32](x), float32(s), first)
}

// wrapHostErr is run's error wrapping for the host fast paths.
func wrapHostErr(ctx context.Context, name string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return wrapCtx(name, err)
	}
	return err
}

// BinaryScalar returns x op s element by element; the result keeps x's dtype.
func (e *Exec) BinaryScalar(ctx context.Context, op BinaryOp, x *Array, s float64) (*Array, error) {
	return e.binaryScalar(ctx, op, nil, x, s, false)
}

// ScalarBinary returns s op x element by element (e.g. 1 - x, 2 / x); the
// result keeps x's dtype.
func (e *Exec) ScalarBinary(ctx context.Context, op BinaryOp, s float64, x *Array) (*Array, error) {
	return e.binaryScalar(ctx, op, nil, x, s, true)
}

// BinaryScalarInto computes x op s into out (see BinaryInto).
func (e *Exec) BinaryScalarInto(ctx context.Context, op BinaryOp, out, x *Array, s float64) error {
	_, err := e.binaryScalar(ctx, op, out, x, s, false)
	return err
}

// ScalarBinaryInto computes s op x into out (see BinaryInto).
func (e *Exec) ScalarBinaryInto(ctx context.Context, op BinaryOp, out *Array, s float64, x *Array) error {
	_, err := e.binaryScalar(ctx, op, out, x, s, true)
	return err
}

func (e *Exec) binaryScalar(ctx context.Context, op BinaryOp, out, x *Array, s float64, first bool) (*Array, error) {
	name := op.String()
	if err := e.checkBinary(name, op, x, x); err != nil {
		return nil, err
	}
	compute := func(dst *Array) error {
		if e.hostFits(dst, x) {
			defer e.long(ctx, dst.Size())()
			return wrapHostErr(ctx, name, hostBinaryScalar(ctx, op, dst, x, s, first))
		}
		return e.run(ctx, name, Op{Kind: OpBinaryScalar, Binary: op, In: []*Array{x}, Out: dst, Scalar: s, ScalarFirst: first})
	}
	return e.result(name, out, x.dtype, x.shape, compute)
}

// result runs compute into out (see into), or into a new array of dtype dt
// and shape when out is nil, and returns the array written.
func (e *Exec) result(name string, out *Array, dt DType, shape []int, compute func(dst *Array) error) (*Array, error) {
	if out != nil {
		return out, e.into(name, out, dt, shape, compute)
	}
	out, err := e.alloc(name, dt, shape)
	if err != nil {
		return nil, err
	}
	if err := compute(out); err != nil {
		out.Free()
		return nil, err
	}
	return out, nil
}

// Add returns x + y (broadcasting).
func (e *Exec) Add(ctx context.Context, x, y *Array) (*Array, error) {
	return e.Binary(ctx, OpAdd, x, y)
}

// Sub returns x - y (broadcasting).
func (e *Exec) Sub(ctx context.Context, x, y *Array) (*Array, error) {
	return e.Binary(ctx, OpSub, x, y)
}

// Mul returns x * y element by element (broadcasting).
func (e *Exec) Mul(ctx context.Context, x, y *Array) (*Array, error) {
	return e.Binary(ctx, OpMul, x, y)
}

// Div returns x / y element by element (broadcasting); division by zero
// gives ±Inf or NaN, as in IEEE arithmetic.
func (e *Exec) Div(ctx context.Context, x, y *Array) (*Array, error) {
	return e.Binary(ctx, OpDiv, x, y)
}

// Pow returns x ** y element by element (broadcasting).
func (e *Exec) Pow(ctx context.Context, x, y *Array) (*Array, error) {
	return e.Binary(ctx, OpPow, x, y)
}

// Maximum returns the element-wise maximum (broadcasting; NaN wins).
func (e *Exec) Maximum(ctx context.Context, x, y *Array) (*Array, error) {
	return e.Binary(ctx, OpMaximum, x, y)
}

// Minimum returns the element-wise minimum (broadcasting; NaN wins).
func (e *Exec) Minimum(ctx context.Context, x, y *Array) (*Array, error) {
	return e.Binary(ctx, OpMinimum, x, y)
}

// Unary returns op applied to every element of x.
func (e *Exec) Unary(ctx context.Context, op UnaryOp, x *Array) (*Array, error) {
	return e.unary(ctx, op, nil, x)
}

// UnaryInto computes op of every element of x into out (see BinaryInto).
func (e *Exec) UnaryInto(ctx context.Context, op UnaryOp, out, x *Array) error {
	_, err := e.unary(ctx, op, out, x)
	return err
}

func (e *Exec) unary(ctx context.Context, op UnaryOp, out, x *Array) (*Array, error) {
	name := op.String()
	if op.info() == nil {
		return nil, errorf(ErrArgument, "unary operation %d is not one of %s", op, unaryNames())
	}
	if err := e.checkOperands(name, x); err != nil {
		return nil, err
	}
	return e.result(name, out, x.dtype, x.shape, func(dst *Array) error {
		return e.run(ctx, name, Op{Kind: OpUnary, Unary: op, In: []*Array{x}, Out: dst})
	})
}

// Neg returns -x.
func (e *Exec) Neg(ctx context.Context, x *Array) (*Array, error) { return e.Unary(ctx, OpNeg, x) }

// Abs returns |x|.
func (e *Exec) Abs(ctx context.Context, x *Array) (*Array, error) { return e.Unary(ctx, OpAbs, x) }

// Exp returns e**x.
func (e *Exec) Exp(ctx context.Context, x *Array) (*Array, error) { return e.Unary(ctx, OpExp, x) }

// Log returns the natural logarithm (NaN for negative, -Inf for zero).
func (e *Exec) Log(ctx context.Context, x *Array) (*Array, error) { return e.Unary(ctx, OpLog, x) }

// Sqrt returns the square root (NaN for negative elements).
func (e *Exec) Sqrt(ctx context.Context, x *Array) (*Array, error) { return e.Unary(ctx, OpSqrt, x) }

// Tanh returns the hyperbolic tangent.
func (e *Exec) Tanh(ctx context.Context, x *Array) (*Array, error) { return e.Unary(ctx, OpTanh, x) }

// Sigmoid returns 1/(1+e**-x), computed without overflow.
func (e *Exec) Sigmoid(ctx context.Context, x *Array) (*Array, error) {
	return e.Unary(ctx, OpSigmoid, x)
}

// Relu returns max(x, 0) (NaN stays NaN).
func (e *Exec) Relu(ctx context.Context, x *Array) (*Array, error) { return e.Unary(ctx, OpRelu, x) }

// Clip returns x with every element limited to [lo, hi]; use ±Inf for a
// one-sided bound. NaN elements stay NaN.
func (e *Exec) Clip(ctx context.Context, x *Array, lo, hi float64) (*Array, error) {
	return e.clip(ctx, nil, x, lo, hi)
}

// ClipInto computes Clip into out (see BinaryInto).
func (e *Exec) ClipInto(ctx context.Context, out, x *Array, lo, hi float64) error {
	_, err := e.clip(ctx, out, x, lo, hi)
	return err
}

func (e *Exec) clip(ctx context.Context, out, x *Array, lo, hi float64) (*Array, error) {
	if err := e.checkOperands("clip", x); err != nil {
		return nil, err
	}
	if math.IsNaN(lo) || math.IsNaN(hi) || lo > hi {
		return nil, errorf(ErrArgument, "clip: bounds [%v, %v] are not an interval: need lo <= hi (use -Inf or +Inf for no bound)", lo, hi)
	}
	return e.result("clip", out, x.dtype, x.shape, func(dst *Array) error {
		return e.run(ctx, "clip", Op{Kind: OpClip, In: []*Array{x}, Out: dst, Scalar: lo, Scalar2: hi})
	})
}

// Axpy updates y in place: y += alpha*x. x and y must have the same shape
// and dtype.
func (e *Exec) Axpy(ctx context.Context, alpha float64, x, y *Array) error {
	if err := e.checkSame("axpy", x, y); err != nil {
		return err
	}
	if err := y.writable("axpy"); err != nil {
		return err
	}
	return e.run(ctx, "axpy", Op{Kind: OpAxpy, In: []*Array{x, y}, Out: y, Scalar: alpha})
}

// Triad computes dst = b + s*c in place into dst (the STREAM triad). All
// three must have the same shape and dtype; dst may be b or c.
func (e *Exec) Triad(ctx context.Context, dst, b, c *Array, s float64) error {
	if err := e.checkSame("triad", dst, b, c); err != nil {
		return err
	}
	if err := dst.writable("triad"); err != nil {
		return err
	}
	return e.run(ctx, "triad", Op{Kind: OpTriad, In: []*Array{b, c}, Out: dst, Scalar: s})
}

// checkSame checks that arrays have one shape and one dtype.
func (e *Exec) checkSame(name string, arrays ...*Array) error {
	if err := e.checkOperands(name, arrays...); err != nil {
		return err
	}
	for _, a := range arrays[1:] {
		if !slices.Equal(a.shape, arrays[0].shape) {
			return errorf(ErrShape, "%s: shapes %s and %s differ: the operands must have the same shape", name, formatShape(arrays[0].shape), formatShape(a.shape))
		}
		if a.dtype != arrays[0].dtype {
			return errorf(ErrDType, "%s: dtypes %s and %s differ: the operands must have the same dtype (convert with AsType)", name, arrays[0].dtype, a.dtype)
		}
	}
	return nil
}
