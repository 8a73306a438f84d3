package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/internal/syncbuf"
	"github.com/autonode/autonode/registry"
)

func TestSpawn_DefaultWork(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	execScript(t, rt, `spawn(id=1, stage="CORE", priority=2, ttl=15.0, metadata={"max_memory_mb": 1000}, name="YourCoreThread")`)
	r := record(t, rt, 1)
	if r.Status != registry.StatusSucceeded {
		t.Fatalf("status %s (%s), want succeeded", r.Status, r.Error)
	}
	h := history(r)
	want := []string{
		"Thread 'YourCoreThread' initialized with priority 2.",
		"Spawning 'YourCoreThread' | ID: 1.0 | Device: CPU | Stage: CORE | Priority: 2 | TTL: 15.0s | Metadata: {'max_memory_mb': 1000}",
	}
	for i, w := range want {
		if h[i] != w {
			t.Errorf("history[%d] = %q, want %q", i, h[i], w)
		}
	}
	if last := h[len(h)-1]; last != "CPU computation complete." {
		t.Errorf("last history line %q", last)
	}
	if !hasLine(r, "Running default work (512x512 float64 matmul) on CPU (sandboxed).") {
		t.Errorf("no sandboxed-run line in %q", h)
	}
	var res struct {
		Checksum float64 `json:"checksum"`
		GFLOPS   float64 `json:"gflops"`
		N        int     `json:"n"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil || res.N != 512 || res.Checksum == 0 {
		t.Errorf("result %s: %v", r.Result, err)
	}
	if r.DeviceUsed != "cpu" || r.StartedAt == "" || r.FinishedAt == "" || r.DurationMS <= 0 || r.Owner == "" {
		t.Errorf("run fields: device_used=%q started=%q finished=%q duration=%v owner=%q", r.DeviceUsed, r.StartedAt, r.FinishedAt, r.DurationMS, r.Owner)
	}
}

func TestSpawn_MemoryBudgetFailure(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	execScript(t, rt, `spawn(id=1e-05, metadata={"max_memory_mb": 1})`)
	r := record(t, rt, 1e-05)
	if r.Status != registry.StatusFailed || r.Name != "Thread-0-base" {
		t.Fatalf("status %s name %s, want failed Thread-0-base", r.Status, r.Name)
	}
	h := history(r)
	if got, want := h[len(h)-1], "CPU computation failed Thread 1e-05 exceeds memory budget. Needs 6.00MB, allowed 1MB."; got != want {
		t.Errorf("last line %q, want %q", got, want)
	}
	if !strings.Contains(h[1], "| ID: 1e-05 |") || !strings.Contains(h[1], "Metadata: {'max_memory_mb': 1}") {
		t.Errorf("spawning line %q", h[1])
	}
}

func TestSpawn_CriticalPrefersGPU(t *testing.T) {
	restore := lookupDevice
	lookupDevice = func(string) (accel.Device, error) {
		return nil, errors.New("device gpu: no GPU available (cuda: none)")
	}
	t.Cleanup(func() { lookupDevice = restore })
	rt := newTestRuntime(t, Options{})
	execScript(t, rt, `spawn(id=3, stage="CRITICAL", priority=9)`)
	r := record(t, rt, 3)
	h := history(r)
	if h[1] != "Stage is CRITICAL. Auto-switching to GPU." || !strings.Contains(h[2], "| Device: GPU | Stage: CRITICAL | Priority: 9 |") {
		t.Errorf("history %q", h)
	}
	if !hasLine(r, "No GPU backend available (device gpu: no GPU available (cuda: none)); running on the CPU.") {
		t.Errorf("no fallback note in %q", h)
	}
	if r.Device != "gpu" || r.DeviceUsed != "cpu" || r.Status != registry.StatusSucceeded {
		t.Errorf("device %s used %s status %s", r.Device, r.DeviceUsed, r.Status)
	}
}

func TestSpawn_Validation(t *testing.T) {
	rt := newTestRuntime(t, Options{ForbidUnsandboxed: true})
	cases := []struct {
		edit func(*SpawnRequest)
		want string
	}{
		{func(r *SpawnRequest) { r.Stage = "FAST" }, `spawn: stage: got "FAST", want one of CRITICAL, CORE, BASE`},
		{func(r *SpawnRequest) { r.Device = "tpu" }, `spawn: device: got "tpu", want one of cpu, gpu, cuda, metal, opencl`},
		{func(r *SpawnRequest) { r.Priority = -1 }, `spawn: priority: got -1, want a non-negative integer`},
		{func(r *SpawnRequest) { r.TTL = 0 }, `spawn: ttl: got 0.0, want a positive number of seconds`},
		{func(r *SpawnRequest) { r.Metadata = map[string]any{"max_memory_mb": "lots"} }, `spawn: metadata: max_memory_mb: got 'lots', want a positive number of megabytes`},
		{func(r *SpawnRequest) { r.Name = "a\x01b" }, `spawn: name:`},
		{func(r *SpawnRequest) { r.Token = "short" }, `spawn: token: invalid value: token is 5 characters long`},
		{func(r *SpawnRequest) { id := registry.ID(-1); r.ID = &id }, `spawn: id: invalid value: thread id -1.0 is negative`},
		{func(r *SpawnRequest) { r.Sandbox = false }, `spawn: sandbox: unsandboxed threads are forbidden by the embedding application`},
	}
	for _, c := range cases {
		req := request(1)
		c.edit(req)
		_, err := rt.Spawn(context.Background(), req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
	// Nothing was persisted.
	_ = rt.Store().View(func(tx *registry.Tx) error {
		if n := tx.Len(); n != 0 {
			t.Errorf("%d threads persisted by refused spawns", n)
		}
		return nil
	})
}

func TestSpawn_DryRun(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	req := request(7)
	req.DryRun = true
	h, err := rt.Spawn(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := h.Wait(context.Background())
	if err != nil || rec.Status != registry.StatusDryRun || !h.Done() {
		t.Fatalf("dry run: %v %v", rec, err)
	}
	_ = rt.Store().View(func(tx *registry.Tx) error {
		if tx.Exists(7) {
			t.Error("a dry run was persisted")
		}
		return nil
	})
}

func TestToken(t *testing.T) {
	rt, err := New(Options{RegistryPath: filepath.Join(t.TempDir(), "r.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	_, err = rt.token("")
	want := "no token: pass token=..., set AUTONODE_TOKEN, or use --token (create one with autonode token)"
	if err == nil || err.Error() != want || !errors.Is(err, registry.ErrTokenRequired) {
		t.Errorf("Token(\"\") = %v, want %q", err, want)
	}
	_, err = rt.ExecFile(context.Background(), "t.star", `spawn(id=1)`)
	if err == nil || !strings.Contains(err.Error(), "spawn: token: "+want) {
		t.Errorf("spawn without a token: %v", err)
	}
}

func TestSpawn_ExplicitTokenOwnedByBoth(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	own := "fedcba9876543210fedcba9876543210"
	req := request(1)
	req.Token = own
	if _, err := rt.Spawn(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{own, testToken} {
		if err := rt.authorize(1, tok); err != nil {
			t.Errorf("token %s...: %v", tok[:4], err)
		}
	}
	if err := rt.authorize(1, "ffffffffffffffffffffffffffffffff"); !errors.Is(err, registry.ErrAccess) {
		t.Errorf("a stranger's token: %v", err)
	}
}

// blockers returns builtins for scheduling tests: block() waits for
// release, note(name) records the order in which bodies run.
type blockers struct {
	mu      sync.Mutex
	order   []string
	release chan struct{}
	started chan struct{}
}

func (b *blockers) install(rt *Runtime) {
	rt.AddBuiltin("block", func(th *starlark.Thread, _ *starlark.Builtin, _ starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		b.started <- struct{}{}
		select {
		case <-b.release:
		case <-rt.contextOf(th).Done():
		}
		return starlark.None, nil
	})
	rt.AddBuiltin("note", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		b.mu.Lock()
		b.order = append(b.order, string(args[0].(starlark.String)))
		b.mu.Unlock()
		return starlark.None, nil
	})
}

func TestScheduler_Order(t *testing.T) {
	restore := lookupDevice
	lookupDevice = func(string) (accel.Device, error) { return nil, errors.New("no GPU in this test") }
	t.Cleanup(func() { lookupDevice = restore })
	rt := newTestRuntime(t, Options{CPUWorkers: 1})
	b := &blockers{release: make(chan struct{}), started: make(chan struct{}, 1)}
	b.install(rt)
	execScript(t, rt, `
def blocker():
    block()
def work(name):
    note(name)
hs = [spawn(id=1, run=blocker, wait=False)]
`)
	<-b.started
	execScript(t, rt, `
def work(name):
    note(name)
hs = [
    spawn(id=10, run=work, args=("base-1",), stage="BASE", priority=1, wait=False),
    spawn(id=11, run=work, args=("base-5a",), stage="BASE", priority=5, wait=False),
    spawn(id=12, run=work, args=("core-1",), stage="CORE", priority=1, wait=False),
    spawn(id=13, run=work, args=("critical-0",), stage="CRITICAL", priority=0, wait=False),
    spawn(id=14, run=work, args=("core-3",), stage="CORE", priority=3, wait=False),
    spawn(id=15, run=work, args=("base-5b",), stage="BASE", priority=5, wait=False),
]
`)
	close(b.release)
	execScript(t, rt, `wait([get(i) for i in range(10, 16)])`)
	for id := 10.0; id < 16; id++ {
		waitFor(t, rt, id)
	}
	want := "critical-0 core-3 core-1 base-5a base-5b base-1"
	if got := strings.Join(b.order, " "); got != want {
		t.Errorf("start order %q, want %q", got, want)
	}
}

// waitFor waits until thread id has ended in rt.
func waitFor(t testing.TB, rt *Runtime, id float64) *registry.Thread {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		rt.mu.Lock()
		j := rt.runs[registry.ID(id)]
		rt.mu.Unlock()
		if j == nil {
			return record(t, rt, id)
		}
		if rec, err := j.Wait(context.Background()); err == nil {
			return rec
		}
	}
	t.Fatalf("thread %v did not end", id)
	return nil
}

func TestTTL_StopsInfiniteLoop(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	start := time.Now()
	execScript(t, rt, `
def spin():
    n = 0
    while True:
        n += 1
t = spawn(id=1, run=spin, ttl=0.3)
`)
	elapsed := time.Since(start)
	r := record(t, rt, 1)
	if r.Status != registry.StatusTimedOut {
		t.Fatalf("status %s (%s), want timed_out", r.Status, r.Error)
	}
	if elapsed > 3*time.Second {
		t.Errorf("took %v to stop a 0.3s TTL", elapsed)
	}
	if !hasLine(r, "Timed out: thread 1.0 exceeded its TTL of 0.3s; stopped.") {
		t.Errorf("history %q", history(r))
	}
}

// A Go kernel that ignores its context is abandoned after the grace period.
func TestTTL_KernelIgnoringContext(t *testing.T) {
	old := abandonGrace
	abandonGrace = 100 * time.Millisecond
	t.Cleanup(func() { abandonGrace = old })
	rt := newTestRuntime(t, Options{})
	release := make(chan struct{})
	rt.RegisterKernel("stubborn", func(ctx context.Context, ex *accel.Exec, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		<-release
		return starlark.None, nil
	})
	defer close(release)
	start := time.Now()
	execScript(t, rt, `
def body():
    kernels.stubborn()
spawn(id=1, run=body, ttl=0.2)
`)
	if r := record(t, rt, 1); r.Status != registry.StatusTimedOut || time.Since(start) > 3*time.Second {
		t.Errorf("status %s after %v", r.Status, time.Since(start))
	}
}

func TestStepBudget(t *testing.T) {
	rt := newTestRuntime(t, Options{MaxSteps: 10000})
	execScript(t, rt, `
def long():
    for i in range(1000000):
        pass
spawn(id=1, run=long)
`)
	r := record(t, rt, 1)
	if r.Status != registry.StatusFailed || !strings.Contains(r.Error, "step budget exhausted (10000 steps)") {
		t.Errorf("status %s error %q", r.Status, r.Error)
	}
	// The top level has the same budget.
	_, err := rt.ExecFile(context.Background(), "top.star", "for i in range(1000000):\n    pass\n")
	if err == nil || !strings.Contains(err.Error(), "step budget exhausted") {
		t.Errorf("top level: %v", err)
	}
}

func TestCancel(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 1})
	execScript(t, rt, `
def spin():
    while True:
        pass
running = spawn(id=1, run=spin, ttl=60, wait=False)
pending = spawn(id=2, run=spin, ttl=60, wait=False)
`)
	// Wait until thread 1 runs.
	deadline := time.Now().Add(10 * time.Second)
	for record(t, rt, 1).Status != registry.StatusRunning {
		if time.Now().After(deadline) {
			t.Fatal("thread 1 never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	execScript(t, rt, `
cancel(2)
cancel(1)
a = wait(get(1))
`)
	r1, r2 := waitFor(t, rt, 1), waitFor(t, rt, 2)
	if r2.Status != registry.StatusCancelled || !hasLine(r2, "Cancelled before it started: cancel() was called.") {
		t.Errorf("pending: %s %q", r2.Status, history(r2))
	}
	if r1.Status != registry.StatusCancelled || !hasLine(r1, "Cancelled while running: cancel() was called.") {
		t.Errorf("running: %s %q", r1.Status, history(r1))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if err := rt.Cancel(1, ""); err == nil || !strings.Contains(err.Error(), "not pending or running") {
		t.Errorf("cancel of an ended thread: %v", err)
	}
	if err := rt.Cancel(1, "ffffffffffffffffffffffffffffffff"); !errors.Is(err, registry.ErrAccess) {
		t.Errorf("cancel with a wrong token: %v", err)
	}
}

func TestCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "thread_registry.json")
	rt := newTestRuntime(t, Options{RegistryPath: path})
	script := `
def f(x, scale=1):
    return x * x * scale
`
	execScript(t, rt, script+`
spawn(id=1, run=f, args=(3,))
spawn(id=2, run=f, args=(3,))              # hit
spawn(id=3, run=f, args=(4,))              # args changed
spawn(id=4, run=f, args=(3,), kwargs={"scale": 2})
spawn(id=5, run=f, args=(3,), device="gpu")  # device changed
spawn(id=6, run=f, args=(3,), caching=False)
spawn(id=7)
spawn(id=8)                                # the default work is cached too
spawn(id=12, run=f, args=(3,), sandbox=False)  # sandbox changed
spawn(id=13, run=f, args=(3,), metadata={"lr": 0.1})  # metadata changed
`)
	want := map[float64]string{1: "succeeded", 2: "cached", 3: "succeeded", 4: "succeeded", 5: "succeeded", 6: "succeeded", 7: "succeeded", 8: "cached", 12: "succeeded", 13: "succeeded"}
	for id, st := range want {
		if r := record(t, rt, id); r.Status != st {
			t.Errorf("thread %v: status %s, want %s", id, r.Status, st)
		}
	}
	if r := record(t, rt, 2); string(r.Result) != "9" || !r.Cached || !hasLine(r, "Cache hit: reusing the result of thread 1.0") {
		t.Errorf("cached thread: result %s cached %v history %q", r.Result, r.Cached, history(r))
	}
	// A changed script source runs again.
	execScript(t, rt, script+"# edited\nspawn(id=9, run=f, args=(3,))\n")
	if r := record(t, rt, 9); r.Status != registry.StatusSucceeded {
		t.Errorf("changed source: %s", r.Status)
	}
	// A global the body reads is part of the key (argv changes it below).
	const argvScript = "K = len(argv)\ndef g():\n    return K\nt = spawn(run=g)\n"
	statusOf := func(g starlark.StringDict) string {
		v, _ := g["t"].(starlark.HasAttrs).Attr("status")
		return string(v.(starlark.String))
	}
	if st := statusOf(execScript(t, rt, argvScript)); st != "succeeded" {
		t.Errorf("argv script, first run: %s", st)
	}
	if st := statusOf(execScript(t, rt, argvScript)); st != "cached" {
		t.Errorf("argv script, second run: %s", st)
	}
	rerun := script + "t = spawn(run=f, args=(5,))\n"
	execScript(t, rt, rerun)
	rt.Close()

	// The cache survives a restart: the same script reuses the result.
	rt2 := newTestRuntime(t, Options{RegistryPath: path, Argv: []string{"x"}})
	if st := statusOf(execScript(t, rt2, argvScript)); st != "succeeded" {
		t.Errorf("argv script with another argv: %s", st)
	}
	g := execScript(t, rt2, rerun)
	id := g["t"].(starlark.HasAttrs)
	st, _ := id.Attr("status")
	res, _ := id.Attr("result")
	if st.String() != `"cached"` || res.String() != "25" {
		t.Errorf("after restart: %s %s", st, res)
	}
}

func TestCache_Uncacheable(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	execScript(t, rt, `
def f(a):
    return a.shape[0]
spawn(id=1, run=f, args=(accel.zeros(2),))
spawn(id=2, run=f, args=(accel.zeros(2),))
`)
	for _, id := range []float64{1, 2} {
		r := record(t, rt, id)
		if r.Status != registry.StatusSucceeded || !hasLine(r, "Caching skipped: argument 0: a value of type") {
			t.Errorf("thread %v: %s %s %q", id, r.Status, r.Error, history(r))
		}
	}
}

func TestSandbox(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	execScript(t, rt, `
def direct():
    return host.env("HOME")
def helper():
    return host.env("HOME")
def nested():
    return helper()
def via(fn):
    return fn()
def spawner():
    return spawn(run=direct, sandbox=False).status
def allowed():
    return host.env("HOME") != None
spawn(id=1, run=direct)
spawn(id=2, run=nested)
spawn(id=3, run=via, args=(lambda: host.env("HOME"),))
spawn(id=4, run=spawner)
spawn(id=5, run=allowed, sandbox=False)
`)
	for _, id := range []float64{1, 2, 3} {
		r := record(t, rt, id)
		want := fmt.Sprintf("host.env: refused: thread %s is sandboxed; spawn it with sandbox=False to allow host access", registry.ID(id))
		if r.Status != registry.StatusFailed || !strings.Contains(r.Error, want) {
			t.Errorf("thread %v: %s %q, want failed with %q", id, r.Status, r.Error, want)
		}
	}
	if r := record(t, rt, 4); r.Status != registry.StatusFailed || !strings.Contains(r.Error, "spawn: sandbox: thread 4.0 is sandboxed and cannot spawn an unsandboxed thread") {
		t.Errorf("escape by spawning: %s %q", r.Status, r.Error)
	}
	r := record(t, rt, 5)
	if r.Status != registry.StatusSucceeded || !hasLine(r, "Elevated: the unsandboxed body called host.env.") || !hasLine(r, "(unsandboxed: host access allowed)") {
		t.Errorf("unsandboxed: %s %s %q", r.Status, r.Error, history(r))
	}
	// The top level follows the embedder's policy.
	_, err := rt.ExecFile(context.Background(), "top.star", `host.env("HOME")`)
	if err == nil || !strings.Contains(err.Error(), "host.env: refused: the embedding application does not allow host access") {
		t.Errorf("top level, embedded: %v", err)
	}
	rt2 := newTestRuntime(t, Options{TopLevelHost: true})
	execScript(t, rt2, `host.env("HOME")`)
}

// Issue 12, item 6: admission instead of refusal. A busy CPU never holds
// a thread back; while memory is short a thread waits (without its worker
// slot) up to Options.MemoryWait, starts when memory frees up, and
// otherwise fails with the overload message, wrapping ErrNoMemory.
func TestLoadGuard(t *testing.T) {
	var mu sync.Mutex
	memPct, cpuPct := 10.0, 100.0
	sampler := func() (float64, float64, error) {
		mu.Lock()
		defer mu.Unlock()
		return memPct, cpuPct, nil
	}
	set := func(m float64) {
		mu.Lock()
		memPct = m
		mu.Unlock()
	}
	rt := newTestRuntime(t, Options{LoadSampler: sampler, MemoryWait: 400 * time.Millisecond})
	uncached := func(id float64) *SpawnRequest {
		req := request(id)
		req.Caching = false
		return req
	}
	// CPU 100% busy: both run.
	res := rt.SpawnBatch(context.Background(), []*SpawnRequest{uncached(1), uncached(2)}, 0)
	for i, b := range res {
		if b.Err != nil {
			t.Fatalf("spawn %d with the CPU busy: %v", i+1, b.Err)
		}
		if rec, _ := b.Handle.Wait(context.Background()); rec.Status != registry.StatusSucceeded {
			t.Errorf("thread %d with the CPU busy: %s %q", i+1, rec.Status, rec.Error)
		}
	}
	// Memory short for longer than MemoryWait: the spawn is accepted, the
	// thread fails with today's message and never runs.
	set(97.5)
	time.Sleep(1200 * time.Millisecond) // the sampler runs once a second
	begin := time.Now()
	h, err := rt.Spawn(context.Background(), uncached(3))
	if err != nil {
		t.Fatalf("spawn with memory short: %v", err)
	}
	rec, _ := h.Wait(context.Background())
	want := "the machine is overloaded (memory 97.5% used; the limit is 95%) and it did not get better within 400ms"
	if rec.Status != registry.StatusFailed || !strings.Contains(rec.Error, want) || !errors.Is(RunErr(h), ErrNoMemory) {
		t.Errorf("memory short: %s %q %v, want failed with %q", rec.Status, rec.Error, RunErr(h), want)
	}
	if !hasLine(rec, "Waiting for memory: memory 97.5% used") || len(rec.Attempts) != 0 || time.Since(begin) < 400*time.Millisecond {
		t.Errorf("memory short: %q, %d attempts, after %v", history(rec), len(rec.Attempts), time.Since(begin))
	}
	// Memory frees up while it waits: it starts.
	rt2 := newTestRuntime(t, Options{LoadSampler: sampler, MemoryWait: time.Minute})
	req := uncached(4)
	req.Wait = false
	h, err = rt2.Spawn(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if h.Done() {
		t.Fatal("a thread started while memory was short")
	}
	set(50)
	rec, _ = h.Wait(context.Background())
	if rec.Status != registry.StatusSucceeded || !hasLine(rec, "Memory is free again; starting.") {
		t.Errorf("after memory freed up: %s %q %q", rec.Status, rec.Error, history(rec))
	}
}

func TestCrashMarking(t *testing.T) {
	path := filepath.Join(t.TempDir(), "thread_registry.json")
	// A process that has exited: its pid is dead.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	dead := owner.ID{Host: owner.Self().Host, PID: cmd.Process.Pid, Start: 1}
	reused := owner.ID{Host: owner.Self().Host, PID: owner.Self().PID, Start: owner.Self().Start + 1}
	store, err := registry.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = store.Update(func(tx *registry.Tx) error {
		for i, o := range []owner.ID{dead, reused, owner.Self()} {
			th := registry.NewThread(registry.ID(i+1), "BASE")
			th.Status, th.Owner = registry.StatusRunning, o.String()
			if err := tx.Create(th, testToken); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	var stderr syncbuf.Buffer
	rt := newTestRuntime(t, Options{RegistryPath: path, Stderr: &stderr})
	for id, want := range map[float64]string{1: registry.StatusCrashed, 2: registry.StatusCrashed, 3: registry.StatusRunning} {
		if r := record(t, rt, id); r.Status != want {
			t.Errorf("thread %v: %s, want %s", id, r.Status, want)
		}
	}
	if !strings.Contains(stderr.String(), "marked 2 thread(s) crashed") {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestConcurrentSpawns(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 4})
	const bodySrc = `
def body(i):
    log("body %d" % i)
    return {"i": i, "me": current().id}
`
	g := run0(t, rt, bodySrc)
	body := g["body"].(starlark.Callable)
	const goroutines, each = 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for gi := 0; gi < goroutines; gi++ {
		wg.Add(1)
		go func(gi int) {
			defer wg.Done()
			for k := 0; k < each; k++ {
				req := request(0)
				req.ID = nil
				req.Run, req.Args = body, starlark.Tuple{starlark.MakeInt(gi*each + k)}
				req.Wait = k%2 == 0
				h, err := rt.Spawn(context.Background(), req)
				if err != nil {
					errs <- err
					continue
				}
				if rec, err := h.Wait(context.Background()); err != nil || rec.Status != registry.StatusSucceeded {
					errs <- fmt.Errorf("thread %s: %v %v", h.ID(), rec, err)
				}
			}
		}(gi)
	}
	// And a batch from a script at the same time.
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := rt.ExecFile(context.Background(), "batch.star", bodySrc+`
hs = spawn_batch([{"run": body, "args": (1000 + i,), "wait": False} for i in range(100)], workers=8)
res = wait(hs)
if len([t for t in res if t.status == "succeeded"]) != 100:
    fail("batch: %r" % res)
`)
		if err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_ = rt.Store().View(func(tx *registry.Tx) error {
		ts, _ := tx.List(registry.Filter{})
		if len(ts) != goroutines*each+100+0 {
			t.Errorf("%d threads in the registry, want %d", len(ts), goroutines*each+100)
		}
		for _, th := range ts {
			if th.Status != registry.StatusSucceeded || !hasLine(th, "body ") {
				t.Errorf("thread %s: %s %q", th.ID, th.Status, history(th))
				break
			}
		}
		return nil
	})
}

// run0 runs src and returns its globals.
func run0(t testing.TB, rt *Runtime, src string) starlark.StringDict {
	return execScript(t, rt, src)
}

func TestSpawnBatch_FailuresDoNotStopOthers(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	reqs := []*SpawnRequest{request(1), request(1), request(2), request(3)}
	reqs[2].Stage = "FAST"
	res := rt.SpawnBatch(context.Background(), reqs, 2)
	if res[0].Err != nil || res[3].Err != nil {
		t.Fatalf("good specs failed: %v, %v", res[0].Err, res[3].Err)
	}
	if res[1].Err == nil || !errors.Is(res[1].Err, registry.ErrExists) {
		t.Errorf("duplicate id: %v", res[1].Err)
	}
	if res[2].Err == nil || !strings.Contains(res[2].Err.Error(), `spawn_batch: stage: got "FAST"`) {
		t.Errorf("bad stage: %v", res[2].Err)
	}
	for _, i := range []int{0, 3} {
		if rec, err := res[i].Handle.Wait(context.Background()); err != nil || rec.Status != registry.StatusSucceeded {
			t.Errorf("spec %d: %v %v", i, rec, err)
		}
	}
}

// A body that waits for its children must not deadlock a one-worker pool.
func TestNestedWait_OneWorker(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 1})
	execScript(t, rt, `
def child(i):
    return i
def parent():
    hs = [spawn(run=child, args=(i,), wait=False) for i in range(3)]
    one = spawn(run=child, args=(10,))
    return [t.result for t in wait(hs)] + [one.result]
t = spawn(id=100, run=parent, ttl=20)
if t.status != "succeeded" or t.result != [0, 1, 2, 10]:
    fail("parent: %s %s %s" % (t.status, t.result, t.error))
`)
}

func TestClose_WaitsForThreads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "thread_registry.json")
	rt, err := New(Options{RegistryPath: path, SessionToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ExecFile(context.Background(), "t.star", `
def slow():
    for i in range(20000):
        pass
    return 1
spawn(id=1, run=slow, wait=False)
`); err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := registry.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_ = store.View(func(tx *registry.Tx) error {
		th, err := tx.Get(1)
		if err != nil || th.Status != registry.StatusSucceeded {
			t.Errorf("after Close: %v %v", th, err)
		}
		return nil
	})
	if _, err := rt.Spawn(context.Background(), request(2)); err == nil {
		t.Error("spawn after Close succeeded")
	}
}

func TestContextCancellation(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := rt.ExecFile(ctx, "t.star", `
def spin():
    while True:
        pass
spawn(id=1, run=spin, ttl=60)
`)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	_ = err
	if r := waitFor(t, rt, 1); r.Status != registry.StatusCancelled {
		t.Errorf("status %s", r.Status)
	}
	// The top level itself stops too.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := rt.Eval(ctx2, "[x for x in range(100000000)]"); err == nil {
		t.Error("Eval ignored its context")
	}
}

// Spawn freezes exactly what a body can reach: the top level keeps
// mutating its other globals, and a shared value is frozen, not raced.
func TestSpawn_FreezesReachableGlobals(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	execScript(t, rt, `
results = []
shared = {"k": 1}
def helper():
    return shared["k"]
def body():
    return helper()
hs = [spawn(run=body, wait=False, caching=False) for i in range(20)]
for h in hs:
    results.append(h)  # not reachable from body: still mutable
`)
	_, err := rt.ExecFile(context.Background(), "frozen.star", `
shared = {"k": 1}
def body():
    return shared["k"]
spawn(run=body)
shared["k"] = 2
`)
	if err == nil || !strings.Contains(err.Error(), "frozen") {
		t.Errorf("mutating a value a body can reach: %v", err)
	}
}

// Snippets evaluated one by one (a REPL) spawn their functions too.
func TestEval_Spawn(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	ctx := context.Background()
	for _, src := range []string{"def f(x):\n    return x + 1\n", "def g():\n    return 0\n", "t = spawn(run=f, args=(1,))"} {
		if _, err := rt.Eval(ctx, src); err != nil {
			t.Fatalf("%q: %v", src, err)
		}
	}
	v, err := rt.Eval(ctx, "(t.status, t.result, spawn(run=f, args=(1,)).status)")
	if err != nil || v.String() != `("succeeded", 2, "cached")` {
		t.Errorf("got %v, %v", v, err)
	}
}
