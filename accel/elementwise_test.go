package accel

import (
	"math"
	"slices"
	"testing"
)

// refBinary is the reference for each binary operation, in float64.
func refBinary(op BinaryOp, a, b float64) float64 {
	switch op {
	case OpAdd:
		return a + b
	case OpSub:
		return a - b
	case OpMul:
		return a * b
	case OpDiv:
		return a / b
	case OpPow:
		return math.Pow(a, b)
	case OpMaximum:
		if math.IsNaN(a) || math.IsNaN(b) {
			return math.NaN()
		}
		return math.Max(a, b)
	case OpMinimum:
		if math.IsNaN(a) || math.IsNaN(b) {
			return math.NaN()
		}
		return math.Min(a, b)
	}
	panic("no reference for " + op.String() + ": add one to refBinary")
}

// allBinary lists every operation of the table, so that a new one is
// tested at once (refBinary panics until it has a reference).
var allBinary = func() []BinaryOp {
	var ops []BinaryOp
	for _, b := range BinaryOps() {
		ops = append(ops, b.Op)
	}
	return ops
}()

// broadcastCases pairs operand shapes with the shape they broadcast to.
var broadcastCases = []struct{ x, y, out []int }{
	{[]int{1}, []int{1}, []int{1}},
	{[]int{17}, []int{17}, []int{17}},
	{[]int{129}, []int{129}, []int{129}},
	{[]int{33, 65}, []int{33, 65}, []int{33, 65}},
	{[]int{70001}, []int{70001}, []int{70001}}, // parallel loops
	{[]int{}, []int{5}, []int{5}},
	{[]int{7, 3}, []int{}, []int{7, 3}},
	{[]int{7, 3}, []int{1}, []int{7, 3}},
	{[]int{1}, []int{127}, []int{127}},
	{[]int{17, 33}, []int{33}, []int{17, 33}},    // row vector
	{[]int{17, 33}, []int{17, 1}, []int{17, 33}}, // column vector
	{[]int{17, 1}, []int{1, 33}, []int{17, 33}},  // outer
	{[]int{2, 1, 5}, []int{3, 1}, []int{2, 3, 5}},
	{[]int{4, 1, 6, 1}, []int{5, 1, 7}, []int{4, 5, 6, 7}},
	{[]int{300, 1}, []int{1, 301}, []int{300, 301}}, // parallel broadcast
	{[]int{0, 3}, []int{3}, []int{0, 3}},
	{[]int{0}, []int{1}, []int{0}},
	{[]int{2, 0}, []int{2, 1}, []int{2, 0}},
}

func TestBroadcastShapes(t *testing.T) {
	for _, c := range broadcastCases {
		got, err := broadcastShapes("t", c.x, c.y)
		if err != nil || !slices.Equal(got, c.out) {
			t.Errorf("broadcast %v %v = %v, %v; want %v", c.x, c.y, got, err, c.out)
		}
	}
	for _, c := range [][2][]int{{{3}, {4}}, {{2, 3}, {3, 2}}, {{0}, {2}}, {{5, 4}, {5}}} {
		_, err := broadcastShapes("add", c[0], c[1])
		wantErr(t, err, ErrShape, "could not be broadcast", formatShape(c[0]), formatShape(c[1]))
	}
}

func TestBinary(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := newRand(t)
		e := New(Options{})
		for _, dt := range dtypes {
			for _, c := range broadcastCases {
				x, xd := randArray(t, e, r, dt, c.x...)
				y, yd := randArray(t, e, r, dt, c.y...)
				for _, op := range allBinary {
					got, err := e.Binary(bg, op, x, y)
					if err != nil {
						t.Fatalf("%s %s %s: %v", op, dt, shapeName(c.x, c.y), err)
					}
					n := shapeSize(c.out)
					want := make([]float64, n)
					for p := range n {
						idx := refUnravel(p, c.out)
						want[p] = round(dt, refBinary(op, xd[refIndex(idx, c.x)], yd[refIndex(idx, c.y)]))
					}
					checkValues(t, op.String()+" "+dt.String()+" "+shapeName(c.x, c.y), got, dt, c.out, want, rtol(dt), 0)
				}
			}
		}
	})
}

