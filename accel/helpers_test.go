package accel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autonode/autonode/accel/internal/kern"
)

// TestMain poisons every new array with NaN, so an element that a kernel
// forgets to write shows up as a mismatch.
func TestMain(m *testing.M) {
	poisonOutputs = true
	os.Exit(m.Run())
}

var bg = context.Background()

// newRand returns a fresh random source for one test and logs its seed;
// ACCEL_TEST_SEED=n replays a failure.
func newRand(t testing.TB) *rand.Rand {
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
	return rand.New(rand.NewPCG(seed, 17))
}

// bothPaths runs f once on kern's fastest path and once on its pure-Go
// path, so the SIMD and generic kernels meet the same checks.
func bothPaths(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, generic := range []bool{false, true} {
		name := "simd"
		if generic {
			name = "generic"
		}
		t.Run(name, func(t *testing.T) {
			prev := kern.SetGeneric(generic)
			defer kern.SetGeneric(prev)
			if !generic {
				t.Logf("kern path %s", kern.Impl())
			}
			f(t)
		})
	}
}

var dtypes = []DType{Float64, Float32}

// rtol is the relative error allowed for an element-wise result of dtype dt
// computed from the same (rounded) inputs.
func rtol(dt DType) float64 {
	if dt == Float32 {
		return 2e-7 * 4
	}
	return 1e-15 * 4
}

// randData returns n random values in [-2, 2), rounded to dt so that the
// reference sees exactly what the array holds.
func randData(r *rand.Rand, dt DType, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.Float64()*4 - 2
		if dt == Float32 {
			v[i] = float64(float32(v[i]))
		}
	}
	return v
}

// mk makes an array of dtype dt from float64 data (already representable).
func mk(t testing.TB, e *Exec, dt DType, data []float64, shape ...int) *Array {
	t.Helper()
	var a *Array
	var err error
	if dt == Float64 {
		a, err = e.FromFloat64s(data, shape...)
	} else {
		f := make([]float32, len(data))
		for i, v := range data {
			f[i] = float32(v)
		}
		a, err = e.FromFloat32s(f, shape...)
	}
	if err != nil {
		t.Fatalf("making %s array %v: %v", dt, shape, err)
	}
	return a
}

// randArray returns a random array and the float64 copy of its data.
func randArray(t testing.TB, e *Exec, r *rand.Rand, dt DType, shape ...int) (*Array, []float64) {
	t.Helper()
	d := randData(r, dt, shapeSize(shape))
	return mk(t, e, dt, d, shape...), d
}

// values reads an array back as float64s.
func values(t testing.TB, a *Array) []float64 {
	t.Helper()
	v, err := a.Float64s()
	if err != nil {
		t.Fatalf("reading array: %v", err)
	}
	return v
}

// closeTo reports whether got matches want within atol + rtol·|want|, NaN
// matching NaN and infinities matching exactly.
func closeTo(got, want, rt, at float64) bool {
	switch {
	case math.IsNaN(want) || math.IsNaN(got):
		return math.IsNaN(want) && math.IsNaN(got)
	case math.IsInf(want, 0) || math.IsInf(got, 0):
		return got == want
	}
	return math.Abs(got-want) <= at+rt*math.Abs(want)
}

// checkValues compares an array's elements, shape and dtype to a reference.
func checkValues(t testing.TB, what string, a *Array, dt DType, shape []int, want []float64, rt, at float64) {
	t.Helper()
	if a.DType() != dt {
		t.Fatalf("%s: dtype %s, want %s", what, a.DType(), dt)
	}
	if !slices.Equal(a.Shape(), shape) {
		t.Fatalf("%s: shape %s, want %s", what, formatShape(a.Shape()), formatShape(shape))
	}
	got := values(t, a)
	if len(got) != len(want) {
		t.Fatalf("%s: %d elements, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		if !closeTo(got[i], want[i], rt, at) {
			if bad < 5 {
				t.Errorf("%s: element %d = %v, want %v (rtol %g, atol %g)", what, i, got[i], want[i], rt, at)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d elements wrong", what, bad, len(got))
	}
}

// round rounds a reference value to what dtype dt can hold.
func round(dt DType, v float64) float64 {
	if dt == Float32 {
		return float64(float32(v))
	}
	return v
}

// wantErr checks that err wraps kind and that its text contains each part.
func wantErr(t testing.TB, err error, kind error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one wrapping %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q does not wrap %v", err, kind)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

func shapeName(shapes ...[]int) string {
	s := ""
	for i, sh := range shapes {
		if i > 0 {
			s += "x"
		}
		s += fmt.Sprint(sh)
	}
	return s
}

// refIndex maps a multi-index of the broadcast result to the flat position
// in an operand of shape in (reading broadcast axes at 0), written directly
// from NumPy's rules as an independent reference.
func refIndex(outIdx, in []int) int {
	off := len(outIdx) - len(in)
	p := 0
	for d, n := range in {
		i := outIdx[off+d]
		if n == 1 {
			i = 0
		}
		p = p*n + i
	}
	return p
}

// refUnravel is the multi-index of flat position p in shape.
func refUnravel(p int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = p % shape[d]
			p /= shape[d]
		}
	}
	return idx
}

// other returns the dtype that is not dt.
func other(dt DType) DType {
	if dt == Float64 {
		return Float32
	}
	return Float64
}

func isErr(err, kind error) bool { return err != nil && errors.Is(err, kind) }
