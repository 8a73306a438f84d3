// Package acceltest is the conformance suite every accel device backend
// runs: each operation is computed on the device under test and on the CPU
// backend, which is the oracle, from fresh random inputs whose seed is
// logged (ACCEL_TEST_SEED=n replays a run). Backends call Run from their
// own tests.
//
// A device that has a PoisonNew(bool) bool method gets it switched on for
// the run, so every new buffer starts as NaN and an element a kernel forgets
// to write shows up as a mismatch.
package acceltest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/autonode/autonode/accel"
)

var bg = context.Background()

// NewRand returns a random source seeded from the clock (or
// ACCEL_TEST_SEED) and logs the seed.
func NewRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ACCEL_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ACCEL_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with ACCEL_TEST_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 23))
}

// suite holds one run's executors.
type suite struct {
	t         *testing.T
	r         *rand.Rand
	host, dev *accel.Exec
}

// newSuite returns a suite that checks dev against the CPU backend, with
// the buffers dev allocates filled with NaN when it can (so that a kernel
// that leaves an element unwritten is seen); done undoes that and closes
// the suite's Exec on dev.
func newSuite(t *testing.T, dev accel.Device) (s *suite, done func()) {
	undo := func() {}
	if p, ok := dev.(interface{ PoisonNew(bool) bool }); ok {
		prev := p.PoisonNew(true)
		undo = func() { p.PoisonNew(prev) }
	}
	s = &suite{t: t, r: NewRand(t), host: accel.New(accel.Options{}), dev: accel.New(accel.Options{Device: dev})}
	return s, func() {
		s.dev.Close()
		undo()
	}
}

// Run checks every operation on dev against the CPU backend.
func Run(t *testing.T, dev accel.Device) {
	s, done := newSuite(t, dev)
	defer done()
	for _, dt := range []accel.DType{accel.Float64, accel.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			s.t = t
			s.binary(dt)
			s.unary(dt)
			s.reduce(dt)
			s.linalg(dt)
			s.manip(dt)
			s.views(dt)
			s.chain(dt)
		})
	}
}

