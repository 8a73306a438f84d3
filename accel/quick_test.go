package accel

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
)

// wrapper stands for a language binding's value around an array.
type wrapper struct {
	arr  *Array
	note string
}

// TestBinaryWith checks BinaryWith against Binary: small results (one
// allocation with the W), large ones, broadcasting and mixed dtypes (the
// general path), and errors.
func TestBinaryWith(t *testing.T) {
	e := New(Options{})
	defer e.Close()
	for _, c := range []struct {
		what     string
		xs, ys   []int
		xdt, ydt DType
	}{
		{"16 float64", []int{16}, []int{16}, Float64, Float64},
		{"4x8 float32", []int{4, 8}, []int{4, 8}, Float32, Float32},
		{"0-d", nil, nil, Float64, Float64},
		{"empty", []int{0, 3}, []int{0, 3}, Float64, Float64},
		{"129 float64: over 1 KiB", []int{129}, []int{129}, Float64, Float64},
		{"broadcast", []int{3, 4}, []int{4}, Float64, Float64},
		{"mixed dtypes", []int{5}, []int{5}, Float32, Float64},
	} {
		x := rnd(t, e, c.xdt, c.xs)
		y := rnd(t, e, c.ydt, c.ys)
		for _, op := range []BinaryOp{OpAdd, OpSub, OpMul, OpDiv, OpMaximum, OpPow} {
			want, err := e.Binary(bg, op, x, y)
			if err != nil {
				t.Fatal(err)
			}
			got, w, err := BinaryWith[wrapper](e, bg, op, x, y)
			if err != nil {
				t.Fatalf("%s %s: %v", c.what, op, err)
			}
			if w == nil || w.arr != nil || w.note != "" {
				t.Fatalf("%s %s: W = %+v, want a new zero value", c.what, op, w)
			}
			checkValues(t, c.what+" "+op.String(), got, want.DType(), want.Shape(), values(t, want), 0, 0)
		}
	}
	// A shape mismatch is Binary's error, and no W.
	x, y := rnd(t, e, Float64, []int{2, 3}), rnd(t, e, Float64, []int{4, 5})
	_, wantErr := e.Binary(bg, OpAdd, x, y)
	got, w, err := BinaryWith[wrapper](e, bg, OpAdd, x, y)
	if err == nil || got != nil || w != nil || err.Error() != wantErr.Error() || !errors.Is(err, ErrShape) {
		t.Errorf("BinaryWith on (2,3) and (4,5) = %v, %v, %v; want nil, nil and %v", got, w, err, wantErr)
	}
	// A done context, a freed operand, a closed Exec.
	ctx, cancel := context.WithCancel(bg)
	cancel()
	a := rnd(t, e, Float64, []int{16})
	if _, _, err := BinaryWith[wrapper](e, ctx, OpAdd, a, a); !errors.Is(err, context.Canceled) {
		t.Errorf("with a cancelled context: %v, want context.Canceled", err)
	}
	f := rnd(t, e, Float64, []int{16})
	f.Free()
	if _, _, err := BinaryWith[wrapper](e, bg, OpAdd, a, f); !errors.Is(err, ErrFreed) {
		t.Errorf("with a freed operand: %v, want ErrFreed", err)
	}
	e2 := New(Options{})
	b := rnd(t, e2, Float64, []int{16})
	e2.Close()
	if _, _, err := BinaryWith[wrapper](e2, bg, OpAdd, b, b); !errors.Is(err, ErrFreed) && !errors.Is(err, ErrClosed) {
		t.Errorf("on a closed Exec: %v, want ErrFreed or ErrClosed", err)
	}
}

// TestBinaryWithOneAllocation checks that a small result and its W are
// one allocation (the slab and the batch token, shared by many arrays,
// come now and then).
func TestBinaryWithOneAllocation(t *testing.T) {
	e := New(Options{})
	defer e.Close()
	x, y := rnd(t, e, Float64, []int{16}), rnd(t, e, Float64, []int{16})
	var keep *wrapper
	with := testing.AllocsPerRun(1000, func() {
		_, w, err := BinaryWith[wrapper](e, bg, OpAdd, x, y)
		if err != nil {
			t.Fatal(err)
		}
		keep = w
	})
	apart := testing.AllocsPerRun(1000, func() {
		out, err := e.Binary(bg, OpAdd, x, y)
		if err != nil {
			t.Fatal(err)
		}
		keep = &wrapper{arr: out}
	})
	_ = keep
	t.Logf("allocations per small add: %.2f with BinaryWith, %.2f with Binary and a wrapper", with, apart)
	if with > 1.1 || apart < 2 {
		t.Errorf("allocations per small add: %.2f with BinaryWith (want about 1), %.2f apart (want about 2)", with, apart)
	}
}

// TestBinaryIntoInPlace covers the small path's output rules: in place on
// an operand is allowed, a read-only or mis-shaped output is refused, and
// an output overlapping an operand at another offset takes the general
// path, which computes as if from copies.
func TestBinaryIntoInPlace(t *testing.T) {
	e := New(Options{})
	defer e.Close()
	a, _ := e.FromFloat64s([]float64{1, 2, 3, 4}, 4)
	b, _ := e.FromFloat64s([]float64{10, 20, 30, 40}, 4)
	if err := e.BinaryInto(bg, OpAdd, a, a, b); err != nil {
		t.Fatal(err)
	}
	checkValues(t, "a += b", a, Float64, []int{4}, []float64{11, 22, 33, 44}, 0, 0)
	if err := e.BinaryInto(bg, OpMul, b, a, b); err != nil {
		t.Fatal(err)
	}
	checkValues(t, "b = a * b", b, Float64, []int{4}, []float64{110, 440, 990, 1760}, 0, 0)
	short, _ := e.FromFloat64s([]float64{0, 0, 0}, 3)
	if err := e.BinaryInto(bg, OpAdd, short, a, b); !errors.Is(err, ErrShape) {
		t.Errorf("into a (3,) output: %v, want ErrShape", err)
	}
	f32, _ := e.Zeros(Float32, 4)
	if err := e.BinaryInto(bg, OpAdd, f32, a, b); !errors.Is(err, ErrDType) {
		t.Errorf("float64 result into a float32 output: %v, want ErrDType", err)
	}
	ro, _ := e.Zeros(Float64, 4)
	ro.SetReadOnly()
	if err := e.BinaryInto(bg, OpAdd, ro, a, b); !errors.Is(err, ErrReadOnly) {
		t.Errorf("into a read-only output: %v, want ErrReadOnly", err)
	}
	// c[1:] = c[:-1] + c[1:] on one buffer: computed from the old values.
	c, _ := e.FromFloat64s([]float64{1, 2, 3, 4, 5}, 5)
	lo, _ := e.Slice(bg, c, Range{0, 4, 1})
	hi, _ := e.Slice(bg, c, Range{1, 5, 1})
	if err := e.BinaryInto(bg, OpAdd, hi, lo, hi); err != nil {
		t.Fatal(err)
	}
	checkValues(t, "c[1:] = c[:-1] + c[1:]", c, Float64, []int{5}, []float64{1, 3, 5, 7, 9}, 0, 0)
}

// rnd is a random array of shape (nil: 0-d).
func rnd(t *testing.T, e *Exec, dt DType, shape []int) *Array {
	t.Helper()
	a, _ := randArray(t, e, testRand, dt, shape...)
	return a
}

var testRand = rand.New(rand.NewPCG(7, 17))
