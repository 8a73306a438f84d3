package accel

import (
	"errors"
	"math"
	"testing"
)

// shapeFrom decodes a small shape from fuzz bytes: first the rank (0..4),
// then one dimension (0..5) per axis.
func shapeFrom(b []byte) ([]int, []byte) {
	if len(b) == 0 {
		return nil, b
	}
	nd := int(b[0] % 5)
	b = b[1:]
	shape := make([]int, 0, nd)
	for i := 0; i < nd; i++ {
		d := 1
		if i < len(b) {
			d = int(b[i] % 6)
		}
		shape = append(shape, d)
	}
	return shape, b[min(nd, len(b)):]
}

// FuzzBroadcast checks that binary operations on arbitrary small shapes
// never panic, fail exactly when NumPy's rules say so, and otherwise agree
// with the reference.
func FuzzBroadcast(f *testing.F) {
	f.Add([]byte{2, 3, 1, 1, 4}, uint8(0))
	f.Add([]byte{3, 2, 1, 5, 2, 3, 1}, uint8(3))
	f.Add([]byte{1, 0, 1, 1}, uint8(5))
	f.Add([]byte{0, 4, 2, 2, 2, 2}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, opByte uint8) {
		xs, rest := shapeFrom(data)
		ys, _ := shapeFrom(rest)
		op := allBinary[int(opByte)%len(allBinary)]
		e := New(Options{})
		dt := Float64
		if opByte&0x80 != 0 {
			dt = Float32
		}
		n := shapeSize(xs)
		xd := make([]float64, n)
		for i := range xd {
			xd[i] = float64(i%7) - 2.5
		}
		yd := make([]float64, shapeSize(ys))
		for i := range yd {
			yd[i] = float64(i%5) + 0.5
		}
		x, y := mk(t, e, dt, xd, xs...), mk(t, e, dt, yd, ys...)
		got, err := e.Binary(bg, op, x, y)

		// Reference rule, written out directly.
		nd := max(len(xs), len(ys))
		out := make([]int, nd)
		ok := true
		for i := 1; i <= nd; i++ {
			a, b := 1, 1
			if i <= len(xs) {
				a = xs[len(xs)-i]
			}
			if i <= len(ys) {
				b = ys[len(ys)-i]
			}
			switch {
			case a == b || b == 1:
				out[nd-i] = a
			case a == 1:
				out[nd-i] = b
			default:
				ok = false
			}
		}
		if !ok {
			if !errors.Is(err, ErrShape) {
				t.Fatalf("%v %v: err = %v, want ErrShape", xs, ys, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%v %v: %v", xs, ys, err)
		}
		want := make([]float64, shapeSize(out))
		for p := range want {
			idx := refUnravel(p, out)
			want[p] = round(dt, refBinary(op, xd[refIndex(idx, xs)], yd[refIndex(idx, ys)]))
		}
		checkValues(t, op.String(), got, dt, out, want, rtol(dt), 0)
	})
}

// FuzzReshape checks that Reshape accepts exactly the shapes with the right
// size (one -1 allowed) and never panics.
func FuzzReshape(f *testing.F) {
	f.Add([]byte{2, 3, 4}, []byte{0xff, 4})
	f.Add([]byte{1, 0}, []byte{0, 0xff})
	f.Add([]byte{3, 2, 2, 2}, []byte{0xff, 0xff})
	f.Add([]byte{0}, []byte{0x80, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f})
	f.Fuzz(func(t *testing.T, from []byte, to []byte) {
		shape, _ := shapeFrom(from)
		e := New(Options{})
		a, err := e.Zeros(Float32, shape...)
		if err != nil {
			t.Fatal(err)
		}
		target := make([]int, 0, len(to))
		for i, b := range to {
			if i == 8 {
				break
			}
			d := int(int8(b))
			if d == 127 {
				d = math.MaxInt / 3 // overflow attempts
			}
			target = append(target, d)
		}
		got, err := e.Reshape(a, target...)
		if err != nil {
			if !errors.Is(err, ErrShape) {
				t.Fatalf("reshape %v -> %v: %v does not wrap ErrShape", shape, target, err)
			}
			return
		}
		if got.Size() != a.Size() {
			t.Fatalf("reshape %v -> %v gave %v with %d elements, want %d", shape, target, got.Shape(), got.Size(), a.Size())
		}
		for i, d := range got.Shape() {
			if d < 0 || (target[i] != -1 && target[i] != d) {
				t.Fatalf("reshape %v -> %v gave %v", shape, target, got.Shape())
			}
		}
	})
}

// FuzzSliceIndex checks slicing, indexing and transposing with arbitrary
// bounds never panic, and that every selected element comes from its
// computed source position.
func FuzzSliceIndex(f *testing.F) {
	f.Add([]byte{2, 4, 5}, int64(1), int64(-1), int64(2), int64(-1))
	f.Add([]byte{1, 5}, int64(math.MaxInt64), int64(math.MinInt64), int64(-1), int64(0))
	f.Add([]byte{3, 2, 3, 4}, int64(math.MinInt64), int64(math.MaxInt64), int64(math.MinInt64), int64(7))
	f.Fuzz(func(t *testing.T, sh []byte, start, stop, step, index int64) {
		shape, _ := shapeFrom(sh)
		e := New(Options{})
		a, _ := e.Arange(Float64, 0, float64(shapeSize(shape)), 1)
		a, err := e.Reshape(a, shape...)
		if err != nil {
			t.Fatal(err)
		}
		r := Range{int(start), int(stop), int(step)}
		s, err := e.Slice(bg, a, r)
		switch {
		case len(shape) == 0:
			if !errors.Is(err, ErrIndex) {
				t.Fatalf("slicing a 0-d array: %v", err)
			}
		case step == 0:
			if !errors.Is(err, ErrArgument) {
				t.Fatalf("zero step: %v", err)
			}
		case err != nil:
			t.Fatalf("slice %v of %v: %v", r, shape, err)
		default:
			first, st, count := r.resolve(shape[0])
			if s.Len() != count {
				t.Fatalf("slice %v of %v: %d rows, want %d", r, shape, s.Len(), count)
			}
			row := shapeSize(shape[1:])
			sv := values(t, s)
			for i := range count {
				src := first + i*st
				if src < 0 || src >= shape[0] {
					t.Fatalf("slice %v of %v selects row %d", r, shape, src)
				}
				for j := range row {
					if sv[i*row+j] != float64(src*row+j) {
						t.Fatalf("slice %v of %v: element [%d,%d] = %v, want %v", r, shape, i, j, sv[i*row+j], src*row+j)
					}
				}
			}
		}
		if _, err := e.Index(bg, a, int(index)); err != nil && !errors.Is(err, ErrIndex) {
			t.Fatalf("index %d of %v: %v", index, shape, err)
		}
		perm := make([]int, len(shape))
		for i := range perm {
			perm[i] = int(sh[0]+byte(i)) % max(1, len(shape))
		}
		if _, err := e.Transpose(bg, a, perm...); err != nil && !errors.Is(err, ErrArgument) {
			t.Fatalf("transpose %v by %v: %v", shape, perm, err)
		}
	})
}