func TestBinaryMixedDTypeAndInto(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := newRand(t)
		e := New(Options{})
		x, xd := randArray(t, e, r, Float32, 5, 3)
		y, yd := randArray(t, e, r, Float64, 3)
		got, err := e.Sub(bg, x, y)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float64, 15)
		for i := range want {
			want[i] = xd[i] - yd[i%3]
		}
		checkValues(t, "f32-f64", got, Float64, []int{5, 3}, want, rtol(Float64), 0)

		// In place: a += b.
		a, ad := randArray(t, e, r, Float64, 129)
		b, bd := randArray(t, e, r, Float64, 129)
		if err := e.BinaryInto(bg, OpAdd, a, a, b); err != nil {
			t.Fatal(err)
		}
		for i := range ad {
			ad[i] += bd[i]
		}
		checkValues(t, "a += b", a, Float64, []int{129}, ad, rtol(Float64), 0)

		out, _ := e.Zeros(Float64, 4)
		wantErr(t, e.BinaryInto(bg, OpAdd, out, a, b), ErrShape, "output has shape (4,)", "(129,)")
		out32, _ := e.Zeros(Float32, 129)
		wantErr(t, e.BinaryInto(bg, OpAdd, out32, a, b), ErrDType, "float32", "float64")
	})
}

func TestBinaryScalar(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := newRand(t)
		e := New(Options{})
		for _, dt := range dtypes {
			for _, shape := range [][]int{{}, {1}, {17}, {33, 65}, {0, 4}, {70001}} {
				x, xd := randArray(t, e, r, dt, shape...)
				s := round(dt, r.Float64()*4-2)
				for _, op := range allBinary {
					for _, first := range []bool{false, true} {
						var got *Array
						var err error
						if first {
							got, err = e.ScalarBinary(bg, op, s, x)
						} else {
							got, err = e.BinaryScalar(bg, op, x, s)
						}
						if err != nil {
							t.Fatal(err)
						}
						want := make([]float64, len(xd))
						for i, v := range xd {
							if first {
								want[i] = round(dt, refBinary(op, s, v))
							} else {
								want[i] = round(dt, refBinary(op, v, s))
							}
						}
						name := op.String() + " scalar " + dt.String() + " " + formatShape(shape)
						if first {
							name = "scalar-first " + name
						}
						checkValues(t, name, got, dt, shape, want, rtol(dt), 0)
					}
				}
			}
		}
	})
}

func refUnary(op UnaryOp, v float64) float64 {
	switch op {
	case OpNeg:
		return -v
	case OpAbs:
		return math.Abs(v)
	case OpExp:
		return math.Exp(v)
	case OpLog:
		return math.Log(v)
	case OpSqrt:
		return math.Sqrt(v)
	case OpTanh:
		return math.Tanh(v)
	case OpSigmoid:
		return 1 / (1 + math.Exp(-v))
	case OpRelu:
		if math.IsNaN(v) {
			return v
		}
		return math.Max(v, 0)
	}
	panic("no reference for " + op.String() + ": add one to refUnary")
}

func TestUnary(t *testing.T) {
	special := []float64{0, math.Copysign(0, -1), 1, -1, math.Inf(1), math.Inf(-1), math.NaN(), 30, -30, 800, -800}
	bothPaths(t, func(t *testing.T) {
		r := newRand(t)
		e := New(Options{})
		for _, dt := range dtypes {
			for _, n := range []int{0, 1, 17, 129, 70001} {
				d := append(randData(r, dt, n), special...)
				x := mk(t, e, dt, d, len(d))
				for _, info := range UnaryOps() {
					op := info.Op
					got, err := e.Unary(bg, op, x)
					if err != nil {
						t.Fatal(err)
					}
					want := make([]float64, len(d))
					for i, v := range d {
						want[i] = round(dt, refUnary(op, v))
					}
					checkValues(t, op.String()+" "+dt.String(), got, dt, []int{len(d)}, want, rtol(dt), 1e-300)
				}
			}
		}
	})
}

