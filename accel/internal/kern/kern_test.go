package kern

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// newRand returns a freshly seeded generator and logs the seed so that a
// failure can be replayed.
func newRand(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// forEachLevel runs fn once per kernel level this machine supports
// (generic, and avx2/avx512 where available).
func forEachLevel(t *testing.T, fn func(t *testing.T)) {
	for l := levelGeneric; l <= maxLevel; l++ {
		t.Run(levelNames[l], func(t *testing.T) {
			prev := setLevel(l)
			defer setLevel(prev)
			if Impl() != levelNames[l] {
				t.Fatalf("Impl() = %q, want %q", Impl(), levelNames[l])
			}
			fn(t)
		})
	}
}

func randF64(r *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = r.Float64()*2 - 1
	}
	return s
}

func randF32(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

func nanF64(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

func nanF32(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

const (
	eps64 = 0x1p-52
	eps32 = 0x1p-23
)

// sentinel marks C elements outside the m×n window, which must survive.
const sentinel = 12345.5

// refGemm is the naive float64 reference; it also returns Σ|a||b| per
// element for the error bound.
func refGemm(m, n, k int, a func(i, p int) float64, b func(p, j int) float64) (c, abs []float64) {
	c = make([]float64, m*n)
	abs = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				x, y := a(i, p), b(p, j)
				s += x * y
				sa += math.Abs(x * y)
			}
			c[i*n+j], abs[i*n+j] = s, sa
		}
	}
	return c, abs
}

type shape struct{ m, n, k, pa, pb, pc int }

var gemmShapes = []shape{
	{1, 1, 1, 0, 0, 0}, {0, 5, 3, 0, 0, 0}, {5, 0, 3, 0, 0, 0}, {4, 6, 0, 0, 0, 2},
	{2, 3, 5, 1, 2, 3}, {7, 11, 13, 0, 0, 0}, {17, 17, 17, 3, 1, 5},
	{33, 65, 31, 0, 7, 1}, {65, 33, 129, 2, 0, 0}, {127, 129, 61, 1, 1, 1},
	{12, 16, 300, 0, 0, 0}, {24, 32, 257, 5, 3, 2}, {13, 47, 513, 0, 0, 4},
	{1, 200, 70, 0, 0, 0}, {200, 1, 70, 0, 0, 0}, {97, 101, 103, 0, 0, 0},
	{150, 260, 530, 1, 0, 3}, {300, 20, 40, 0, 0, 0},
	// Matrix-vector shapes (n == 1 or m == 1), small and parallel.
	{1, 5000, 300, 2, 3, 0}, {3000, 1, 400, 1, 2, 3}, {1, 33, 1, 0, 0, 1}, {65, 1, 1, 0, 1, 0},
}

func checkGemm64(t *testing.T, s shape, r *rand.Rand) {
	t.Helper()
	lda, ldb, ldc := s.k+s.pa, s.n+s.pb, s.n+s.pc
	a := randF64(r, max(0, s.m*lda))
	b := randF64(r, max(0, s.k*ldb))
	c := make([]float64, s.m*ldc)
	for i := range c {
		c[i] = sentinel
		if i%ldc < s.n {
			c[i] = math.NaN()
		}
	}
	if err := GemmF64(context.Background(), s.m, s.n, s.k, a, max(1, lda), b, max(1, ldb), c, max(1, ldc)); err != nil {
		t.Fatalf("%v: %v", s, err)
	}
	ref, abs := refGemm(s.m, s.n, s.k, func(i, p int) float64 { return a[i*lda+p] }, func(p, j int) float64 { return b[p*ldb+j] })
	for i := 0; i < s.m; i++ {
		for j := 0; j < ldc; j++ {
			got := c[i*ldc+j]
			if j >= s.n {
				if got != sentinel {
					t.Fatalf("%v: C[%d][%d] outside the window changed to %v", s, i, j, got)
				}
				continue
			}
			want := ref[i*s.n+j]
			tol := 2*float64(s.k+2)*eps64*abs[i*s.n+j] + 1e-300
			if !(math.Abs(got-want) <= tol) {
				t.Fatalf("%v: C[%d][%d] = %v, want %v (tol %g)", s, i, j, got, want, tol)
			}
		}
	}
}

