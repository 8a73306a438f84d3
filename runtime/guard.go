package runtime

import (
	"context"
	"sync/atomic"

	"go.starlark.net/starlark"
)

// checkEvery is how many Starlark steps run between two checks of a
// thread's limits. The interpreter calls the check through OnMaxSteps. At
// 8 steps a list that doubles each loop iteration (5 to 7 steps) is seen
// within one or two doublings; the checks make the tightest loop (x = i +
// 1) about 1.2 times slower than on a bare starlark.Thread, 1.1 times at
// 16 steps (BenchmarkGuard).
const checkEvery = 8

// localGuard is the thread-local key of a Starlark thread's guard.
const localGuard = "autonode.guard"

// guard enforces the limits of one Starlark thread between its
// instructions: the step budget (Options.MaxSteps), the memory account of
// a thread body (its metadata.max_memory_mb) and the process-wide memory
// emergency, and remembers why the thread was stopped, so that the error
// can say so in a way errors.Is understands.
type guard struct {
	maxSteps uint64
	mem      *memAccount // nil: not measured (load() threads)
	onStop   func(why error)
	why      atomic.Pointer[error]
	// ctx is the context that stops the thread; a watcher cancels the
	// thread when it ends, and each check looks at done too, so that the
	// code never runs more than checkEvery steps past its end.
	ctx  context.Context
	done <-chan struct{}
}

// install makes g the guard of th: it checks every checkEvery steps.
func (g *guard) install(th *starlark.Thread) {
	g.done = g.ctx.Done()
	th.SetLocal(localGuard, g)
	th.SetMaxExecutionSteps(g.next(0))
	th.OnMaxSteps = g.check
}

// next is the step count of the check after one at steps.
func (g *guard) next(steps uint64) uint64 {
	n := steps + checkEvery
	if g.mem != nil && g.mem.recheck > 0 {
		n = steps + 1
	}
	if g.maxSteps > 0 && n > g.maxSteps {
		n = g.maxSteps
	}
	return n
}

// check runs on th's goroutine when th reaches its step checkpoint.
func (g *guard) check(th *starlark.Thread) {
	select {
	case <-g.done:
		g.stop(th, context.Cause(g.ctx))
		return
	default:
	}
	if g.maxSteps > 0 && th.Steps >= g.maxSteps {
		g.stop(th, limitf(ErrStepLimit, "step budget exhausted (%d steps)", g.maxSteps))
		return
	}
	if g.mem != nil {
		if err := g.mem.check(th); err != nil {
			g.stop(th, err)
			return
		}
	}
	th.SetMaxExecutionSteps(g.next(th.Steps))
}

// stop stops th's code with why (the first reason given wins). It may be
// called from any goroutine.
func (g *guard) stop(th *starlark.Thread, why error) {
	if why == nil {
		why = context.Canceled
	}
	if g.why.CompareAndSwap(nil, &why) && g.onStop != nil {
		g.onStop(why)
	}
	th.Cancel((*g.why.Load()).Error())
}

// wrap adds why the thread was stopped to err, its interpreter error.
func (g *guard) wrap(err error) error {
	if err == nil {
		return nil
	}
	if why := g.why.Load(); why != nil {
		return &stoppedError{err: err, why: *why}
	}
	return err
}

// guardOf returns th's guard, or nil.
func guardOf(th *starlark.Thread) *guard {
	g, _ := th.Local(localGuard).(*guard)
	return g
}
