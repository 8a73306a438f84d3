package accel

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// refView returns the elements of the view (off, shape, strides) of data in
// row-major order, computed directly from the definition.
func refView(data []float64, off int, shape, strides []int) []float64 {
	n := shapeSize(shape)
	out := make([]float64, n)
	for p := range n {
		idx := refUnravel(p, shape)
		q := off
		for d, i := range idx {
			q += i * strides[d]
		}
		out[p] = data[q]
	}
	return out
}

// randView makes a random strided view of a fresh random array: a slice
// with a random step along each axis, possibly transposed. It returns the
// view and its elements.
func randView(t *testing.T, e *Exec, r *rand.Rand, dt DType) (*Array, []float64) {
	t.Helper()
	nd := 1 + r.IntN(3)
	shape := make([]int, nd)
	for i := range shape {
		shape[i] = 1 + r.IntN(7)
	}
	base, data := randArray(t, e, r, dt, shape...)
	ranges := make([]Range, nd)
	for i, n := range shape {
		step := 1 + r.IntN(2)
		if r.IntN(3) == 0 {
			step = -step
		}
		lo := r.IntN(n)
		if step > 0 {
			ranges[i] = Range{Start: lo, Stop: n, Step: step}
		} else {
			ranges[i] = Range{Start: lo, Stop: -n - 1, Step: step}
		}
	}
	v, err := e.Slice(bg, base, ranges...)
	if err != nil {
		t.Fatal(err)
	}
	if nd > 1 && r.IntN(2) == 0 {
		if v, err = e.Transpose(bg, v); err != nil {
			t.Fatal(err)
		}
	}
	return v, refView(data, v.off, v.shape, v.Strides())
}