func checkGemm32(t *testing.T, s shape, r *rand.Rand) {
	t.Helper()
	lda, ldb, ldc := s.k+s.pa, s.n+s.pb, s.n+s.pc
	a := randF32(r, max(0, s.m*lda))
	b := randF32(r, max(0, s.k*ldb))
	c := make([]float32, s.m*ldc)
	for i := range c {
		c[i] = sentinel
		if i%ldc < s.n {
			c[i] = float32(math.NaN())
		}
	}
	if err := GemmF32(context.Background(), s.m, s.n, s.k, a, max(1, lda), b, max(1, ldb), c, max(1, ldc)); err != nil {
		t.Fatalf("%v: %v", s, err)
	}
	ref, abs := refGemm(s.m, s.n, s.k, func(i, p int) float64 { return float64(a[i*lda+p]) }, func(p, j int) float64 { return float64(b[p*ldb+j]) })
	for i := 0; i < s.m; i++ {
		for j := 0; j < ldc; j++ {
			got := float64(c[i*ldc+j])
			if j >= s.n {
				if got != sentinel {
					t.Fatalf("%v: C[%d][%d] outside the window changed to %v", s, i, j, got)
				}
				continue
			}
			want := ref[i*s.n+j]
			tol := 2*float64(s.k+2)*eps32*abs[i*s.n+j] + 1e-30
			if !(math.Abs(got-want) <= tol) {
				t.Fatalf("%v: C[%d][%d] = %v, want %v (tol %g)", s, i, j, got, want, tol)
			}
		}
	}
}

func TestGemm(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := newRand(t)
		for _, s := range gemmShapes {
			checkGemm64(t, s, r)
			checkGemm32(t, s, r)
		}
	})
}

// TestGemmLevelsAgree runs the same inputs through every level and
// compares the results with each other.
func TestGemmLevelsAgree(t *testing.T) {
	r := newRand(t)
	m, n, k := 70, 90, 300
	a, b := randF64(r, m*k), randF64(r, k*n)
	var first []float64
	for l := levelGeneric; l <= maxLevel; l++ {
		prev := setLevel(l)
		c := nanF64(m * n)
		err := GemmF64(context.Background(), m, n, k, a, k, b, n, c, n)
		setLevel(prev)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = c
			continue
		}
		for i := range c {
			if math.Abs(c[i]-first[i]) > 1e-12*float64(k) {
				t.Fatalf("%s and generic differ at %d: %v vs %v", levelNames[l], i, c[i], first[i])
			}
		}
	}
}

func TestGemmErrors(t *testing.T) {
	ctx := context.Background()
	a := make([]float64, 6)
	for _, tc := range []struct {
		name             string
		m, n, k          int
		la, lda, lb, ldb int
		lc, ldc          int
	}{
		{"negative", -1, 2, 3, 6, 3, 6, 2, 6, 2},
		{"short A", 2, 2, 3, 5, 3, 6, 2, 4, 2},
		{"short B", 2, 2, 3, 6, 3, 5, 2, 4, 2},
		{"short C", 2, 2, 3, 6, 3, 6, 2, 3, 2},
		{"lda", 2, 2, 3, 6, 2, 6, 2, 4, 2},
		{"ldb", 2, 2, 3, 6, 3, 6, 1, 4, 2},
		{"ldc", 2, 2, 3, 6, 3, 6, 2, 4, 1},
		{"zero ld", 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{"overflow", math.MaxInt / 2, 2, 2, 6, 2, 6, 2, 6, math.MaxInt / 4},
	} {
		aa, bb, cc := make([]float64, tc.la), make([]float64, tc.lb), make([]float64, tc.lc)
		if err := GemmF64(ctx, tc.m, tc.n, tc.k, aa, tc.lda, bb, tc.ldb, cc, tc.ldc); err == nil {
			t.Errorf("%s: GemmF64 returned nil error", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
		af, bf, cf := make([]float32, tc.la), make([]float32, tc.lb), make([]float32, tc.lc)
		if err := GemmF32(ctx, tc.m, tc.n, tc.k, af, tc.lda, bf, tc.ldb, cf, tc.ldc); err == nil {
			t.Errorf("%s: GemmF32 returned nil error", tc.name)
		}
	}
	_ = a
	//lint:ignore SA1012 a nil context must not panic
	if err := GemmF64(nil, 1, 1, 1, []float64{2}, 1, []float64{3}, 1, a, 1); err != nil || a[0] != 6 { //nolint:staticcheck
		t.Errorf("nil ctx: err %v, c %v", err, a[0])
	}
}

func TestGemmCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("4096×4096 cancellation test skipped in -short mode")
	}
	const n = 4096
	a, b, c := make([]float64, n*n), make([]float64, n*n), make([]float64, n*n)
	for i := range a {
		a[i], b[i] = 1, 1
	}
	forEachLevel(t, func(t *testing.T) {
		// Best of three, so that one scheduling hiccup on a loaded machine
		// does not fail the test; a kernel that ignores ctx fails all three.
		best := time.Duration(1<<63 - 1)
		for attempt := 0; attempt < 3 && best > 100*time.Millisecond; attempt++ {
			best = min(best, testCancel(t, n, a, b, c))
		}
		bound := 100 * time.Millisecond
		if raceEnabled {
			bound = 2 * time.Second // -race slows the Go code between checks
		}
		if best > bound {
			t.Errorf("cancellation took %v, want < %v", best, bound)
		}
	})
}

// testCancel cancels a running product and returns how long it took to
// return.
func testCancel(t *testing.T, n int, a, b, c []float64) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- GemmF64(ctx, n, n, n, a, n, b, n, c, n) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	cancelled := time.Now()
	err := <-errc
	lat := time.Since(cancelled)
	t.Logf("impl %s: cancelled after %v, returned %v later", Impl(), cancelled.Sub(start), lat)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// An already-cancelled context returns at once.
	if err := GemmF32(ctx, 2, 2, 2, make([]float32, 4), 2, make([]float32, 4), 2, make([]float32, 4), 2); !errors.Is(err, context.Canceled) {
		t.Errorf("pre-cancelled: err = %v", err)
	}
	return lat
}

