package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/registry"
)

// Issue 13, item 2: a positive budget below one byte is refused at spawn,
// never taken as unlimited.
func TestMemoryBudget_BelowOneByte(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	for mb, shown := range map[string]string{"1e-7": "1e-07", "1e-300": "1e-300", "5e-324": "5e-324"} {
		_, err := rt.ExecFile(context.Background(), "tiny.star", `spawn(id=1, metadata={"max_memory_mb": `+mb+`})`)
		want := "spawn: metadata: max_memory_mb: got " + shown + ", less than one byte (9.5367431640625e-07 MB); want at least one byte, or leave it out for the default 500"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("max_memory_mb=%s: %v, want an error containing %q", mb, err, want)
		}
	}
	var th *registry.Thread
	_ = rt.Store().View(func(tx *registry.Tx) error { th, _ = tx.Get(1); return nil })
	if th != nil {
		t.Errorf("a refused spawn left a record: %+v", th)
	}
	// One byte exactly is a budget, and the default work does not fit it.
	execScript(t, rt, `t = spawn(id=2, metadata={"max_memory_mb": 1.0/1048576})`)
	if r := record(t, rt, 2); r.Status != registry.StatusFailed || !strings.Contains(r.Error, "exceeds memory budget") {
		t.Errorf("a one-byte budget: %s %q", r.Status, r.Error)
	}
	// accel rounds a sub-byte budget up to one byte, never to unlimited.
	if b, err := accel.NewBudgetMB(1e-300); err != nil || b.Limit() != 1 {
		t.Errorf("accel.NewBudgetMB(1e-300) = %v, %v; want a one-byte budget", b.Limit(), err)
	}
}

// A budget larger than what the process may use says so in the history.
func TestMemoryBudget_MoreThanTheMachine(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	execScript(t, rt, `spawn(id=1, run=lambda: 1, metadata={"max_memory_mb": 1e12})`)
	r := record(t, rt, 1)
	if r.Status != registry.StatusSucceeded || !hasLine(r, "Memory budget of 1000000000000.0MB is more than this process may use (") {
		t.Errorf("%s %q", r.Status, history(r))
	}
}

// Issue 13, item 3: a body's spawns are bounded (children per thread,
// descendants per top-level thread) and refused with ErrSpawnLimit.
func TestSpawnLimits_Children(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 4})
	execScript(t, rt, `
def leaf():
    return 1
def fan():
    res = spawn_batch([{"run": leaf, "caching": False} for i in range(40)])
    ok = len([r for r in res if type(r) == "Thread" and r.status == "succeeded"])
    refused = [r.error for r in res if type(r) != "Thread"]
    return {"ok": ok, "refused": len(refused), "first": refused[0]}
def greedy():
    for i in range(40):
        spawn(run=leaf, caching=False)
t = spawn(id=1, run=fan, ttl=60)
u = spawn(id=100, run=greedy, ttl=60, wait=False)
`)
	r := record(t, rt, 1)
	if r.Status != registry.StatusSucceeded {
		t.Fatalf("fan: %s %s", r.Status, r.Error)
	}
	want := `{"first":"spawn_batch: refused: thread 1.0 has spawned 32 threads, the most one thread body may (runtime.Options.MaxChildren)","ok":32,"refused":8}`
	if string(r.Result) != want {
		t.Errorf("fan: %s\nwant %s", r.Result, want)
	}
	greedy := waitFor(t, rt, 100)
	if greedy.Status != registry.StatusFailed || !strings.Contains(greedy.Error, "spawn: refused: thread 100.0 has spawned 32 threads") {
		t.Errorf("greedy: %s %q", greedy.Status, greedy.Error)
	}
	rt.mu.Lock()
	n := len(rt.runs)
	rt.mu.Unlock()
	if n != 0 {
		t.Errorf("%d runs still tracked", n)
	}
}