func TestViewsShareStorage(t *testing.T) {
	b := NewBudget(0)
	e := New(Options{Budget: b})
	a, _ := e.Arange(Float64, 0, 12, 1)
	m, err := e.Reshape(a, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	used := b.Used()
	row, _ := e.Index(bg, m, 1)
	tr, _ := e.Transpose(bg, m)
	sl, _ := e.Slice(bg, m, Range{0, 3, 2}, Range{3, -5, -2})
	if b.Used() != used {
		t.Fatalf("views were charged: used %d, was %d", b.Used(), used)
	}
	for name, v := range map[string]*Array{"row": row, "transpose": tr, "slice": sl} {
		if v.Buffer() != a.Buffer() {
			t.Errorf("%s does not share the storage", name)
		}
	}
	if !row.Contiguous() || tr.Contiguous() || sl.Contiguous() {
		t.Errorf("contiguity: row %v, transpose %v, slice %v", row.Contiguous(), tr.Contiguous(), sl.Contiguous())
	}
	if got := tr.Strides(); !slices.Equal(got, []int{1, 4}) {
		t.Errorf("transpose strides %v, want [1 4]", got)
	}
	checkValues(t, "slice", sl, Float64, []int{2, 2}, []float64{3, 1, 11, 9}, 0, 0)
	// A write through one view is seen through the others.
	if err := row.SetAt(-7, 2); err != nil {
		t.Fatal(err)
	}
	if v, _ := tr.At(2, 1); v != -7 {
		t.Errorf("transpose sees %v after writing the row, want -7", v)
	}
	if v, _ := a.At(6); v != -7 {
		t.Errorf("base sees %v, want -7", v)
	}
	// Copy is independent.
	c, _ := e.Copy(bg, tr)
	if c.Buffer() == a.Buffer() || !c.Contiguous() {
		t.Fatal("Copy of a view shares its storage or is not contiguous")
	}
	a.SetAt(99, 0)
	if v, _ := c.At(0, 0); v != 0 {
		t.Errorf("copy changed with its source: %v", v)
	}
	// Free of a view frees the storage (as for Reshape before).
	row.Free()
	if !a.Freed() || !tr.Freed() {
		t.Error("freeing a view did not free the storage it shares")
	}
}

func TestReshapeOfViews(t *testing.T) {
	e := New(Options{})
	a, _ := e.Arange(Float64, 0, 24, 1)
	m, _ := e.Reshape(a, 2, 3, 4)
	tr, _ := e.Transpose(bg, m, 1, 0, 2) // (3,2,4), strides (4,12,1)
	want := values(t, tr)
	// Splitting an axis is always a view.
	v, err := e.Reshape(tr, 3, 2, 2, 2)
	if err != nil || v.Buffer() != a.Buffer() {
		t.Fatalf("splitting the last axis of a transpose: %v, view %v", err, v != nil && v.Buffer() == a.Buffer())
	}
	checkValues(t, "split", v, Float64, []int{3, 2, 2, 2}, want, 0, 0)
	// Merging axes that are not adjacent in memory needs a copy.
	w, err := e.Reshape(tr, 3, 8)
	if err != nil {
		t.Fatal(err)
	}
	if w.Buffer() == a.Buffer() {
		t.Error("merging axes 12 and 1 elements apart cannot be a view")
	}
	checkValues(t, "merge (copy)", w, Float64, []int{3, 8}, want, 0, 0)
	full, _ := e.Transpose(bg, m) // (4,3,2)
	f, err := e.Reshape(full, 24)
	if err != nil || f.Buffer() == a.Buffer() {
		t.Fatalf("reshape of a full transpose to 1-D: %v", err)
	}
	checkValues(t, "flatten a transpose", f, Float64, []int{24}, values(t, full), 0, 0)
	// Inserting length-1 axes keeps a view, whatever the strides.
	s, _ := e.Slice(bg, a, Range{0, 24, 3})
	x, err := e.Reshape(s, 1, 8, 1)
	if err != nil || x.Buffer() != a.Buffer() {
		t.Fatalf("reshape of a strided 1-D view to (1,8,1): %v", err)
	}
	checkValues(t, "inserted axes", x, Float64, []int{1, 8, 1}, values(t, s), 0, 0)
}

// TestViewOperands runs every kind of operation on random strided views and
// checks them against the same operation on contiguous copies of the
// views' elements.
func TestViewOperands(t *testing.T) {
	r := newRand(t)
	e := New(Options{})
	for range 200 {
		dt := dtypes[r.IntN(2)]
		v, vd := randView(t, e, r, dt)
		checkValues(t, "view elements", v, dt, v.shape, vd, 0, 0)
		c := mk(t, e, dt, vd, v.shape...)
		pairs := []struct {
			name     string
			got, ref func(x *Array) (*Array, error)
		}{
			{"exp", func(x *Array) (*Array, error) { return e.Exp(bg, x) }, nil},
			{"x*x", func(x *Array) (*Array, error) { return e.Mul(bg, x, x) }, nil},
			{"x-3", func(x *Array) (*Array, error) { return e.BinaryScalar(bg, OpSub, x, 3) }, nil},
			{"clip", func(x *Array) (*Array, error) { return e.Clip(bg, x, -0.5, 0.5) }, nil},
			{"sum0", func(x *Array) (*Array, error) { return e.ReduceAxis(bg, OpSum, x, 0) }, nil},
			{"astype", func(x *Array) (*Array, error) { return e.AsType(bg, x, other(dt)) }, nil},
			{"concat", func(x *Array) (*Array, error) { return e.Concatenate(bg, []*Array{x, x}, 0) }, nil},
			{"stack", func(x *Array) (*Array, error) { return e.Stack(bg, []*Array{x, x}, -1) }, nil},
			{"matmul", func(x *Array) (*Array, error) {
				if x.NDim() < 2 {
					return e.Matmul(bg, x, x)
				}
				tr, _ := e.Transpose(bg, x)
				return e.Matmul(bg, x, tr)
			}, nil},
		}
		for _, p := range pairs {
			got, err := p.got(v)
			want, err2 := p.got(c)
			if (err == nil) != (err2 == nil) {
				t.Fatalf("%s on a view: %v; on a copy: %v", p.name, err, err2)
			}
			if err != nil {
				continue
			}
			checkValues(t, p.name+" of a view", got, want.dtype, want.shape, values(t, want), 1e-6, 1e-6)
		}
		s1, err := e.Sum(bg, v)
		s2, _ := e.Sum(bg, c)
		if err != nil || !closeTo(s1, s2, 1e-6, 1e-6) {
			t.Fatalf("sum of a view %v (%v), of a copy %v", s1, err, s2)
		}
	}
}

// TestWritesIntoViews writes through views with every in-place operation
// and compares the base with a reference.
func TestWritesIntoViews(t *testing.T) {
	r := newRand(t)
	e := New(Options{})
	for range 200 {
		dt := dtypes[r.IntN(2)]
		shape := []int{1 + r.IntN(6), 1 + r.IntN(6)}
		base, data := randArray(t, e, r, dt, shape...)
		var v *Array
		switch r.IntN(3) {
		case 0:
			v, _ = e.Transpose(bg, base)
		case 1:
			v, _ = e.Slice(bg, base, Range{0, shape[0], 2}, Range{shape[1] - 1, -shape[1] - 1, -1})
		default:
			v, _ = e.Index(bg, base, r.IntN(shape[0]))
		}
		pos := refPositions(v)
		want := append([]float64(nil), data...)
		src, sd := randArray(t, e, r, dt, v.shape...)
		var err error
		switch k := r.IntN(4); k {
		case 0:
			err = e.CopyInto(bg, v, src)
			for i, p := range pos {
				want[p] = sd[i]
			}
		case 1:
			err = e.BinaryInto(bg, OpAdd, v, v, src)
			for i, p := range pos {
				want[p] = round(dt, data[p]+sd[i])
			}
		case 2:
			err = e.UnaryInto(bg, OpNeg, v, v)
			for _, p := range pos {
				want[p] = -data[p]
			}
		default:
			err = e.Axpy(bg, 2, src, v)
			for i, p := range pos {
				want[p] = round(dt, data[p]+2*sd[i])
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		checkValues(t, "base after a write through a view", base, dt, shape, want, rtol(dt), rtol(dt))
	}
	// Broadcasting into a view, and overlapping source and target.
	a, _ := e.Arange(Float64, 0, 6, 1)
	m, _ := e.Reshape(a, 2, 3)
	col, _ := e.Transpose(bg, m)
	first, _ := e.Index(bg, col, 0) // m[:, 0] as a strided 1-D view
	one, _ := e.Scalar(Float64, 9)
	if err := e.CopyInto(bg, first, one); err != nil {
		t.Fatal(err)
	}
	checkValues(t, "broadcast into a column", m, Float64, []int{2, 3}, []float64{9, 1, 2, 9, 4, 5}, 0, 0)
	lo, _ := e.Slice(bg, a, Range{0, 4, 1})
	hi, _ := e.Slice(bg, a, Range{2, 6, 1})
	if err := e.CopyInto(bg, hi, lo); err != nil { // overlapping: a[2:6] = a[0:4]
		t.Fatal(err)
	}
	checkValues(t, "overlapping copy", a, Float64, []int{6}, []float64{9, 1, 9, 1, 2, 9}, 0, 0)
	lo2, _ := e.Slice(bg, a, Range{0, 5, 1})
	hi2, _ := e.Slice(bg, a, Range{1, 6, 1})
	if err := e.BinaryInto(bg, OpAdd, hi2, lo2, hi2); err != nil { // a[1:] = a[:-1] + a[1:]
		t.Fatal(err)
	}
	checkValues(t, "overlapping add", a, Float64, []int{6}, []float64{9, 10, 10, 10, 3, 11}, 0, 0)
}

// refPositions lists the buffer positions of a view's elements in
// row-major order.
func refPositions(v *Array) []int {
	st := v.Strides()
	out := make([]int, v.Size())
	for p := range out {
		q := v.off
		for d, i := range refUnravel(p, v.shape) {
			q += i * st[d]
		}
		out[p] = q
	}
	return out
}

func TestReadOnly(t *testing.T) {
	e := New(Options{})
	a, _ := e.Ones(Float64, 4)
	v, _ := e.Slice(bg, a, Range{1, 3, 1})
	a.SetReadOnly()
	if !v.ReadOnly() {
		t.Fatal("a view of a read-only array is writable")
	}
	one, _ := e.Ones(Float64, 2)
	for name, err := range map[string]error{
		"SetAt":      v.SetAt(1, 0),
		"CopyInto":   e.CopyInto(bg, v, one),
		"BinaryInto": e.BinaryInto(bg, OpAdd, v, v, one),
		"UnaryInto":  e.UnaryInto(bg, OpExp, v, v),
		"Axpy":       e.Axpy(bg, 1, one, v),
		"Triad":      e.Triad(bg, v, one, one, 1),
		"MatmulInto": e.MatmulInto(bg, v, one, one),
	} {
		if !isErr(err, ErrReadOnly) {
			t.Errorf("%s on a read-only view: %v, want ErrReadOnly", name, err)
		}
	}
	c, _ := e.Copy(bg, v)
	if c.ReadOnly() {
		t.Error("a copy of a read-only array is read-only")
	}
}

// TestDeviceGetsPlainOperands runs views through a device that checks the
// Op contract: every operand it sees starts at element 0 and is
// contiguous.
func TestDeviceGetsPlainOperands(t *testing.T) {
	dev := &fakeDevice{checkPlain: t}
	r := newRand(t)
	host := New(Options{})
	gpu := New(Options{Device: dev})
	for range 50 {
		dt := dtypes[r.IntN(2)]
		hv, vd := randView(t, host, r, dt)
		hb, _ := host.Copy(bg, hv) // the same elements, contiguous
		d, err := gpu.ToDevice(bg, hb)
		if err != nil {
			t.Fatal(err)
		}
		// A view of the device array with the same layout as hv.
		dv := viewOf(d, hv.shape, 0, nil)
		if len(hv.shape) > 1 {
			dv, _ = gpu.Transpose(bg, viewOf(d, reversed(hv.shape), 0, nil))
			hb2, _ := host.Transpose(bg, viewOf(hb, reversed(hv.shape), 0, nil))
			vd = values(t, hb2)
		}
		sl, _ := gpu.Slice(bg, dv, Range{0, dv.shape[0], 2})
		want := refView(vd, 0, sl.shape, sliceStrides(dv.shape))
		sum, err := gpu.Add(bg, sl, sl) // the device adds natively
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			want[i] = round(dt, 2*want[i])
		}
		checkValues(t, "device add of a view", sum, dt, sl.shape, want, 0, 0)
		// Writing a device view: computed contiguous, then scattered.
		if err := gpu.BinaryInto(bg, OpAdd, sl, sl, sl); err != nil {
			t.Fatal(err)
		}
		checkValues(t, "device view written", sl, dt, sl.shape, want, 0, 0)
	}
}

// sliceStrides are the strides of [::2] along the first axis of a
// contiguous array of shape.
func sliceStrides(shape []int) []int {
	st := rowStrides(shape)
	st[0] *= 2
	return st
}

func reversed(s []int) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[len(s)-1-i] = d
	}
	return out
}