func FuzzGemm(f *testing.F) {
	f.Add(uint8(3), uint8(5), uint8(7), uint8(1), uint8(0), uint8(2), uint8(0), int64(1))
	f.Add(uint8(17), uint8(33), uint8(65), uint8(0), uint8(3), uint8(0), uint8(2), int64(2))
	f.Fuzz(func(t *testing.T, m, n, k, pa, pb, pc, lvl uint8, seed int64) {
		s := shape{int(m % 80), int(n % 80), int(k), int(pa % 5), int(pb % 5), int(pc % 5)}
		prev := setLevel(int(lvl) % (maxLevel + 1))
		defer setLevel(prev)
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		checkGemm64(t, s, r)
		checkGemm32(t, s, r)
	})
}

var streamSizes = []int{0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 1000, streamMin + 3, 3*reduceGrain + 5}

func TestElementwise64(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := newRand(t)
		ops := []struct {
			name string
			fn   func(dst, x, y []float64)
			ref  func(x, y float64) float64
		}{
			{"add", AddF64, func(x, y float64) float64 { return x + y }},
			{"sub", SubF64, func(x, y float64) float64 { return x - y }},
			{"mul", MulF64, func(x, y float64) float64 { return x * y }},
			{"div", DivF64, func(x, y float64) float64 { return x / y }},
		}
		for _, n := range streamSizes {
			x, y := randF64(r, n), randF64(r, n)
			for _, op := range ops {
				dst := nanF64(n)
				op.fn(dst, x, y)
				for i := range dst {
					if w := op.ref(x[i], y[i]); dst[i] != w {
						t.Fatalf("%s n=%d: [%d] = %v, want %v", op.name, n, i, dst[i], w)
					}
				}
				// Aliasing: dst == x.
				xx := append([]float64(nil), x...)
				op.fn(xx, xx, y)
				for i := range xx {
					if w := op.ref(x[i], y[i]); xx[i] != w {
						t.Fatalf("%s aliased n=%d: [%d] = %v, want %v", op.name, n, i, xx[i], w)
					}
				}
			}
			s := r.Float64()*4 - 2
			dst := nanF64(n)
			AddScalarF64(dst, x, s)
			for i := range dst {
				if dst[i] != x[i]+s {
					t.Fatalf("addscalar n=%d: [%d] = %v, want %v", n, i, dst[i], x[i]+s)
				}
			}
			dst = nanF64(n)
			MulScalarF64(dst, x, s)
			for i := range dst {
				if dst[i] != x[i]*s {
					t.Fatalf("mulscalar n=%d: [%d] = %v, want %v", n, i, dst[i], x[i]*s)
				}
			}
			yy := append([]float64(nil), y...)
			AxpyF64(s, x, yy)
			for i := range yy {
				w := y[i] + s*x[i]
				if math.Abs(yy[i]-w) > 2*eps64*(math.Abs(y[i])+math.Abs(s*x[i])) {
					t.Fatalf("axpy n=%d: [%d] = %v, want %v", n, i, yy[i], w)
				}
			}
			dst = nanF64(n)
			TriadF64(dst, x, y, s)
			for i := range dst {
				w := x[i] + s*y[i]
				if math.Abs(dst[i]-w) > 2*eps64*(math.Abs(x[i])+math.Abs(s*y[i])) {
					t.Fatalf("triad n=%d: [%d] = %v, want %v", n, i, dst[i], w)
				}
			}
			var sum, sabs, dot, dabs float64
			for i := range x {
				sum += x[i]
				sabs += math.Abs(x[i])
				dot += x[i] * y[i]
				dabs += math.Abs(x[i] * y[i])
			}
			if got := SumF64(x); math.Abs(got-sum) > 2*float64(n)*eps64*sabs {
				t.Fatalf("sum n=%d: %v, want %v", n, got, sum)
			}
			if got := DotF64(x, y); math.Abs(got-dot) > 2*float64(n)*eps64*dabs {
				t.Fatalf("dot n=%d: %v, want %v", n, got, dot)
			}
		}
	})
}