// pair makes a random host array and its copy on the device.
func (s *suite) pair(dt accel.DType, shape ...int) (h, d *accel.Array) {
	s.t.Helper()
	n := 1
	for _, v := range shape {
		n *= v
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = s.r.Float64()*4 - 2
	}
	h, err := s.host.FromFloat64s(data, shape...)
	if err == nil && dt == accel.Float32 {
		h, err = s.host.AsType(bg, h, dt)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if d, err = s.dev.ToDevice(bg, h); err != nil {
		s.t.Fatalf("ToDevice %v: %v", shape, err)
	}
	return h, d
}

func eps(dt accel.DType) float64 {
	if dt == accel.Float32 {
		return 0x1p-23
	}
	return 0x1p-52
}

// same compares a device result with the host's, within atol + rtol·|want|,
// NaN matching NaN.
func (s *suite) same(what string, got, want *accel.Array, rt, at float64) {
	s.t.Helper()
	if got.DType() != want.DType() || fmt.Sprint(got.Shape()) != fmt.Sprint(want.Shape()) {
		s.t.Fatalf("%s: got %s %v, want %s %v", what, got.DType(), got.Shape(), want.DType(), want.Shape())
	}
	if got.Device() == accel.CPU() && want.Device() == accel.CPU() {
		s.t.Fatalf("%s: result is not on the device", what)
	}
	g, err := got.Float64s()
	if err != nil {
		s.t.Fatalf("%s: reading result: %v", what, err)
	}
	w, _ := want.Float64s()
	bad := 0
	for i := range w {
		if !close(g[i], w[i], rt, at) {
			if bad < 4 {
				s.t.Errorf("%s: element %d = %v, want %v", what, i, g[i], w[i])
			}
			bad++
		}
	}
	if bad > 0 {
		s.t.Fatalf("%s: %d of %d elements differ (rtol %g, atol %g)", what, bad, len(w), rt, at)
	}
}

func close(got, want, rt, at float64) bool {
	switch {
	case math.IsNaN(want) || math.IsNaN(got):
		return math.IsNaN(want) && math.IsNaN(got)
	case math.IsInf(want, 0) || math.IsInf(got, 0):
		return got == want
	}
	return math.Abs(got-want) <= at+rt*math.Abs(want)
}

// get returns a function that yields v, or fails the test when err is set.
func get[T any](v T, err error) func(t testing.TB, what string) T {
	return func(t testing.TB, what string) T {
		t.Helper()
		noErr(t, what, err)
		return v
	}
}

func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (s *suite) binary(dt accel.DType) {
	t := s.t
	rt := 8 * eps(dt)
	shapes := [][2][]int{
		{{1000}, {1000}},
		{{17, 33}, {17, 33}},
		{{4, 1, 5}, {3, 1}},
		{{6, 7}, {7}},
		{{1}, {5, 3}},
	}
	for _, info := range accel.BinaryOps() {
		op := info.Op
		for _, sh := range shapes {
			xh, xd := s.pair(dt, sh[0]...)
			yh, yd := s.pair(dt, sh[1]...)
			want := get(s.host.Binary(bg, op, xh, yh))(t, "host "+op.String())
			got := get(s.dev.Binary(bg, op, xd, yd))(t, "device "+op.String())
			s.same(fmt.Sprintf("%s %v %v", op, sh[0], sh[1]), got, want, rt, 0)
		}
		xh, xd := s.pair(dt, 9, 11)
		for _, first := range []bool{false, true} {
			sc := s.r.Float64()*4 - 2
			var want, got *accel.Array
			if first {
				want = get(s.host.ScalarBinary(bg, op, sc, xh))(t, "host scalar")
				got = get(s.dev.ScalarBinary(bg, op, sc, xd))(t, "device scalar")
			} else {
				want = get(s.host.BinaryScalar(bg, op, xh, sc))(t, "host scalar")
				got = get(s.dev.BinaryScalar(bg, op, xd, sc))(t, "device scalar")
			}
			s.same(fmt.Sprintf("%s scalar (first %v)", op, first), got, want, rt, 0)
		}
	}
	// Mixed dtypes promote to float64 (the Exec converts on the device).
	xh, xd := s.pair(dt, 5, 6)
	yh, yd := s.pair(accel.Float64, 5, 6)
	s.same("mixed add", get(s.dev.Add(bg, xd, yd))(t, "device"), get(s.host.Add(bg, xh, yh))(t, "host"), rt, 0)
}

func (s *suite) unary(dt accel.DType) {
	t := s.t
	for _, info := range accel.UnaryOps() {
		op := info.Op
		xh, xd := s.pair(dt, 3, 257)
		want := get(s.host.Unary(bg, op, xh))(t, "host "+op.String())
		got := get(s.dev.Unary(bg, op, xd))(t, "device "+op.String())
		s.same(op.String(), got, want, 16*eps(dt), 4*eps(dt))
	}
	xh, xd := s.pair(dt, 1001)
	s.same("clip", get(s.dev.Clip(bg, xd, -0.5, 1.25))(t, "device clip"), get(s.host.Clip(bg, xh, -0.5, 1.25))(t, "host clip"), 0, 0)
}

var reduceOps = []accel.ReduceOp{accel.OpSum, accel.OpMean, accel.OpMin, accel.OpMax, accel.OpArgMin, accel.OpArgMax, accel.OpNorm}

func (s *suite) reduce(dt accel.DType) {
	t := s.t
	for _, n := range []int{1, 1000, 100003} {
		xh, xd := s.pair(dt, n)
		for _, op := range reduceOps {
			want := get(s.host.Reduce(bg, op, xh))(t, "host "+op.String())
			got := get(s.dev.Reduce(bg, op, xd))(t, "device "+op.String())
			tol := 4 * math.Sqrt(float64(n)) * eps(dt) * 2 * float64(n)
			if op == accel.OpMean {
				tol /= float64(n)
			}
			if op == accel.OpNorm {
				tol = 16 * eps(dt) * want
			}
			if !close(got, want, 0, tol) {
				t.Errorf("%s of %d elements = %v, want %v (atol %g)", op, n, got, want, tol)
			}
		}
	}
	xh, xd := s.pair(dt, 7, 300, 5)
	for _, op := range reduceOps {
		for axis := range 3 {
			want := get(s.host.ReduceAxis(bg, op, xh, axis))(t, "host")
			got := get(s.dev.ReduceAxis(bg, op, xd, axis))(t, "device")
			s.same(fmt.Sprintf("%s axis %d", op, axis), got, want, 32*eps(dt), 300*4*eps(dt))
		}
	}
	// Empty axes: sum and norm give 0, mean NaN; empty inputs give empty
	// outputs.
	eh, ed := s.pair(dt, 3, 0)
	for _, op := range []accel.ReduceOp{accel.OpSum, accel.OpMean, accel.OpNorm} {
		want := get(s.host.ReduceAxis(bg, op, eh, 1))(t, "host")
		got := get(s.dev.ReduceAxis(bg, op, ed, 1))(t, "device")
		s.same(op.String()+" of an empty axis", got, want, 0, 0)
	}
	s.same("empty add", get(s.dev.Add(bg, ed, ed))(t, "device"), get(s.host.Add(bg, eh, eh))(t, "host"), 0, 0)
	// NaN propagates, and the first NaN is the arg result.
	data := []float64{3, 1, math.NaN(), 7, math.NaN(), -1}
	h := get(s.host.FromFloat64s(data, 6))(t, "host")
	if dt == accel.Float32 {
		h = get(s.host.AsType(bg, h, dt))(t, "astype")
	}
	d := get(s.dev.ToDevice(bg, h))(t, "to device")
	for _, op := range []accel.ReduceOp{accel.OpMin, accel.OpMax, accel.OpArgMin, accel.OpArgMax} {
		want := get(s.host.Reduce(bg, op, h))(t, "host")
		got := get(s.dev.Reduce(bg, op, d))(t, "device")
		if !close(got, want, 0, 0) {
			t.Errorf("%s with NaN = %v, want %v", op, got, want)
		}
	}
	xh, xd = s.pair(dt, 50000)
	yh, yd := s.pair(dt, 50000)
	want := get(s.host.Dot(bg, xh, yh))(t, "host dot")
	got := get(s.dev.Dot(bg, xd, yd))(t, "device dot")
	if tol := 4 * math.Sqrt(50000) * eps(dt) * 4 * 50000; !close(got, want, 0, tol) {
		t.Errorf("dot = %v, want %v", got, want)
	}
}

func (s *suite) linalg(dt accel.DType) {
	t := s.t
	cases := [][2][]int{
		{{17, 33}, {33, 5}},
		{{64, 64}, {64, 64}},
		{{1, 40}, {40, 1}},
		{{3, 5, 7}, {7, 4}},
		{{2, 1, 5, 6}, {3, 6, 2}},
		{{33}, {33, 9}},
		{{9, 33}, {33}},
		{{4, 0}, {0, 3}},
	}
	for _, c := range cases {
		ah, ad := s.pair(dt, c[0]...)
		bh, bd := s.pair(dt, c[1]...)
		want := get(s.host.Matmul(bg, ah, bh))(t, "host matmul")
		got := get(s.dev.Matmul(bg, ad, bd))(t, "device matmul")
		k := c[0][len(c[0])-1]
		s.same(fmt.Sprintf("matmul %v@%v", c[0], c[1]), got, want, 0, 4*float64(k+1)*eps(dt)*4)
	}
	xh, xd := s.pair(dt, 4096)
	yh, yd := s.pair(dt, 4096)
	yh2 := get(s.host.Copy(bg, yh))(t, "copy")
	noErr(t, "host axpy", s.host.Axpy(bg, 1.5, xh, yh2))
	noErr(t, "device axpy", s.dev.Axpy(bg, 1.5, xd, yd))
	s.same("axpy", yd, yh2, 4*eps(dt), 4*eps(dt))
	oh, od := s.pair(dt, 4096)
	noErr(t, "host triad", s.host.Triad(bg, oh, xh, yh, -0.75))
	noErr(t, "device triad", s.dev.Triad(bg, od, xd, s.toDev(yh), -0.75))
	s.same("triad", od, oh, 4*eps(dt), 4*eps(dt))
}

// toDev copies a host array to the device.
func (s *suite) toDev(h *accel.Array) *accel.Array {
	return get(s.dev.ToDevice(bg, h))(s.t, "to device")
}

func (s *suite) manip(dt accel.DType) {
	t := s.t
	ah, ad := s.pair(dt, 37, 19)
	s.same("transpose", get(s.dev.Transpose(bg, ad))(t, "device"), get(s.host.Transpose(bg, ah))(t, "host"), 0, 0)
	bh, bd := s.pair(dt, 3, 4, 5)
	s.same("transpose 3d", get(s.dev.Transpose(bg, bd, 1, 2, 0))(t, "device"), get(s.host.Transpose(bg, bh, 1, 2, 0))(t, "host"), 0, 0)
	r := []accel.Range{{Start: 30, Stop: 2, Step: -3}, {Start: 1, Stop: 18, Step: 2}}
	s.same("slice", get(s.dev.Slice(bg, ad, r...))(t, "device"), get(s.host.Slice(bg, ah, r...))(t, "host"), 0, 0)
	ch, cd := s.pair(dt, 3, 2, 5)
	s.same("concat", get(s.dev.Concatenate(bg, []*accel.Array{bd, cd}, 1))(t, "device"),
		get(s.host.Concatenate(bg, []*accel.Array{bh, ch}, 1))(t, "host"), 0, 0)
	s.same("copy", get(s.dev.Copy(bg, ad))(t, "device"), get(s.host.Copy(bg, ah))(t, "host"), 0, 0)
	o := accel.Float32
	if dt == o {
		o = accel.Float64
	}
	s.same("astype", get(s.dev.AsType(bg, ad, o))(t, "device"), get(s.host.AsType(bg, ah, o))(t, "host"), 0, 0)
}

// views runs operations on strided views of device arrays, and writes
// through them: the Exec hands the device contiguous operands (Op's
// contract), and the results must match the host's.
func (s *suite) views(dt accel.DType) {
	t := s.t
	view := func(e *accel.Exec, a *accel.Array) *accel.Array {
		tr := get(e.Transpose(bg, a))(t, "transpose")
		return get(e.Slice(bg, tr, accel.Range{Start: 1, Stop: 19, Step: 2}, accel.Range{Start: 23, Stop: -25, Step: -3}))(t, "slice")
	}
	ah, ad := s.pair(dt, 24, 20)
	vh, vd := view(s.host, ah), view(s.dev, ad)
	rt := 8 * eps(dt)
	s.same("view elements", get(s.dev.Copy(bg, vd))(t, "device"), get(s.host.Copy(bg, vh))(t, "host"), 0, 0)
	for _, info := range accel.BinaryOps() {
		s.same("view "+info.Name, get(s.dev.Binary(bg, info.Op, vd, vd))(t, "device"), get(s.host.Binary(bg, info.Op, vh, vh))(t, "host"), rt, 0)
	}
	rowh := get(s.host.Index(bg, vh, 2))(t, "host row")
	rowd := get(s.dev.Index(bg, vd, 2))(t, "device row")
	s.same("view broadcast", get(s.dev.Sub(bg, vd, rowd))(t, "device"), get(s.host.Sub(bg, vh, rowh))(t, "host"), rt, 0)
	for _, info := range accel.UnaryOps() {
		s.same("view "+info.Name, get(s.dev.Unary(bg, info.Op, vd))(t, "device"), get(s.host.Unary(bg, info.Op, vh))(t, "host"), 16*eps(dt), 4*eps(dt))
	}
	s.same("view sum", get(s.dev.ReduceAxis(bg, accel.OpSum, vd, 0))(t, "device"), get(s.host.ReduceAxis(bg, accel.OpSum, vh, 0))(t, "host"), 64*eps(dt), 64*eps(dt))
	th := get(s.host.Transpose(bg, vh))(t, "host")
	td := get(s.dev.Transpose(bg, vd))(t, "device")
	s.same("view matmul", get(s.dev.Matmul(bg, vd, td))(t, "device"), get(s.host.Matmul(bg, vh, th))(t, "host"), 64*eps(dt), 64*eps(dt))
	// Writes through views change the base arrays alike.
	noErr(t, "device BinaryInto", s.dev.BinaryInto(bg, accel.OpMul, vd, vd, rowd))
	noErr(t, "host BinaryInto", s.host.BinaryInto(bg, accel.OpMul, vh, vh, rowh))
	noErr(t, "device UnaryInto", s.dev.UnaryInto(bg, accel.OpNeg, rowd, rowd))
	noErr(t, "host UnaryInto", s.host.UnaryInto(bg, accel.OpNeg, rowh, rowh))
	s.same("base after writes", ad, ah, rt, 0)
	one := get(s.host.Scalar(dt, 0.5))(t, "scalar")
	noErr(t, "device CopyInto", s.dev.CopyInto(bg, vd, s.toDev(one)))
	noErr(t, "host CopyInto", s.host.CopyInto(bg, vh, one))
	s.same("base after CopyInto", ad, ah, 0, 0)
}

// chain runs several operations on device arrays and reads only the end.
func (s *suite) chain(dt accel.DType) {
	t := s.t
	ah, ad := s.pair(dt, 48, 32)
	bh, bd := s.pair(dt, 32, 16)
	run := func(e *accel.Exec, a, b *accel.Array) *accel.Array {
		p := get(e.Matmul(bg, a, b))(t, "matmul")
		q := get(e.Tanh(bg, p))(t, "tanh")
		u := get(e.BinaryScalar(bg, accel.OpMul, q, 3))(t, "mul")
		v := get(e.Transpose(bg, u))(t, "transpose")
		return get(e.ReduceAxis(bg, accel.OpMax, v, 1))(t, "max")
	}
	s.same("chain", run(s.dev, ad, bd), run(s.host, ah, bh), 64*32*eps(dt), 64*32*eps(dt))
}
