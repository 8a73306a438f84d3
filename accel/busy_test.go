package accel

import (
	"context"
	"testing"
)

// Options.Busy hears of every operation of LongOpWork or more, with the
// operation's context, and of no smaller one; each call's done runs once
// the operation has returned.
func TestBusyHook(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "mine")
	var starts, ends int
	open := false
	ex := New(Options{Busy: func(c context.Context) func() {
		if c.Value(key{}) != "mine" {
			t.Errorf("Busy got a context without the operation's value")
		}
		if open {
			t.Errorf("Busy called again before the last operation ended")
		}
		starts++
		open = true
		return func() { ends++; open = false }
	}})
	small, err := ex.Ones(Float64, 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Add(ctx, small, small); err != nil {
		t.Fatal(err)
	}
	if starts != 0 {
		t.Errorf("a 16-element add was reported as long")
	}
	// 128×128 @ 128×128 is 2^21 multiply-adds: long, though its output is
	// only 2^14 elements.
	m, err := ex.Ones(Float64, 128, 128)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Matmul(ctx, m, m); err != nil {
		t.Fatal(err)
	}
	if starts != 1 || ends != 1 {
		t.Errorf("a 128³ product: %d starts, %d ends; want 1, 1", starts, ends)
	}
	big, err := ex.Ones(Float64, LongOpWork)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Add(ctx, big, big); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Sum(ctx, big); err != nil {
		t.Fatal(err)
	}
	if starts != 3 || ends != 3 {
		t.Errorf("after a long add and a long sum: %d starts, %d ends; want 3, 3", starts, ends)
	}
}