func TestElementwise32(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := newRand(t)
		ops := []struct {
			name string
			fn   func(dst, x, y []float32)
			ref  func(x, y float64) float64
		}{
			{"add", AddF32, func(x, y float64) float64 { return x + y }},
			{"sub", SubF32, func(x, y float64) float64 { return x - y }},
			{"mul", MulF32, func(x, y float64) float64 { return x * y }},
			{"div", DivF32, func(x, y float64) float64 { return x / y }},
		}
		for _, n := range streamSizes {
			x, y := randF32(r, n), randF32(r, n)
			for _, op := range ops {
				dst := nanF32(n)
				op.fn(dst, x, y)
				for i := range dst {
					// float64 has enough precision that rounding the
					// float64 result once gives the correctly rounded
					// float32 result.
					if w := float32(op.ref(float64(x[i]), float64(y[i]))); dst[i] != w {
						t.Fatalf("%s n=%d: [%d] = %v, want %v", op.name, n, i, dst[i], w)
					}
				}
				xx := append([]float32(nil), x...)
				op.fn(xx, xx, y)
				for i := range xx {
					if w := float32(op.ref(float64(x[i]), float64(y[i]))); xx[i] != w {
						t.Fatalf("%s aliased n=%d: [%d] = %v, want %v", op.name, n, i, xx[i], w)
					}
				}
			}
			s := float32(r.Float64()*4 - 2)
			dst := nanF32(n)
			AddScalarF32(dst, x, s)
			for i := range dst {
				if dst[i] != x[i]+s {
					t.Fatalf("addscalar n=%d: [%d] = %v, want %v", n, i, dst[i], x[i]+s)
				}
			}
			dst = nanF32(n)
			MulScalarF32(dst, x, s)
			for i := range dst {
				if dst[i] != x[i]*s {
					t.Fatalf("mulscalar n=%d: [%d] = %v, want %v", n, i, dst[i], x[i]*s)
				}
			}
			yy := append([]float32(nil), y...)
			AxpyF32(s, x, yy)
			for i := range yy {
				w := float64(y[i]) + float64(s)*float64(x[i])
				if math.Abs(float64(yy[i])-w) > 2*eps32*(math.Abs(float64(y[i]))+math.Abs(float64(s*x[i]))) {
					t.Fatalf("axpy n=%d: [%d] = %v, want %v", n, i, yy[i], w)
				}
			}
			dst = nanF32(n)
			TriadF32(dst, x, y, s)
			for i := range dst {
				w := float64(x[i]) + float64(s)*float64(y[i])
				if math.Abs(float64(dst[i])-w) > 2*eps32*(math.Abs(float64(x[i]))+math.Abs(float64(s*y[i]))) {
					t.Fatalf("triad n=%d: [%d] = %v, want %v", n, i, dst[i], w)
				}
			}
			var sum, dot, dabs, sabs float64
			for i := range x {
				sum += float64(x[i])
				sabs += math.Abs(float64(x[i]))
				dot += float64(x[i]) * float64(y[i])
				dabs += math.Abs(float64(x[i]) * float64(y[i]))
			}
			// One float32 rounding of the result plus float64 accumulation.
			if got := float64(SumF32(x)); math.Abs(got-sum) > eps32*math.Abs(sum)+float64(n)*eps64*sabs+1e-37 {
				t.Fatalf("sum n=%d: %v, want %v", n, got, sum)
			}
			if got := float64(DotF32(x, y)); math.Abs(got-dot) > eps32*math.Abs(dot)+float64(n)*eps64*dabs+1e-37 {
				t.Fatalf("dot n=%d: %v, want %v", n, got, dot)
			}
		}
	})
}