// The recursive attack of the issue: with ttl=1 a body that spawns itself
// created 985 threads. Now the whole tree is bounded, and errors.Is tells
// the limit apart.
func TestSpawnLimits_RecursionBounded(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 4, MaxChildren: 3, MaxDescendants: 10})
	g := execScript(t, rt, `
def rec(d):
    for i in range(3):
        spawn(run=rec, args=(d + 1,), ttl=1, caching=False)
    return d
`)
	req := request(1)
	req.Run, req.Args, req.TTL, req.Caching = g["rec"].(starlark.Callable), starlark.Tuple{starlark.MakeInt(0)}, 5, false
	h, err := rt.Spawn(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := h.Wait(context.Background())
	if rec.Status != registry.StatusFailed || !errors.Is(RunErr(h), ErrSpawnLimit) {
		t.Errorf("root: %s %v", rec.Status, RunErr(h))
	}
	var total int
	_ = rt.Store().View(func(tx *registry.Tx) error {
		ts, err := tx.List(registry.Filter{})
		total = len(ts)
		return err
	})
	if total > 1+10 {
		t.Errorf("%d threads in the registry; at most 1 + MaxDescendants (10) may exist", total)
	}
	if total < 1+3 {
		t.Errorf("only %d threads: the first children should have been allowed", total)
	}
}

func TestSpawnLimits_Forbidden(t *testing.T) {
	rt := newTestRuntime(t, Options{MaxChildren: -1})
	execScript(t, rt, `
def parent():
    return spawn(run=lambda: 1).status
spawn(id=1, run=parent)
spawn(id=2, run=lambda: 2)  # the top level is not bounded
`)
	if r := record(t, rt, 1); r.Status != registry.StatusFailed || !strings.Contains(r.Error, "does not let thread bodies spawn threads") {
		t.Errorf("%s %q", r.Status, r.Error)
	}
	if r := record(t, rt, 2); r.Status != registry.StatusSucceeded {
		t.Errorf("top-level spawn: %s %q", r.Status, r.Error)
	}
}

// A child gets at most the TTL its parent has left, and a sandboxed
// parent's children are sandboxed.
func TestSpawn_ChildInheritsTTL(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 2})
	execScript(t, rt, `
def child():
    return current().ttl
def parent():
    return spawn(run=child, ttl=20, caching=False).result
spawn(id=1, run=parent, ttl=2)
`)
	r := record(t, rt, 1)
	if r.Status != registry.StatusSucceeded {
		t.Fatalf("parent: %s %s", r.Status, r.Error)
	}
	var ttl float64
	if _, err := fmt.Sscan(string(r.Result), &ttl); err != nil || ttl <= 0 || ttl > 2 {
		t.Errorf("child's TTL %s, want at most the parent's 2 s", r.Result)
	}
	c := record(t, rt, 2)
	if !c.Sandbox || !hasLine(c, "TTL capped at ") || !hasLine(c, "what its parent thread 1.0 has left (asked for 20.0s).") {
		t.Errorf("child: sandbox=%v %q", c.Sandbox, history(c))
	}
}