func TestClip(t *testing.T) {
	r := newRand(t)
	e := New(Options{})
	for _, dt := range dtypes {
		x, xd := randArray(t, e, r, dt, 65, 3)
		got, err := e.Clip(bg, x, -0.5, 0.75)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float64, len(xd))
		for i, v := range xd {
			want[i] = math.Min(math.Max(v, -0.5), 0.75)
		}
		checkValues(t, "clip", got, dt, []int{65, 3}, want, 0, 0)
		_, err = e.Clip(bg, x, 1, 0)
		wantErr(t, err, ErrArgument, "clip", "lo <= hi")
		if _, err := e.Clip(bg, x, math.Inf(-1), math.Inf(1)); err != nil {
			t.Fatalf("unbounded clip: %v", err)
		}
	}
}

func TestAxpyTriad(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := newRand(t)
		e := New(Options{})
		for _, dt := range dtypes {
			for _, shape := range [][]int{{0}, {1}, {17}, {33, 65}, {70001}} {
				x, xd := randArray(t, e, r, dt, shape...)
				y, yd := randArray(t, e, r, dt, shape...)
				alpha := round(dt, r.Float64()*4-2)
				if err := e.Axpy(bg, alpha, x, y); err != nil {
					t.Fatal(err)
				}
				want := make([]float64, len(yd))
				for i := range yd {
					want[i] = yd[i] + alpha*xd[i]
				}
				// FMA kernels round once, the reference twice: allow an ulp
				// of the operands' scale.
				checkValues(t, "axpy "+dt.String(), y, dt, shape, want, rtol(dt), 4*rtol(dt))

				dst, _ := e.Zeros(dt, shape...)
				if err := e.Triad(bg, dst, x, y, alpha); err != nil {
					t.Fatal(err)
				}
				yv := values(t, y)
				for i := range want {
					want[i] = xd[i] + alpha*yv[i]
				}
				checkValues(t, "triad "+dt.String(), dst, dt, shape, want, rtol(dt), 4*rtol(dt))
			}
			a, _ := e.Zeros(dt, 3)
			b, _ := e.Zeros(dt, 4)
			wantErr(t, e.Axpy(bg, 1, a, b), ErrShape, "axpy", "(3,)", "(4,)")
			c, _ := e.Zeros(other(dt), 3)
			wantErr(t, e.Triad(bg, a, a, c, 1), ErrDType, "triad")
		}
	})
}

// TestMinMaxNaN: NaN wins over infinities too (math.Min(-Inf, NaN) is -Inf;
// NumPy's minimum gives nan). Found by FuzzAccel.
func TestMinMaxNaN(t *testing.T) {
	e := New(Options{})
	for _, dt := range dtypes {
		x := mk(t, e, dt, []float64{math.Inf(-1), math.Inf(1), math.NaN(), 1}, 4)
		y := mk(t, e, dt, []float64{math.NaN(), math.NaN(), math.Inf(-1), math.NaN()}, 4)
		for _, op := range []BinaryOp{OpMinimum, OpMaximum} {
			got, err := e.Binary(bg, op, x, y)
			if err != nil {
				t.Fatal(err)
			}
			checkValues(t, op.String(), got, dt, []int{4}, []float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}, 0, 0)
			s, _ := e.BinaryScalar(bg, op, x, math.NaN())
			checkValues(t, op.String()+" scalar", s, dt, []int{4}, []float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}, 0, 0)
		}
	}
}
