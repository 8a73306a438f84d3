package accel

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// refMatmul multiplies with the naive triple loop, broadcasting batch axes
// and treating 1-D operands as NumPy does; it returns the result shape too.
func refMatmul(a []float64, as []int, b []float64, bs []int) ([]float64, []int, float64) {
	a2, b2 := as, bs
	if len(as) == 1 {
		a2 = []int{1, as[0]}
	}
	if len(bs) == 1 {
		b2 = []int{bs[0], 1}
	}
	m, k, n := a2[len(a2)-2], a2[len(a2)-1], b2[len(b2)-1]
	ab, bb := a2[:len(a2)-2], b2[:len(b2)-2]
	batch, _ := broadcastShapes("ref", ab, bb)
	nb := shapeSize(batch)
	out := make([]float64, nb*m*n)
	maxMag := 0.0
	for p := range nb {
		idx := refUnravel(p, batch)
		ao := refIndex(idx, ab) * m * k
		bo := refIndex(idx, bb) * k * n
		for i := range m {
			for j := range n {
				s, mag := 0.0, 0.0
				for l := range k {
					s += a[ao+i*k+l] * b[bo+l*n+j]
					mag += math.Abs(a[ao+i*k+l] * b[bo+l*n+j])
				}
				out[(p*m+i)*n+j] = s
				maxMag = max(maxMag, mag)
			}
		}
	}
	shape := append([]int{}, batch...)
	if len(as) > 1 {
		shape = append(shape, m)
	}
	if len(bs) > 1 {
		shape = append(shape, n)
	}
	return out, shape, maxMag
}

func TestMatmul(t *testing.T) {
	cases := [][2][]int{
		{{1, 1}, {1, 1}},
		{{2, 3}, {3, 4}},
		{{17, 33}, {33, 65}},
		{{127, 129}, {129, 65}},
		{{65, 127}, {127, 129}},
		{{131, 1}, {1, 3}},
		{{3, 0}, {0, 4}}, // k = 0: zeros
		{{0, 3}, {3, 4}},
		{{2, 3}, {3, 0}},
		{{5, 17, 33}, {5, 33, 7}},
		{{1, 17, 33}, {4, 33, 7}},
		{{17, 33}, {3, 33, 7}},
		{{3, 17, 33}, {33, 7}},
		{{2, 1, 4, 5}, {3, 5, 2}},
		{{33}, {33, 17}},
		{{17, 33}, {33}},
		{{33}, {33}},
		{{4, 2, 3}, {3}},
	}
	bothPaths(t, func(t *testing.T) {
		r := newRand(t)
		e := New(Options{})
		for _, dt := range dtypes {
			for _, c := range cases {
				a, ad := randArray(t, e, r, dt, c[0]...)
				b, bd := randArray(t, e, r, dt, c[1]...)
				got, err := e.Matmul(bg, a, b)
				if err != nil {
					t.Fatalf("matmul %s %s: %v", dt, shapeName(c[0], c[1]), err)
				}
				want, shape, mag := refMatmul(ad, c[0], bd, c[1])
				k := c[0][len(c[0])-1]
				checkValues(t, "matmul "+dt.String()+" "+shapeName(c[0], c[1]), got, dt, shape, want, 0, sumTol(dt, k, mag)+1e-300)
			}
		}
		// Mixed dtypes give float64.
		a := mk(t, e, Float32, []float64{1, 2, 3, 4}, 2, 2)
		b := mk(t, e, Float64, []float64{1, 0, 0, 1}, 2, 2)
		got, err := e.Matmul(bg, a, b)
		if err != nil {
			t.Fatal(err)
		}
		checkValues(t, "mixed matmul", got, Float64, []int{2, 2}, []float64{1, 2, 3, 4}, 0, 0)
	})
}