// Issue 13, item 4: a parent's end (return, TTL, cancel, failure) cancels
// the children it left unfinished, queued or running.
func TestParentEnd_CancelsChildren(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 3})
	g := execScript(t, rt, `
def spin():
    while True:
        pass
def returns():
    spawn(id=11, run=spin, ttl=60, wait=False)
    return 1
def times_out():
    spawn(id=21, run=spin, ttl=60, wait=False)
    spin()
def fails():
    spawn(id=31, run=spin, ttl=60, wait=False)
    return 1 // 0
def runs_on():
    spawn(id=41, run=spin, ttl=60, wait=False)
    spin()
`)
	fn := func(name string) starlark.Callable { return g[name].(starlark.Callable) }
	start := time.Now()
	for _, c := range []struct {
		id     float64
		name   string
		ttl    float64
		status string
		why    string
	}{
		{10, "returns", 60, registry.StatusSucceeded, "its body returned"},
		{20, "times_out", 0.5, registry.StatusTimedOut, "thread 20.0 exceeded its TTL of 0.5s"},
		{30, "fails", 60, registry.StatusFailed, "its body returned"},
	} {
		req := request(c.id)
		req.Run, req.TTL, req.Caching = fn(c.name), c.ttl, false
		h, err := rt.Spawn(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := h.Wait(context.Background()); p.Status != c.status {
			t.Errorf("parent %s: %s %s", c.name, p.Status, p.Error)
		}
		child := waitFor(t, rt, c.id+1)
		want := "its parent thread " + registry.ID(c.id).String() + " ended (" + c.why + ")."
		if child.Status == registry.StatusTimedOut && c.status == registry.StatusTimedOut {
			continue // its capped TTL ended it first: as good
		}
		if child.Status != registry.StatusCancelled || !(hasLine(child, "Cancelled while running: "+want) || hasLine(child, "Cancelled before it started: "+want)) {
			t.Errorf("child of %s: %s %q, want cancelled: %s", c.name, child.Status, history(child), want)
		}
	}
	// cancel() of the parent.
	req := request(40)
	req.Run, req.TTL, req.Caching, req.Wait = fn("runs_on"), 60, false, false
	h, err := rt.Spawn(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for record(t, rt, 40).Status != registry.StatusRunning || len(rt.Threads()) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := rt.Cancel(40, ""); err != nil {
		t.Fatal(err)
	}
	h.Wait(context.Background())
	if c := waitFor(t, rt, 41); c.Status != registry.StatusCancelled || !hasLine(c, "its parent thread 40.0 ended (cancelled by cancel())") {
		t.Errorf("child of a cancelled parent: %s %q", c.Status, history(c))
	}
	if !errors.Is(RunErr(h), ErrCancelled) {
		t.Errorf("RunErr of a cancelled thread: %v", RunErr(h))
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("parents and children took %v to end; children with ttl=60 outlived their parents", d)
	}
}

// A child still queued when its parent ends is cancelled before it runs.
func TestParentEnd_CancelsQueuedChild(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 1})
	execScript(t, rt, `
def parent():
    spawn(id=2, run=lambda: 1, wait=False, caching=False)
    return 1
spawn(id=1, run=parent)
`)
	c := waitFor(t, rt, 2)
	if c.Status != registry.StatusCancelled || !hasLine(c, "Cancelled before it started: its parent thread 1.0 ended (its body returned).") {
		t.Errorf("%s %q", c.Status, history(c))
	}
}

