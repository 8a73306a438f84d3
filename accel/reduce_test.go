package accel

import (
	"math"
	"testing"
)

// refReduce reduces data with naive loops: the value, or the first index of
// the best value (NaN winning) for the arg reductions.
func refReduce(op ReduceOp, data []float64) float64 {
	switch op {
	case OpSum, OpMean, OpNorm:
		s := 0.0
		for _, v := range data {
			if op == OpNorm {
				s += v * v
			} else {
				s += v
			}
		}
		if op == OpMean {
			return s / float64(len(data))
		}
		if op == OpNorm {
			return math.Sqrt(s)
		}
		return s
	}
	best := 0
	for i, v := range data {
		b := data[best]
		if math.IsNaN(b) {
			break
		}
		if math.IsNaN(v) || ((op == OpMax || op == OpArgMax) && v > b) || ((op == OpMin || op == OpArgMin) && v < b) {
			best = i
		}
	}
	if op == OpArgMax || op == OpArgMin {
		return float64(best)
	}
	return data[best]
}

// sumTol is the error bound for a sum of n terms of dtype dt whose absolute
// values add up to mag.
func sumTol(dt DType, n int, mag float64) float64 {
	eps := 1.2e-16
	if dt == Float32 {
		eps = 6e-8
	}
	return 2 * float64(n+1) * eps * mag
}

var allReduce = []ReduceOp{OpSum, OpMean, OpMin, OpMax, OpArgMin, OpArgMax, OpNorm}

func TestReduce(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := newRand(t)
		e := New(Options{})
		for _, dt := range dtypes {
			for _, shape := range [][]int{{}, {1}, {1, 1}, {17}, {17, 33}, {2, 3, 5}, {3, 0}, {0}, {4, 300, 3}, {200003}} {
				x, xd := randArray(t, e, r, dt, shape...)
				mag := 0.0
				for _, v := range xd {
					mag += math.Abs(v) * 2 // covers sums of squares too (|v| < 2)
				}
				for _, op := range allReduce {
					name := op.String() + " " + dt.String() + " " + formatShape(shape)
					got, err := e.Reduce(bg, op, x)
					if len(xd) == 0 && op.needsElements() {
						wantErr(t, err, ErrArgument, op.String(), "empty")
						continue
					}
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					want := refReduce(op, xd)
					tol := sumTol(dt, len(xd), mag)
					if op == OpMean {
						tol /= float64(len(xd))
					}
					if op == OpNorm {
						tol = tol/(2*want+1e-300) + rtol(dt)*want
					}
					if !closeTo(got, want, rtol(dt), tol) {
						t.Errorf("%s = %v, want %v (tol %g)", name, got, want, tol)
					}
				}
				for axis := -len(shape); axis < len(shape); axis++ {
					ax := axis
					if ax < 0 {
						ax += len(shape)
					}
					outShape := append(append([]int{}, shape[:ax]...), shape[ax+1:]...)
					outer, n, inner := shapeSize(shape[:ax]), shape[ax], shapeSize(shape[ax+1:])
					for _, op := range allReduce {
						name := op.String() + " " + dt.String() + " " + formatShape(shape) + " axis " + itoaTest(axis)
						got, err := e.ReduceAxis(bg, op, x, axis)
						if n == 0 && op.needsElements() {
							wantErr(t, err, ErrArgument, "empty")
							continue
						}
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						want := make([]float64, outer*inner)
						col := make([]float64, n)
						for o := range outer {
							for i := range inner {
								for k := range n {
									col[k] = xd[(o*n+k)*inner+i]
								}
								want[o*inner+i] = refReduce(op, col)
								if op != OpArgMax && op != OpArgMin {
									want[o*inner+i] = round(dt, want[o*inner+i])
								}
							}
						}
						wdt := dt
						if op.isArg() {
							wdt = Float64
						}
						checkValues(t, name, got, wdt, outShape, want, 4*rtol(dt)*float64(n+1), sumTol(dt, n, 4*float64(n)))
					}
				}
			}
			_, err := e.ReduceAxis(bg, OpSum, mk(t, e, dt, []float64{1, 2}, 2), 1)
			wantErr(t, err, ErrIndex, "axis 1 is out of bounds", "dimension 1")
		}
	})
}

func itoaTest(i int) string { return formatShape([]int{i}) }

func TestReduceNaN(t *testing.T) {
	e := New(Options{})
	for _, dt := range dtypes {
		x := mk(t, e, dt, []float64{1, 5, math.NaN(), 7, math.NaN()}, 5)
		for _, op := range []ReduceOp{OpMax, OpMin} {
			if v, err := e.Reduce(bg, op, x); err != nil || !math.IsNaN(v) {
				t.Errorf("%s with NaN = %v, %v; want NaN", op, v, err)
			}
		}
		for _, op := range []ReduceOp{OpArgMax, OpArgMin} {
			if v, err := e.Reduce(bg, op, x); err != nil || v != 2 {
				t.Errorf("%s with NaN = %v, %v; want 2 (first NaN)", op, v, err)
			}
		}
		// Ties go to the first occurrence.
		y := mk(t, e, dt, []float64{3, 9, 9, 1, 1}, 5)
		if i, _ := e.ArgMax(bg, y); i != 1 {
			t.Errorf("argmax tie = %d, want 1", i)
		}
		if i, _ := e.ArgMin(bg, y); i != 3 {
			t.Errorf("argmin tie = %d, want 3", i)
		}
		// A NaN deep inside a long array still wins.
		big, _ := e.Zeros(dt, 300000)
		hb := big.host()
		if dt == Float64 {
			hb.f64[250001] = math.NaN()
		} else {
			hb.f32[250001] = float32(math.NaN())
		}
		if i, _ := e.ArgMax(bg, big); i != 250001 {
			t.Errorf("argmax of long array with one NaN = %d, want 250001", i)
		}
	}
}

func TestDot(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := newRand(t)
		e := New(Options{})
		for _, dt := range dtypes {
			for _, n := range []int{0, 1, 17, 129, 100003} {
				x, xd := randArray(t, e, r, dt, n)
				y, yd := randArray(t, e, r, dt, n)
				got, err := e.Dot(bg, x, y)
				if err != nil {
					t.Fatal(err)
				}
				want, mag := 0.0, 0.0
				for i := range xd {
					want += xd[i] * yd[i]
					mag += math.Abs(xd[i] * yd[i])
				}
				if !closeTo(got, want, 0, sumTol(dt, n, mag)) {
					t.Errorf("dot %s n=%d = %v, want %v", dt, n, got, want)
				}
			}
			a, _ := e.Zeros(dt, 3)
			b, _ := e.Zeros(dt, 4)
			_, err := e.Dot(bg, a, b)
			wantErr(t, err, ErrShape, "dot: shapes (3,) and (4,) are not aligned: 3 != 4")
			m, _ := e.Zeros(dt, 2, 2)
			_, err = e.Dot(bg, m, m)
			wantErr(t, err, ErrShape, "1-D", "matmul")
		}
		// Mixed dtypes are computed in float64.
		a := mk(t, e, Float32, []float64{1, 2, 3}, 3)
		b := mk(t, e, Float64, []float64{4, 5, 6}, 3)
		if v, err := e.Dot(bg, a, b); err != nil || v != 32 {
			t.Errorf("mixed dot = %v, %v; want 32", v, err)
		}
	})
}