// TestLargeBuffersRecycled checks that a loop of large temporaries reuses
// buffers instead of growing the heap, and that the budget comes back
// without a cleanup per array.
func TestLargeBuffersRecycled(t *testing.T) {
	// Start from an empty pool: blocks other tests left there could be
	// trimmed in favour of ours, or handed to us.
	thePool.mu.Lock()
	thePool.free, thePool.bytes = map[int64][]*block{}, 0
	thePool.mu.Unlock()
	const n = 1 << 20 // 8 MiB of float64
	b := NewBudget(5 * 8 * n)
	e := New(Options{Budget: b})
	x, _ := e.Ones(Float64, n)
	y, _ := e.Ones(Float64, n)
	var c *Array
	made := blocksMade.Load()
	for i := range 30 {
		var err error
		if c, err = e.Add(bg, x, y); err != nil {
			t.Fatalf("iteration %d: %v (budget %s)", i, err, b)
		}
	}
	_ = c
	// The budget holds at most five such arrays at once, so recycling
	// means at most about that many new buffers for 30 results.
	if n := blocksMade.Load() - made; n > 6 {
		t.Errorf("30 additions allocated %d new buffers: large temporaries are not recycled", n)
	}
	// An escaped buffer (Float64View) is never handed to another array.
	v, _ := e.Ones(Float64, n)
	view, _ := v.Float64View()
	v = nil
	runtime.GC()
	reclaimer.sweep()
	for range 5 {
		z, _ := e.Zeros(Float64, n)
		if &z.host().f64[0] == &view[0] {
			t.Fatal("a buffer whose slice was handed out was recycled")
		}
	}
	view[0] = 1 // still ours
}