// TestSumF32Large checks float32 summation accuracy over 2^24 elements,
// where naive float32 accumulation would lose most of its digits.
func TestSumF32Large(t *testing.T) {
	if testing.Short() {
		t.Skip("2^24-element sum skipped in -short mode")
	}
	forEachLevel(t, func(t *testing.T) {
		r := newRand(t)
		n := 1 << 24
		x := make([]float32, n)
		var ref float64
		for i := range x {
			x[i] = float32(r.Float64())
			ref += float64(x[i])
		}
		got := float64(SumF32(x))
		if rel := math.Abs(got-ref) / ref; rel > 2*eps32 {
			t.Fatalf("SumF32 over 2^24: %v, want %v (relative error %g)", got, ref, rel)
		}
		got = float64(DotF32(x, x))
		var dref float64
		for _, v := range x {
			dref += float64(v) * float64(v)
		}
		if rel := math.Abs(got-dref) / dref; rel > 2*eps32 {
			t.Fatalf("DotF32 over 2^24: %v, want %v (relative error %g)", got, dref, rel)
		}
	})
}

func TestMismatchedLengthsNoPanic(t *testing.T) {
	x, y, d := make([]float64, 10), make([]float64, 7), make([]float64, 9)
	AddF64(d, x, y)
	AxpyF64(2, x, y)
	TriadF64(d, x, y, 1)
	MulScalarF64(d, x, 2)
	_ = DotF64(x, y)
	xf, yf, df := make([]float32, 10), make([]float32, 7), make([]float32, 9)
	DivF32(df, xf, yf)
	AxpyF32(2, xf, yf)
	TriadF32(df, xf, yf, 1)
	AddScalarF32(df, xf, 2)
	_ = DotF32(xf, yf)
}

func TestSmallAddAllocs(t *testing.T) {
	x, y, d := make([]float64, 16), make([]float64, 16), make([]float64, 16)
	if n := testing.AllocsPerRun(100, func() { AddF64(d, x, y) }); n != 0 {
		t.Errorf("AddF64 of 16 elements allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = SumF64(x) }); n != 0 {
		t.Errorf("SumF64 of 16 elements allocates %v times", n)
	}
}

func TestSetGeneric(t *testing.T) {
	prev := SetGeneric(true)
	if Impl() != "generic" {
		t.Errorf("Impl() = %q after SetGeneric(true)", Impl())
	}
	SetGeneric(prev)
	if !prev && Impl() != levelNames[maxLevel] {
		t.Errorf("Impl() = %q after restore, want %q", Impl(), levelNames[maxLevel])
	}
	t.Logf("Impl() = %s", Impl())
}

// TestNonTemporal covers the large-array path (non-temporal stores with a
// scalar head that aligns dst), with dst deliberately misaligned.
func TestNonTemporal(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := newRand(t)
		n := 1<<21 + 37
		x, y := randF64(r, n), randF64(r, n)
		buf := nanF64(n + 3)
		dst := buf[3 : n+3]
		AddF64(dst, x, y)
		for i := range dst {
			if dst[i] != x[i]+y[i] {
				t.Fatalf("add [%d] = %v, want %v", i, dst[i], x[i]+y[i])
			}
		}
		TriadF64(dst, x, y, 0.5)
		for i := range dst {
			if w := x[i] + 0.5*y[i]; math.Abs(dst[i]-w) > 2*eps64*(math.Abs(x[i])+math.Abs(0.5*y[i])) {
				t.Fatalf("triad [%d] = %v, want %v", i, dst[i], w)
			}
		}
		MulScalarF64(dst, x, 3)
		for i := range dst {
			if dst[i] != x[i]*3 {
				t.Fatalf("mulscalar [%d] = %v, want %v", i, dst[i], x[i]*3)
			}
		}
		if buf[0] == buf[0] || buf[2] == buf[2] {
			t.Fatal("elements before dst were written")
		}
		x32, y32 := randF32(r, n), randF32(r, n)
		buf32 := nanF32(n + 1)
		d32 := buf32[1:]
		SubF32(d32, x32, y32)
		for i := range d32 {
			if d32[i] != x32[i]-y32[i] {
				t.Fatalf("sub32 [%d] = %v, want %v", i, d32[i], x32[i]-y32[i])
			}
		}
		AddScalarF32(d32, x32, 1.5)
		for i := range d32 {
			if d32[i] != x32[i]+1.5 {
				t.Fatalf("addscalar32 [%d] = %v, want %v", i, d32[i], x32[i]+1.5)
			}
		}
	})
}