func TestMatmulErrors(t *testing.T) {
	e := New(Options{})
	z := func(shape ...int) *Array {
		a, err := e.Zeros(Float64, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	_, err := e.Matmul(bg, z(3, 4), z(5, 2))
	wantErr(t, err, ErrShape)
	if err.Error() != "matmul: shapes (3,4) and (5,2) are not aligned: 4 != 5" {
		t.Errorf("message %q", err)
	}
	_, err = e.Matmul(bg, z(2, 3, 4), z(3, 4, 2))
	wantErr(t, err, ErrShape, "batch axes (2,) and (3,) do not broadcast")
	_, err = e.Matmul(bg, z(), z(3))
	wantErr(t, err, ErrShape, "at least one axis")
	_, err = e.Matmul(bg, z(3), z(4))
	wantErr(t, err, ErrShape, "not aligned: 3 != 4")
}

// TestMatmulCancel checks that cancelling the context stops a 4096×4096
// product promptly (the thread TTL needs < 100 ms).
func TestMatmulCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 384 MB")
	}
	bothPaths(t, func(t *testing.T) {
		e := New(Options{})
		a, err := e.Full(Float64, 1.5, 4096, 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Free()
		// Best of three attempts, so that one scheduling hiccup on a loaded
		// machine does not fail the test; a kernel that ignores ctx fails all.
		best := time.Duration(math.MaxInt64)
		for attempt := range 3 {
			latency := cancelLatency(t, e, a)
			t.Logf("attempt %d: matmul 4096 returned %v after cancel", attempt, latency)
			best = min(best, latency)
			if best < 100*time.Millisecond {
				break
			}
		}
		bound := 500 * time.Millisecond // the target is 100ms; the rest is for a noisy machine
		if raceEnabled {
			bound = 10 * time.Second // only that it stops: -race slows the kernels' Go code 5–20×
		}
		if best > bound {
			t.Fatalf("matmul took %v to stop after cancel, want < 100ms (%v allowed)", best, bound)
		}
	})
	// An already-expired deadline fails at once with DeadlineExceeded.
	e := New(Options{})
	a, _ := e.Ones(Float32, 64, 64)
	ctx, cancel := context.WithTimeout(bg, -time.Second)
	defer cancel()
	_, err := e.Matmul(ctx, a, a)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

// cancelLatency starts a product of a with itself, cancels it after 50 ms
// and returns how long it took to return after the cancel.
func cancelLatency(t *testing.T, e *Exec, a *Array) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	var returned time.Time
	go func() {
		out, err := e.Matmul(ctx, a, a)
		returned = time.Now()
		if out != nil {
			out.Free()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		return returned.Sub(cancelled)
	case <-time.After(20 * time.Second):
		t.Fatal("matmul did not stop within 20s of cancel")
	}
	return 0
}

// TestSeedWorkload is the thread engine's default work: a 512×512 float64
// product checked against a budget of 3·n²·8 bytes.
func TestSeedWorkload(t *testing.T) {
	const n = 512
	small, err := NewBudgetMB(1)
	if err != nil {
		t.Fatal(err)
	}
	err = small.Check(3 * n * n * 8)
	wantErr(t, err, ErrBudget)
	if err.Error() != "exceeds memory budget: needs 6.00MB, allowed 1MB" {
		t.Errorf("message %q", err)
	}
	budget, _ := NewBudgetMB(500)
	e := New(Options{Budget: budget})
	a, err := e.Rand(Float64, 1, n, n)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.Rand(Float64, 2, n, n)
	c, err := e.Matmul(bg, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := budget.Used(); got != 3*n*n*8 {
		t.Errorf("budget used %d, want %d", got, 3*n*n*8)
	}
	// Spot-check one element against the naive sum.
	ad, bd := values(t, a), values(t, b)
	want := 0.0
	for l := range n {
		want += ad[7*n+l] * bd[l*n+9]
	}
	if got, _ := c.At(7, 9); !closeTo(got, want, 1e-12, 0) {
		t.Errorf("c[7,9] = %v, want %v", got, want)
	}
	// With 1 MB the first array already fails, before allocating.
	e1 := New(Options{Budget: small})
	_, err = e1.Zeros(Float64, n, n)
	wantErr(t, err, ErrBudget, "needs 2.00MB", "allowed 1MB", "(512,512)")
	if small.Used() != 0 {
		t.Errorf("failed allocation charged %d bytes", small.Used())
	}
}

func refTranspose(d []float64, shape, perm []int) ([]float64, []int) {
	outShape := make([]int, len(shape))
	for i, p := range perm {
		outShape[i] = shape[p]
	}
	out := make([]float64, len(d))
	for q := range out {
		oi := refUnravel(q, outShape)
		ii := make([]int, len(shape))
		for i, p := range perm {
			ii[p] = oi[i]
		}
		src := 0
		for dd, n := range shape {
			src = src*n + ii[dd]
		}
		out[q] = d[src]
	}
	return out, outShape
}

func TestTranspose(t *testing.T) {
	cases := []struct{ shape, perm []int }{
		{[]int{}, nil},
		{[]int{5}, nil},
		{[]int{1, 1}, nil},
		{[]int{1, 129}, nil},
		{[]int{33, 65}, nil},
		{[]int{300, 257}, nil}, // tiled and parallel
		{[]int{2, 3, 5}, nil},
		{[]int{2, 3, 5}, []int{0, 2, 1}},
		{[]int{2, 3, 5}, []int{1, 0, 2}},
		{[]int{4, 17, 33}, []int{2, 0, 1}},
		{[]int{3, 0, 2}, []int{2, 1, 0}},
	}
	r := newRand(t)
	e := New(Options{})
	for _, dt := range dtypes {
		for _, c := range cases {
			a, ad := randArray(t, e, r, dt, c.shape...)
			perm := c.perm
			var got *Array
			var err error
			if perm == nil {
				perm = make([]int, len(c.shape))
				for i := range perm {
					perm[i] = len(perm) - 1 - i
				}
				got, err = e.Transpose(bg, a)
			} else {
				got, err = e.Transpose(bg, a, perm...)
			}
			if err != nil {
				t.Fatal(err)
			}
			want, shape := refTranspose(ad, c.shape, perm)
			checkValues(t, "transpose "+formatShape(c.shape)+formatShape(perm), got, dt, shape, want, 0, 0)
		}
	}
	a, _ := e.Zeros(Float64, 2, 3)
	_, err := e.Transpose(bg, a, 0)
	wantErr(t, err, ErrShape, "give each axis once")
	_, err = e.Transpose(bg, a, 1, 1)
	wantErr(t, err, ErrArgument, "repeats")
	_, err = e.Transpose(bg, a, 0, 2)
	wantErr(t, err, ErrIndex, "axis 2 is out of bounds")
}
