package accel

import (
	"math"
	"slices"
	"testing"
)

func TestReshape(t *testing.T) {
	e := New(Options{})
	a := mk(t, e, Float64, []float64{0, 1, 2, 3, 4, 5}, 2, 3)
	for _, c := range []struct{ in, want []int }{
		{[]int{3, 2}, []int{3, 2}},
		{[]int{6}, []int{6}},
		{[]int{-1}, []int{6}},
		{[]int{1, -1, 2}, []int{1, 3, 2}},
		{[]int{6, 1, 1}, []int{6, 1, 1}},
	} {
		b, err := e.Reshape(a, c.in...)
		if err != nil {
			t.Fatalf("reshape %v: %v", c.in, err)
		}
		checkValues(t, "reshape", b, Float64, c.want, []float64{0, 1, 2, 3, 4, 5}, 0, 0)
	}
	for _, c := range []struct {
		in   []int
		kind error
		msg  string
	}{
		{[]int{4}, ErrShape, "cannot reshape array of size 6 into shape (4,)"},
		{[]int{-1, -1}, ErrShape, "more than one -1"},
		{[]int{-2, 3}, ErrShape, "negative dimension -2"},
		{[]int{4, -1}, ErrShape, "cannot reshape array of size 6 into shape (4,-1)"},
		{[]int{0, -1}, ErrShape, "cannot reshape"},
		{[]int{math.MaxInt / 2, 4}, ErrShape, "cannot reshape"},
	} {
		_, err := e.Reshape(a, c.in...)
		wantErr(t, err, c.kind, c.msg)
	}
	// Scalars and empty arrays.
	s, _ := e.Scalar(Float32, 2)
	if b, err := e.Reshape(s, 1, 1); err != nil || b.Size() != 1 {
		t.Errorf("reshape scalar: %v, %v", b, err)
	}
	z, _ := e.Zeros(Float64, 0, 3)
	if b, err := e.Reshape(z, 3, 0, 5); err != nil || b.Size() != 0 {
		t.Errorf("reshape empty: %v, %v", b, err)
	}
	// A reshape shares storage: freeing one frees both.
	b, _ := e.Reshape(a, 6)
	a.Free()
	_, err := e.Sum(bg, b)
	wantErr(t, err, ErrFreed, "was freed")
}

// pySlice lists the positions Python selects for range r over length n,
// from hand-checked cases.
func TestRangeResolve(t *testing.T) {
	const M, m = math.MaxInt, math.MinInt
	for _, c := range []struct {
		r    Range
		n    int
		want []int
	}{
		{All(), 5, []int{0, 1, 2, 3, 4}},
		{Range{2, 8, 3}, 10, []int{2, 5}},
		{Range{M, m, -1}, 4, []int{3, 2, 1, 0}},
		{Range{-3, M, 1}, 10, []int{7, 8, 9}},
		{Range{8, 2, -2}, 10, []int{8, 6, 4}},
		{Range{-100, 100, 1}, 3, []int{0, 1, 2}},
		{Range{5, 5, 1}, 10, nil},
		{Range{M, m, -3}, 10, []int{9, 6, 3, 0}},
		{Range{-1, -4, -1}, 5, []int{4, 3, 2}},
		{Range{1, -1, 1}, 5, []int{1, 2, 3}},
		{Range{0, M, M}, 5, []int{0}},
		{Range{M, m, m}, 5, []int{4}},
		{Range{3, 1, 1}, 5, nil},
		{All(), 0, nil},
		{Range{M, m, -1}, 0, nil},
	} {
		start, step, count := c.r.resolve(c.n)
		var got []int
		for i := range count {
			got = append(got, start+i*step)
		}
		if len(got) != len(c.want) {
			t.Errorf("%+v over %d = %v, want %v", c.r, c.n, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%+v over %d = %v, want %v", c.r, c.n, got, c.want)
				break
			}
		}
	}
}

func TestSliceAndIndex(t *testing.T) {
	r := newRand(t)
	e := New(Options{})
	for _, dt := range dtypes {
		a, ad := randArray(t, e, r, dt, 7, 5, 3)
		// a[1:6:2, ::-1] -> rows 1,3,5; columns 4..0; all of the last axis.
		got, err := e.Slice(bg, a, Range{1, 6, 2}, Range{math.MaxInt, math.MinInt, -1})
		if err != nil {
			t.Fatal(err)
		}
		var want []float64
		for _, i := range []int{1, 3, 5} {
			for j := 4; j >= 0; j-- {
				for k := range 3 {
					want = append(want, ad[(i*5+j)*3+k])
				}
			}
		}
		checkValues(t, "slice", got, dt, []int{3, 5, 3}, want, 0, 0)

		empty, err := e.Slice(bg, a, Range{4, 2, 1})
		if err != nil || !slices.Equal(empty.Shape(), []int{0, 5, 3}) {
			t.Errorf("empty slice: %v, %v", empty, err)
		}
		_, err = e.Slice(bg, a, Range{0, 1, 0})
		wantErr(t, err, ErrArgument, "step is zero")
		_, err = e.Slice(bg, a, All(), All(), All(), All())
		wantErr(t, err, ErrIndex, "4 ranges", "dimension 3")

		row, err := e.Index(bg, a, -2)
		if err != nil {
			t.Fatal(err)
		}
		checkValues(t, "index -2", row, dt, []int{5, 3}, ad[5*15:6*15], 0, 0)
		el, err := e.Index(bg, a, 6, 4, 2)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := el.Item(); err != nil || v != ad[len(ad)-1] || el.NDim() != 0 {
			t.Errorf("a[6,4,2] = %v, %v (ndim %d), want %v", v, err, el.NDim(), ad[len(ad)-1])
		}
		if v, err := a.At(1, -1, 0); err != nil || v != ad[(1*5+4)*3] {
			t.Errorf("At(1,-1,0) = %v, %v", v, err)
		}
		_, err = e.Index(bg, a, 7)
		wantErr(t, err, ErrIndex, "index 7 is out of bounds for axis 0 with size 7")
		_, err = e.Index(bg, a, 0, 0, 0, 0)
		wantErr(t, err, ErrIndex, "too many indices")
		_, err = a.At(0, 0)
		wantErr(t, err, ErrIndex, "got 2 indices")
		_, err = a.Item()
		wantErr(t, err, ErrShape, "only a one-element array")
	}
}

