package accel

import (
	"errors"
	"math"
	"sync"
	"testing"
)

func TestBudget(t *testing.T) {
	b := NewBudget(1000)
	e := New(Options{Budget: b})
	a, err := e.Zeros(Float64, 100) // 800 bytes
	if err != nil {
		t.Fatal(err)
	}
	if b.Used() != 800 || a.Nbytes() != 800 {
		t.Fatalf("used %d, nbytes %d; want 800", b.Used(), a.Nbytes())
	}
	_, err = e.Zeros(Float32, 100) // 400 more: too much while a is held
	wantErr(t, err, ErrBudget, "zeros: array of shape (100,) float32 exceeds memory budget: needs 400 bytes (800 bytes already in use), allowed 1000 bytes")
	if b.Used() != 800 {
		t.Fatalf("a refused allocation changed the charge to %d", b.Used())
	}
	a.Free()
	a.Free() // harmless
	if b.Used() != 0 {
		t.Fatalf("after Free used %d, want 0", b.Used())
	}
	if _, err := e.Zeros(Float32, 250); err != nil {
		t.Fatalf("after Free the budget should fit 1000 bytes: %v", err)
	}
	if b.Peak() != 1000 {
		t.Errorf("peak %d, want 1000", b.Peak())
	}
	// An operation whose output does not fit fails before computing.
	b2 := NewBudget(3 * 64 * 64 * 8)
	e2 := New(Options{Budget: b2})
	x, _ := e2.Ones(Float64, 64, 64)
	y, _ := e2.Ones(Float64, 64, 64)
	z, err := e2.Matmul(bg, x, y)
	if err != nil {
		t.Fatalf("third 64×64 fits exactly: %v", err)
	}
	_, err = e2.Add(bg, x, y)
	wantErr(t, err, ErrBudget, "add: array of shape (64,64) float64 exceeds memory budget: needs 0.03MB (0.09MB already in use), allowed 0.09MB")
	// Once z is unreachable the collector hands its bytes back.
	if v, _ := z.At(0, 0); v != 64 {
		t.Fatalf("z[0,0] = %v, want 64", v)
	}
	if _, err := e2.Add(bg, x, y); err != nil {
		t.Fatalf("after z became garbage: %v", err)
	}
}

func TestBudgetMB(t *testing.T) {
	b, err := NewBudgetMB(1)
	if err != nil || b.Limit() != 1<<20 {
		t.Fatalf("NewBudgetMB(1) = %v, %v", b, err)
	}
	wantErr(t, b.Check(6*1<<20), ErrBudget, "needs 6.00MB, allowed 1MB")
	wantErr(t, b.Check(-1), ErrArgument, "negative")
	for _, mb := range []float64{0, -5, math.Inf(1)} {
		u, err := NewBudgetMB(mb)
		if err != nil || u.Limit() != 0 || u.Check(1<<62) != nil {
			t.Errorf("NewBudgetMB(%v) should be unlimited: %v, %v", mb, u, err)
		}
	}
	_, err = NewBudgetMB(math.NaN())
	wantErr(t, err, ErrArgument, "NaN")
	var nilBudget *Budget
	if nilBudget.Reserve(1<<40) != nil || nilBudget.Used() != 0 || nilBudget.Check(1) != nil {
		t.Error("a nil budget must be unlimited")
	}
	nilBudget.Release(5)
	half, _ := NewBudgetMB(0.5)
	wantErr(t, half.Check(1<<20), ErrBudget, "allowed 0.5MB")
	if s := half.String(); s != "0 bytes of 0.5MB used" {
		t.Errorf("String() = %q", s)
	}
}

// TestBudgetReclaimsGarbage checks that temporaries dropped without Free do
// not exhaust the budget: the collector returns their bytes.
func TestBudgetReclaimsGarbage(t *testing.T) {
	b := NewBudget(3 << 20)
	e := New(Options{Budget: b})
	x, _ := e.Ones(Float64, 1<<17) // 1 MB
	for i := range 50 {
		y, err := mulScalarChain(e, x, i)
		if err != nil {
			t.Fatalf("iteration %d: %v (budget %s)", i, err, b)
		}
		_ = y
	}
}