// TestTinyBatchesReclaimed checks that dropped tiny arrays come back to
// the budget although each batch has only one weak pointer.
func TestTinyBatchesReclaimed(t *testing.T) {
	b := NewBudget(64 << 10)
	e := New(Options{Budget: b})
	keep, _ := e.Ones(Float64, 16)
	for i := range 100000 {
		if _, err := e.BinaryScalar(bg, OpAdd, keep, 1); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
	}
	// Exact accounting of what is held: after a collection only keep (and
	// its batch neighbours) remain charged.
	reclaimer.collect()
	if u := b.Used(); u > batchBytes {
		t.Errorf("after collecting, %d bytes are charged; at most one batch (%d) should remain", u, batchBytes)
	}
	keep.Free()
	if u := b.Used(); u >= batchBytes {
		t.Errorf("after freeing the last array, %d bytes are charged", u)
	}
}

// TestPoolTrimsLongestIdle: over its limit, the pool drops the blocks idle
// longest, not the class in use.
func TestPoolTrimsLongestIdle(t *testing.T) {
	p := blockPool{free: map[int64][]*block{}}
	small := sizeClass(largeBytes)
	for range 4 * poolKeep / small {
		p.put(&block{words: make([]float64, small/8)})
	}
	hot := &block{words: make([]float64, 8<<20/8)}
	p.put(hot)
	p.trim(0)
	if p.bytes > poolKeep {
		t.Fatalf("pool keeps %d bytes, over its %d", p.bytes, poolKeep)
	}
	if p.get(8<<20) != hot {
		t.Fatal("trim dropped the block returned last")
	}
}