func TestConcatenateStack(t *testing.T) {
	r := newRand(t)
	e := New(Options{})
	for _, dt := range dtypes {
		a, ad := randArray(t, e, r, dt, 2, 3)
		b, bd := randArray(t, e, r, dt, 4, 3)
		c, cd := randArray(t, e, r, dt, 0, 3)
		got, err := e.Concatenate(bg, []*Array{a, b, c}, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkValues(t, "concat axis 0", got, dt, []int{6, 3}, append(append(append([]float64{}, ad...), bd...), cd...), 0, 0)

		d, dd := randArray(t, e, r, dt, 2, 1)
		got, err = e.Concatenate(bg, []*Array{a, d}, -1)
		if err != nil {
			t.Fatal(err)
		}
		var want []float64
		for i := range 2 {
			want = append(want, ad[i*3:i*3+3]...)
			want = append(want, dd[i])
		}
		checkValues(t, "concat axis -1", got, dt, []int{2, 4}, want, 0, 0)

		_, err = e.Concatenate(bg, []*Array{a, b}, 1)
		wantErr(t, err, ErrShape, "array 1 has shape (4,3)", "except along axis 1")
		_, err = e.Concatenate(bg, nil, 0)
		wantErr(t, err, ErrArgument, "at least one array")
		s, _ := e.Scalar(dt, 1)
		_, err = e.Concatenate(bg, []*Array{s}, 0)
		wantErr(t, err, ErrShape, "zero-dimensional")

		a2, a2d := randArray(t, e, r, dt, 2, 3)
		for axis, wantShape := range map[int][]int{0: {2, 2, 3}, 1: {2, 2, 3}, 2: {2, 3, 2}, -1: {2, 3, 2}} {
			got, err := e.Stack(bg, []*Array{a, a2}, axis)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float64, 12)
			for q := range want {
				idx := refUnravel(q, wantShape)
				ax := axis
				if ax < 0 {
					ax += 3
				}
				which := idx[ax]
				rest := append(append([]int{}, idx[:ax]...), idx[ax+1:]...)
				src := ad
				if which == 1 {
					src = a2d
				}
				want[q] = src[rest[0]*3+rest[1]]
			}
			checkValues(t, "stack", got, dt, wantShape, want, 0, 0)
		}
		_, err = e.Stack(bg, []*Array{a, b}, 0)
		wantErr(t, err, ErrShape, "same shape")
		_, err = e.Stack(bg, []*Array{a, a2}, 3)
		wantErr(t, err, ErrIndex, "axis 3")
	}
	// Mixed dtypes promote to float64.
	x := mk(t, e, Float32, []float64{1, 2}, 2)
	y := mk(t, e, Float64, []float64{3}, 1)
	got, err := e.Concatenate(bg, []*Array{x, y}, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkValues(t, "mixed concat", got, Float64, []int{3}, []float64{1, 2, 3}, 0, 0)
}

func TestCopyAsType(t *testing.T) {
	r := newRand(t)
	e := New(Options{})
	a, ad := randArray(t, e, r, Float64, 33, 65)
	c, err := e.Copy(bg, a)
	if err != nil {
		t.Fatal(err)
	}
	checkValues(t, "copy", c, Float64, []int{33, 65}, ad, 0, 0)
	// The copy is independent of the original.
	v, _ := c.Float64View()
	v[0] = 42
	if x, _ := a.At(0, 0); x != ad[0] {
		t.Errorf("writing the copy changed the original")
	}
	f, err := e.AsType(bg, a, Float32)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, len(ad))
	for i, v := range ad {
		want[i] = float64(float32(v))
	}
	checkValues(t, "astype f32", f, Float32, []int{33, 65}, want, 0, 0)
	back, _ := e.AsType(bg, f, Float64)
	checkValues(t, "astype f64", back, Float64, []int{33, 65}, want, 0, 0)
	_, err = e.AsType(bg, a, DType(9))
	wantErr(t, err, ErrDType, "invalid dtype")
	if _, err := f.Float64View(); !isErr(err, ErrDType) {
		t.Errorf("Float64View of float32: %v", err)
	}
}