// ttl=1e-9 ends timed_out, not cancelled with a TTL message.
func TestTTL_Tiny(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	g := execScript(t, rt, "def body():\n    return 1\n")
	req := request(1)
	req.Run, req.TTL = g["body"].(starlark.Callable), 1e-9
	h, err := rt.Spawn(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := h.Wait(context.Background())
	if r.Status != registry.StatusTimedOut || !strings.Contains(r.Error, "thread 1.0 exceeded its TTL of 1e-09s") || !errors.Is(RunErr(h), ErrTTLExceeded) {
		t.Errorf("%s %q %v", r.Status, r.Error, RunErr(h))
	}
}

// Every limit is an error errors.Is tells apart, at the top level too,
// and it is still a *starlark.EvalError.
func TestTypedErrors_TopLevel(t *testing.T) {
	rt := newTestRuntime(t, Options{MaxSteps: 1000})
	_, err := rt.ExecFile(context.Background(), "steps.star", "for i in range(100000):\n    pass\n")
	var ee *starlark.EvalError
	if !errors.Is(err, ErrStepLimit) || !errors.As(err, &ee) {
		t.Errorf("step budget: %v", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(fmt.Errorf("%w by SIGTERM", ErrInterrupted))
	_, err = rt.ExecFile(ctx, "int.star", "for i in range(100000):\n    pass\n")
	if !errors.Is(err, ErrInterrupted) || !errors.As(err, &ee) {
		t.Errorf("interrupted: %v", err)
	}
	rt2 := newTestRuntime(t, Options{})
	g := execScript(t, rt2, "def spin():\n    while True:\n        pass\n")
	req := request(1)
	req.Run, req.TTL = g["spin"].(starlark.Callable), 0.2
	h, _ := rt2.Spawn(context.Background(), req)
	if err := RunErr(h); !errors.Is(err, ErrTTLExceeded) {
		t.Errorf("TTL: %v", err)
	}
	req = request(2)
	req.Run, req.Metadata = nil, map[string]any{"max_memory_mb": 1}
	h, _ = rt2.Spawn(context.Background(), req)
	if err := RunErr(h); !errors.Is(err, ErrMemoryLimit) || !errors.Is(err, accel.ErrBudget) {
		t.Errorf("the default work over its budget: %v", err)
	}
	if RunErr(nil) != nil {
		t.Error("RunErr(nil) != nil")
	}
}

// Under ForbidUnsandboxed no lineage operation yields an unsandboxed
// record, and a run of such a record is refused.
func TestForbidUnsandboxed(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/thread_registry.json"
	// Another program, without the policy, left an unsandboxed thread.
	open := newTestRuntime(t, Options{RegistryPath: path})
	execScript(t, open, `spawn(id=9, run=lambda: 1, sandbox=False)`)
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	rt := newTestRuntime(t, Options{RegistryPath: path, ForbidUnsandboxed: true})
	execScript(t, rt, `spawn(id=1, run=lambda: 1)`)
	for _, src := range []string{
		`spawn(id=2, run=lambda: 1, sandbox=False)`,
		`branch(1, 3, overrides={"sandbox": False})`,
		`fork(1, [4, 5], overrides=[None, {"sandbox": False}])`,
		`mutate(1, {"sandbox": False})`,
		`merge(1, 9, strategy="prefer-right")`,
	} {
		_, err := rt.ExecFile(context.Background(), "policy.star", src)
		if !errors.Is(err, ErrUnsandboxedForbidden) || !strings.Contains(err.Error(), "unsandboxed threads are forbidden by the embedding application") {
			t.Errorf("%s: %v", src, err)
		}
	}
	for _, id := range []registry.ID{2, 3, 4, 5} {
		_ = rt.Store().View(func(tx *registry.Tx) error {
			if th, err := tx.Get(id); err == nil {
				t.Errorf("thread %s was written: sandbox=%v", id, th.Sandbox)
			}
			return nil
		})
	}
	if r := record(t, rt, 1); !r.Sandbox {
		t.Error("mutate changed the sandbox flag despite the policy")
	}
	// A sandboxed branch is fine.
	execScript(t, rt, `branch(1, 6, overrides={"priority": 3})`)

	// Running an unsandboxed record (run(id) will do it; here the plan is
	// made before the policy applies).
	req := request(7)
	req.Run, req.Sandbox = starlark.NewBuiltin("one", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		return starlark.MakeInt(1), nil
	}), false
	rt.opts.ForbidUnsandboxed = false
	p, err := rt.prepare(context.Background(), "spawn", req, nil)
	rt.opts.ForbidUnsandboxed = true
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.enter("spawn"); err != nil {
		t.Fatal(err)
	}
	j := rt.newRun(context.Background(), p)
	if err := rt.commits.commit1(rt.createFn(p, j)); err != nil {
		t.Fatal(err)
	}
	rt.launch(j, true)
	rec, _ := j.Wait(context.Background())
	if rec.Status != registry.StatusFailed || !errors.Is(RunErr(j), ErrUnsandboxedForbidden) || !hasLine(rec, "Refused to run: thread 7.0 is unsandboxed") {
		t.Errorf("run of an unsandboxed record: %s %q %v", rec.Status, history(rec), RunErr(j))
	}
}