// mulScalarChain makes two 1 MB temporaries and drops one of them.
func mulScalarChain(e *Exec, x *Array, i int) (*Array, error) {
	t1, err := e.BinaryScalar(bg, OpMul, x, float64(i))
	if err != nil {
		return nil, err
	}
	return e.BinaryScalar(bg, OpAdd, t1, 1)
}

func TestBudgetConcurrent(t *testing.T) {
	b := NewBudget(100 * 8 * 4)
	e := New(Options{Budget: b})
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				a, err := e.Zeros(Float64, 100)
				if err != nil {
					if !errors.Is(err, ErrBudget) {
						t.Error(err)
					}
					mu.Lock()
					refused++
					mu.Unlock()
					continue
				}
				if b.Used() > b.Limit() {
					t.Errorf("used %d over limit %d", b.Used(), b.Limit())
				}
				a.Free()
			}
		}()
	}
	wg.Wait()
	if b.Used() != 0 {
		t.Errorf("after all frees used %d", b.Used())
	}
	if b.Peak() > b.Limit() {
		t.Errorf("peak %d over limit %d", b.Peak(), b.Limit())
	}
	t.Logf("%d of 1600 allocations refused", refused)
}

func TestFreedAndNil(t *testing.T) {
	e := New(Options{})
	a, _ := e.Ones(Float64, 3)
	a.Free()
	if !a.Freed() {
		t.Fatal("Freed() false after Free")
	}
	checks := map[string]error{}
	_, checks["add"] = e.Add(bg, a, a)
	_, checks["exp"] = e.Exp(bg, a)
	_, checks["sum"] = e.Sum(bg, a)
	_, checks["matmul"] = e.Matmul(bg, a, a)
	_, checks["reshape"] = e.Reshape(a, 3)
	_, checks["float64s"] = a.Float64s()
	_, checks["at"] = a.At(0)
	_, checks["copy"] = e.Copy(bg, a)
	for name, err := range checks {
		wantErr(t, err, ErrFreed, "was freed")
		_ = name
	}
	_, err := e.Add(bg, nil, a)
	wantErr(t, err, ErrArgument, "nil")
	_, err = e.Binary(bg, BinaryOp(99), a, a)
	wantErr(t, err, ErrArgument, "not one of")
	_, err = e.Unary(bg, UnaryOp(0), a)
	wantErr(t, err, ErrArgument, "not one of")
	_, err = e.Reduce(bg, ReduceOp(42), a)
	wantErr(t, err, ErrArgument, "not one of")
}

func TestExecClose(t *testing.T) {
	b := NewBudget(0)
	e := New(Options{Budget: b})
	other := New(Options{})
	keep, _ := other.Ones(Float64, 4)
	var arrays []*Array
	for range 3000 { // enough to prune the tracking list
		a, err := e.Zeros(Float32, 8)
		if err != nil {
			t.Fatal(err)
		}
		arrays = append(arrays, a)
		a.Free()
	}
	live, _ := e.Ones(Float64, 10)
	view, _ := e.Reshape(live, 2, 5)
	if b.Used() != 80 {
		t.Fatalf("used %d before Close, want 80", b.Used())
	}
	e.Close()
	e.Close()
	if b.Used() != 0 || !live.Freed() || !view.Freed() {
		t.Fatalf("after Close: used %d, freed %v/%v", b.Used(), live.Freed(), view.Freed())
	}
	_, err := e.Sum(bg, live)
	wantErr(t, err, ErrFreed)
	_, err = e.Zeros(Float64, 1)
	wantErr(t, err, ErrClosed, "zeros: the Exec was closed")
	if keep.Freed() {
		t.Fatal("Close freed an array of another Exec")
	}
	_ = arrays
}
