package accel

import (
	"math"
	"testing"
)

func TestConstructors(t *testing.T) {
	e := New(Options{})
	for _, dt := range dtypes {
		z, err := e.Zeros(dt, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		checkValues(t, "zeros", z, dt, []int{2, 3}, make([]float64, 6), 0, 0)
		o, _ := e.Ones(dt, 4)
		checkValues(t, "ones", o, dt, []int{4}, []float64{1, 1, 1, 1}, 0, 0)
		f, _ := e.Full(dt, 2.5, 1, 2)
		checkValues(t, "full", f, dt, []int{1, 2}, []float64{2.5, 2.5}, 0, 0)
		s, _ := e.Scalar(dt, -3)
		if v, err := s.Item(); err != nil || v != -3 || s.NDim() != 0 {
			t.Errorf("scalar = %v, %v", s, err)
		}
		empty, err := e.Zeros(dt, 0, 5)
		if err != nil || empty.Size() != 0 || empty.Len() != 0 {
			t.Errorf("zeros(0,5) = %v, %v", empty, err)
		}

		ar, _ := e.Arange(dt, 0, 5, 1)
		checkValues(t, "arange", ar, dt, []int{5}, []float64{0, 1, 2, 3, 4}, 0, 0)
		ar, _ = e.Arange(dt, 1, 2, 0.25)
		checkValues(t, "arange frac", ar, dt, []int{4}, []float64{1, 1.25, 1.5, 1.75}, 0, 0)
		ar, _ = e.Arange(dt, 5, 0, -2)
		checkValues(t, "arange down", ar, dt, []int{3}, []float64{5, 3, 1}, 0, 0)
		ar, _ = e.Arange(dt, 5, 0, 1)
		checkValues(t, "arange empty", ar, dt, []int{0}, nil, 0, 0)
		_, err = e.Arange(dt, 0, 1, 0)
		wantErr(t, err, ErrArgument, "non-zero step")
		_, err = e.Arange(dt, 0, math.Inf(1), 1)
		wantErr(t, err, ErrArgument, "finite")
		_, err = e.Arange(dt, 0, 1e300, 1e-300)
		wantErr(t, err, ErrShape, "too many")

		ls, _ := e.Linspace(dt, 0, 1, 5)
		checkValues(t, "linspace", ls, dt, []int{5}, []float64{0, 0.25, 0.5, 0.75, 1}, 0, 0)
		ls, _ = e.Linspace(dt, 3, 7, 1)
		checkValues(t, "linspace 1", ls, dt, []int{1}, []float64{3}, 0, 0)
		ls, _ = e.Linspace(dt, 3, 7, 0)
		checkValues(t, "linspace 0", ls, dt, []int{0}, nil, 0, 0)
		_, err = e.Linspace(dt, 0, 1, -1)
		wantErr(t, err, ErrArgument, "num -1 is negative")

		ey, _ := e.Eye(dt, 2, 3)
		checkValues(t, "eye", ey, dt, []int{2, 3}, []float64{1, 0, 0, 0, 1, 0}, 0, 0)
		_, err = e.Eye(dt, -1, 2)
		wantErr(t, err, ErrShape, "negative dimension -1")

		_, err = e.Zeros(dt, 2, -3)
		wantErr(t, err, ErrShape, "negative dimension -3 at axis 1 in shape (2,-3)")
		_, err = e.Zeros(dt, math.MaxInt/2, math.MaxInt/2)
		wantErr(t, err, ErrShape, "too many elements")
	}
	_, err := e.Zeros(DType(0), 2)
	wantErr(t, err, ErrDType, "allowed are float64 and float32")
}

func TestRandDeterministic(t *testing.T) {
	e := New(Options{})
	for _, dt := range dtypes {
		a, _ := e.Rand(dt, 42, 1000)
		b, _ := e.Rand(dt, 42, 1000)
		c, _ := e.Rand(dt, 43, 1000)
		av, bv, cv := values(t, a), values(t, b), values(t, c)
		same, sum := 0, 0.0
		for i := range av {
			if av[i] != bv[i] {
				t.Fatalf("rand with one seed differs at %d", i)
			}
			if av[i] == cv[i] {
				same++
			}
			if av[i] < 0 || av[i] >= 1 {
				t.Fatalf("rand value %v outside [0,1)", av[i])
			}
			sum += av[i]
		}
		if same > 10 {
			t.Errorf("seeds 42 and 43 agree on %d of 1000 values", same)
		}
		if m := sum / 1000; m < 0.45 || m > 0.55 {
			t.Errorf("rand mean %v, want about 0.5", m)
		}
		n, _ := e.Randn(dt, 7, 20000)
		n2, _ := e.Randn(dt, 7, 20000)
		nv, n2v := values(t, n), values(t, n2)
		mean, sq := 0.0, 0.0
		for i, v := range nv {
			if v != n2v[i] {
				t.Fatalf("randn with one seed differs at %d", i)
			}
			mean += v
			sq += v * v
		}
		mean /= 20000
		variance := sq/20000 - mean*mean
		if math.Abs(mean) > 0.05 || math.Abs(variance-1) > 0.05 {
			t.Errorf("randn mean %v variance %v, want 0 and 1", mean, variance)
		}
	}
}

func TestFromNested(t *testing.T) {
	e := New(Options{})
	for _, c := range []struct {
		in    any
		shape []int
		want  []float64
	}{
		{3.5, []int{}, []float64{3.5}},
		{7, []int{}, []float64{7}},
		{[]float64{1, 2}, []int{2}, []float64{1, 2}},
		{[][]float32{{1, 2}, {3, 4}}, []int{2, 2}, []float64{1, 2, 3, 4}},
		{[]any{[]any{1, 2.5}, []any{int64(3), true}}, []int{2, 2}, []float64{1, 2.5, 3, 1}},
		{[]any{}, []int{0}, nil},
		{[]any{[]any{}, []any{}}, []int{2, 0}, nil},
		{[2][3]int{{1, 2, 3}, {4, 5, 6}}, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
	} {
		for _, dt := range dtypes {
			a, err := e.FromNested(c.in, dt)
			if err != nil {
				t.Fatalf("FromNested(%v): %v", c.in, err)
			}
			checkValues(t, "nested", a, dt, c.shape, c.want, 0, 0)
		}
	}
	for _, c := range []struct {
		in   any
		kind error
		msg  string
	}{
		{[]any{[]any{1, 2}, []any{3}}, ErrShape, "ragged nesting at data[1]: length 1, but the first list at this depth has length 2"},
		{[]any{1, []any{2}}, ErrShape, "data[1]: found a list where a number was expected"},
		{[]any{[]any{1}, 2}, ErrShape, "data[1]: found a number where a list of length 1 was expected"},
		{[]any{[]any{}, []any{1}}, ErrShape, "ragged"},
		{[]any{"x"}, ErrArgument, "data[0] is a string: elements must be numbers"},
		{[]any{nil}, ErrArgument, "nil at data[0]"},
		{nil, ErrArgument, "data is nil"},
		{map[string]int{}, ErrArgument, "must be numbers"},
	} {
		_, err := e.FromNested(c.in, Float64)
		wantErr(t, err, c.kind, c.msg)
	}
	_, err := e.FromNested([]float64{1}, DType(7))
	wantErr(t, err, ErrDType)
	_, err = e.FromFloat64s([]float64{1, 2, 3}, 2, 2)
	wantErr(t, err, ErrShape, "3 values do not fill shape (2,2), which holds 4")
	list, err := mk(t, e, Float32, []float64{1, 2, 3, 4, 5, 6}, 2, 3).ToList()
	if err != nil {
		t.Fatal(err)
	}
	rows := list.([]any)
	if len(rows) != 2 || rows[1].([]any)[2] != 6.0 {
		t.Errorf("tolist = %v", list)
	}
	if v, _ := mk(t, e, Float64, []float64{9}).ToList(); v != 9.0 {
		t.Errorf("tolist of 0-d = %v", v)
	}
}

func TestParseNames(t *testing.T) {
	for name, want := range map[string]DType{"float64": Float64, "f32": Float32, "FLOAT32": Float32, "double": Float64} {
		if got, err := ParseDType(name); err != nil || got != want {
			t.Errorf("ParseDType(%q) = %v, %v", name, got, err)
		}
	}
	_, err := ParseDType("int8")
	wantErr(t, err, ErrDType, `unknown dtype "int8": allowed are float64 and float32`)
	for _, op := range allBinary {
		if got, err := ParseBinaryOp(op.String()); err != nil || got != op {
			t.Errorf("ParseBinaryOp(%s) = %v, %v", op, got, err)
		}
	}
	for op := OpNeg; op <= OpRelu; op++ {
		if got, err := ParseUnaryOp(op.String()); err != nil || got != op {
			t.Errorf("ParseUnaryOp(%s) = %v, %v", op, got, err)
		}
	}
	for _, op := range allReduce {
		if got, err := ParseReduceOp(op.String()); err != nil || got != op {
			t.Errorf("ParseReduceOp(%s) = %v, %v", op, got, err)
		}
	}
	_, err = ParseBinaryOp("mod")
	wantErr(t, err, ErrArgument, "allowed are add, sub")
	_, err = ParseUnaryOp("sin")
	wantErr(t, err, ErrArgument, "allowed are neg")
	_, err = ParseReduceOp("prod")
	wantErr(t, err, ErrArgument, "allowed are sum")
}

func TestString(t *testing.T) {
	e := New(Options{})
	for _, c := range []struct {
		a    *Array
		want string
	}{
		{mk(t, e, Float64, []float64{1, 2, 3, 4}, 2, 2), "array([[1, 2], [3, 4]], dtype=float64)"},
		{mk(t, e, Float32, []float64{0.5, math.NaN(), math.Inf(-1)}, 3), "array([0.5, nan, -inf], dtype=float32)"},
		{mk(t, e, Float32, []float64{float64(float32(0.1))}), "array(0.1, dtype=float32)"},
		{mk(t, e, Float64, nil, 0, 3), "array([], shape=(0,3), dtype=float64)"},
	} {
		if got := c.a.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
	big, _ := e.Arange(Float64, 0, 2000, 1)
	if got, want := big.String(), "array([0, 1, 2, ..., 1997, 1998, 1999], dtype=float64)"; got != want {
		t.Errorf("big String() = %q, want %q", got, want)
	}
	m, _ := e.Arange(Float64, 0, 1200, 1)
	m, _ = e.Reshape(m, 40, 30)
	if got, want := m.String(), "array([[0, 1, 2, ..., 27, 28, 29], [30, 31, 32, ..., 57, 58, 59], [60, 61, 62, ..., 87, 88, 89], ..., [1110, 1111, 1112, ..., 1137, 1138, 1139], [1140, 1141, 1142, ..., 1167, 1168, 1169], [1170, 1171, 1172, ..., 1197, 1198, 1199]], dtype=float64)"; got != want {
		t.Errorf("matrix String() = %q", got)
	}
	big.Free()
	if got := big.String(); got != "array(<freed>, shape=(2000,), dtype=float64)" {
		t.Errorf("freed String() = %q", got)
	}
}

func TestHugeAndCyclicInput(t *testing.T) {
	e := New(Options{}) // unlimited budget
	if physicalMemory() > 0 {
		_, err := e.Zeros(Float64, 1<<22, 1<<22) // 128 TiB
		wantErr(t, err, ErrBudget, "more than this machine's")
	}
	cyc := []any{nil}
	cyc[0] = cyc
	_, err := e.FromNested(cyc, Float64)
	wantErr(t, err, ErrShape, "nested more than 64 deep")
	var zero Array
	_, err = e.Exp(bg, &zero)
	wantErr(t, err, ErrArgument, "zero Array")
	zero.Free()
	if !zero.Freed() {
		t.Error("a zero Array should report Freed")
	}
}
