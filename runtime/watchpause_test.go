package runtime

import (
	"context"
	"testing"

	"go.starlark.net/starlark"
)

// The watchdog sleeps only while every registered thread waits for a
// long operation, and is woken as soon as one stops waiting or a thread
// that does not wait arrives.
func TestWatchIdleOnlyWhileEveryThreadWaits(t *testing.T) {
	w := &heapWatch{accounts: map[*memAccount]struct{}{}, wake: make(chan struct{}, 1)}
	woken := func() bool {
		select {
		case <-w.wake:
			return true
		default:
			return false
		}
	}
	if !w.idle() {
		t.Fatal("no accounts: want idle")
	}
	a, b := &memAccount{who: "a"}, &memAccount{who: "b"}
	w.register(a)
	w.register(b)
	woken()
	doneA := w.markBusy(a)
	if w.idle() {
		t.Fatal("b does not wait: want awake")
	}
	doneB := w.markBusy(b)
	if !w.idle() {
		t.Fatal("both wait: want idle")
	}
	inner := w.markBusy(b) // nested: b waits until both end
	doneB()
	if !w.idle() || woken() {
		t.Fatal("b still waits for its inner operation: want idle, not woken")
	}
	inner()
	if w.idle() || !woken() {
		t.Fatal("b stopped waiting: want awake and woken")
	}
	c := &memAccount{who: "c"}
	doneC := w.markBusy(c) // not registered yet
	if w.idle() {
		t.Fatal("b does not wait: want awake")
	}
	w.unregister(b)
	if !w.idle() {
		t.Fatal("only a, waiting: want idle")
	}
	w.register(c) // arrives waiting
	if !w.idle() {
		t.Fatal("a and c wait: want idle")
	}
	w.register(&memAccount{who: "d"})
	if w.idle() || !woken() {
		t.Fatal("d arrived not waiting: want awake and woken")
	}
	doneA()
	doneC()
	if w.busy != 0 {
		t.Fatalf("busy count %d after every wait ended", w.busy)
	}
}

// A script whose top level multiplies large matrices keeps the watchdog
// asleep for each product (into an existing array, so that no allocation
// comes between them): it samples about twice around each one (as it
// starts, as it returns), where awake it samples every few milliseconds
// of the products' 100 ms or more each; a body's
// operations never mark its spawner's thread as waiting.
func TestWatchSleepsDuringLongMatmul(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	rt.AddBuiltin("samples", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		return starlark.MakeUint64(watch.taken.Load()), nil
	})
	g := execScript(t, rt, `
a = accel.ones([2048, 2048])
c = accel.zeros([2048, 2048])
s0 = samples()
for i in range(3):
    accel.matmul(a, a, out = c)
s1 = samples()
n = 0
for i in range(300000):
    n += 1
s2 = samples()
`)
	during := g["s1"].(starlark.Int)
	before := g["s0"].(starlark.Int)
	after := g["s2"].(starlark.Int)
	d, _ := starlark.Int.Sub(during, before).Int64()
	if d > 3*4 {
		t.Errorf("%d samples during 3 products of 2048² (want at most 4 each: the watchdog should sleep)", d)
	}
	t.Logf("%d samples during the products", d)
	// The loop after them runs Starlark code: the watchdog samples.
	if l, _ := starlark.Int.Sub(after, during).Int64(); l < 2 {
		t.Errorf("%d samples during a Starlark loop; want the watchdog awake", l)
	}
	if m := accountOf(context.Background()); m != nil {
		t.Errorf("a context of no thread has account %s", m.who)
	}
	// A body's context carries its spawner's values: its attempt decides.
	top := newTopLevel(context.Background(), &memAccount{who: "top"})
	if m := accountOf(top.ctx); m != top.mem {
		t.Errorf("a top level's context gives account %v, want its own", m)
	}
	first := withAttemptAccount(context.WithValue(top.ctx, runKey{}, &run{}))
	if m := accountOf(first); m != nil {
		t.Errorf("the default work of a body spawned by the top level has account %s, want none", m.who)
	}
	body := &memAccount{who: "body"}
	first.Value(attemptKey{}).(*attemptAccount).mem.Store(body)
	if m := accountOf(first); m != body {
		t.Errorf("a body's context gives account %v, want the body's", m)
	}
	// A retry's attempt has its own: the first attempt's body, were it
	// still running, speaks only for its own thread.
	retry := withAttemptAccount(context.WithValue(top.ctx, runKey{}, &run{}))
	if m := accountOf(retry); m != nil {
		t.Errorf("a new attempt's context gives account %s before its thread starts, want none", m.who)
	}
	if m := accountOf(first); m != body {
		t.Errorf("the first attempt's context gives account %v after a retry began, want its own body's", m)
	}
}
