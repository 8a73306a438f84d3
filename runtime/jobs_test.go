package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
)

// fakeClock records the delays asked of it and fires each timer at once
// (on another goroutine, as time.AfterFunc does), so that retry timing is
// checked without sleeping.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	delays []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	go f()
	return func() bool { return false }
}

func (c *fakeClock) taken() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.delays...)
}

// Issue 12, item 3: the n-th retry waits retry_delay * backoff**(n-1),
// capped at max_delay, with ±10% jitter.
func TestRetryDelays(t *testing.T) {
	for _, c := range []struct {
		name   string
		jitter float64
		want   []time.Duration
	}{
		{"no jitter", 0, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"+10%", 1, []time.Duration{1100 * time.Millisecond, 2200 * time.Millisecond, 4400 * time.Millisecond, 5500 * time.Millisecond, 5500 * time.Millisecond}},
		{"-10%", -1, []time.Duration{900 * time.Millisecond, 1800 * time.Millisecond, 3600 * time.Millisecond, 4500 * time.Millisecond, 4500 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := newTestRuntime(t, Options{})
			fc := &fakeClock{now: time.Unix(1e9, 0)}
			rt.clock, rt.jitter = fc, func() float64 { return c.jitter }
			g := execScript(t, rt, "def boom():\n    fail('again')\n")
			req := request(1)
			req.Run, req.Caching = g["boom"].(starlark.Callable), false
			req.Retries, req.RetryDelay, req.Backoff, req.MaxDelay = 5, 1, 2, 5
			h, err := rt.Spawn(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			rec, _ := h.Wait(context.Background())
			if rec.Status != registry.StatusFailed || len(rec.Attempts) != 6 {
				t.Fatalf("%s after %d attempts, want failed after 6", rec.Status, len(rec.Attempts))
			}
			got := fc.taken()
			if len(got) != len(c.want) {
				t.Fatalf("delays %v, want %v", got, c.want)
			}
			for i := range got {
				if d := got[i] - c.want[i]; d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("retry %d after %v, want %v", i+1, got[i], c.want[i])
				}
			}
			if rec.Retry == nil || *rec.Retry != (registry.RetryPolicy{Retries: 5, Delay: 1, Backoff: 2, MaxDelay: 5}) {
				t.Errorf("stored policy %+v", rec.Retry)
			}
		})
	}
	// The default jitter stays within ±10%.
	for i := 0; i < 1000; i++ {
		if j := jitterUniform(); j < -1 || j >= 1 {
			t.Fatalf("jitter %v out of [-1, 1)", j)
		}
	}
}

// A retry waits without its worker slot, on real time: with one worker,
// another thread runs while the first waits for its retry.
func TestRetryFreesItsSlot(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 1})
	g := execScript(t, rt, `
def flaky():
    if current().attempt == 1:
        fail("first")
    return "second"
def quick():
    return "quick"
`)
	req := request(1)
	req.Run, req.Caching, req.Wait = g["flaky"].(starlark.Callable), false, false
	req.Retries, req.RetryDelay = 1, 1.5
	h1, err := rt.Spawn(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for record(t, rt, 1).LatestAttempt() == nil || record(t, rt, 1).Status != registry.StatusPending {
		time.Sleep(5 * time.Millisecond)
	}
	req2 := request(2)
	req2.Run, req2.Caching = g["quick"].(starlark.Callable), false
	h2, _ := rt.Spawn(context.Background(), req2)
	r2, _ := h2.Wait(context.Background())
	if h1.Done() || r2.Status != registry.StatusSucceeded {
		t.Errorf("thread 2 did not run while thread 1 waited for its retry: done=%v %s", h1.Done(), r2.Status)
	}
	r1, _ := h1.Wait(context.Background())
	if r1.Status != registry.StatusSucceeded || len(r1.Attempts) != 2 {
		t.Errorf("thread 1: %s, %d attempts", r1.Status, len(r1.Attempts))
	}
	gap := mustTime(t, r1.Attempts[1].StartedAt).Sub(mustTime(t, r1.Attempts[0].FinishedAt))
	if gap < 1300*time.Millisecond {
		t.Errorf("the retry came %v after the failure, want about 1.5s", gap)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Issue 12, item 5: a second runtime (another process would do the same
// through the same registry file) cancels a thread the first runs; the
// first's monitor stops it within a second of the request.
func TestCancelFromAnotherRuntime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "thread_registry.json")
	a := newTestRuntime(t, Options{RegistryPath: path})
	b := newTestRuntime(t, Options{RegistryPath: path})
	g := execScript(t, a, "def spin():\n    while True:\n        pass\n")
	req := request(1)
	req.Run, req.TTL, req.Caching, req.Wait = g["spin"].(starlark.Callable), 60, false, false
	h, err := a.Spawn(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	queued := request(2)
	queued.Caching, queued.Wait, queued.After = false, false, []registry.ID{1}
	hq, err := a.Spawn(context.Background(), queued)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, b, 1, registry.StatusRunning)
	waitStatus(t, b, 2, registry.StatusWaiting)
	// The waiting one is cancelled at once, by the request itself.
	if err := b.Cancel(2, ""); err != nil {
		t.Fatal(err)
	}
	if r := record(t, b, 2); r.Status != registry.StatusCancelled || r.CancelRequest == nil {
		t.Errorf("waiting thread after the request: %s %+v", r.Status, r.CancelRequest)
	}
	asked := time.Now()
	if err := b.Cancel(1, ""); err != nil {
		t.Fatal(err)
	}
	rec, _ := h.Wait(context.Background())
	took := time.Since(asked)
	t.Logf("stopped %v after the request", took)
	if rec.Status != registry.StatusCancelled || !strings.Contains(rec.Error, "requested by cancel() in pid=") || !errors.Is(RunErr(h), ErrCancelled) {
		t.Errorf("running thread: %s %q %v", rec.Status, rec.Error, RunErr(h))
	}
	if !hasLine(rec, "Cancel requested by cancel() in pid=") || !hasLine(rec, "Cancelled while running: requested by cancel() in pid=") {
		t.Errorf("history does not name who asked: %q", history(rec))
	}
	if took > 2*time.Second {
		t.Errorf("took %v to stop, want within a second (2 s allowed)", took)
	}
	if rq, _ := hq.Wait(context.Background()); rq.Status != registry.StatusCancelled {
		t.Errorf("the waiting thread's handle: %s", rq.Status)
	}
	if err := b.Cancel(1, ""); !errors.Is(err, registry.ErrNotActive) {
		t.Errorf("cancel of an ended thread: %v", err)
	}
}

func waitStatus(t *testing.T, rt *Runtime, id float64, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for record(t, rt, id).Status != want {
		if time.Now().After(deadline) {
			t.Fatalf("thread %v never became %s (%s)", id, want, record(t, rt, id).Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The request is durable: an owner that is gone when the request comes,
// or that dies before it honours it, leaves the thread cancelled (not
// crashed) for whoever opens the registry next.
func TestCancelRequestSurvivesTheOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "thread_registry.json")
	store, err := registry.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	dead := owner.ID{Host: owner.Self().Host, PID: deadPID(t), Start: 1}.String()
	err = store.Update(func(tx *registry.Tx) error {
		for i := 1; i <= 2; i++ {
			th := registry.NewThread(registry.ID(i), "BASE")
			th.Status, th.Owner = registry.StatusRunning, dead
			th.Attempts = []registry.Attempt{{N: 1, Status: registry.StatusRunning, StartedAt: nowRFC3339(), Owner: dead}}
			if err := tx.Create(th, testToken); err != nil {
				return err
			}
		}
		// A request made while the owner was still believed alive.
		th, err := tx.Get(2)
		if err != nil {
			return err
		}
		th.CancelRequest = &registry.CancelRequest{At: nowRFC3339(), By: "autonode cancel (pid=1 host=x start=1)"}
		return tx.Put(th, testToken)
	})
	if err != nil {
		t.Fatal(err)
	}
	// A request now: the owner is gone, so it is cancelled at once.
	err = store.Update(func(tx *registry.Tx) error {
		_, outcome, err := tx.RequestCancel(1, testToken, "a test", owner.Alive)
		if outcome != registry.CancelledNow {
			t.Errorf("outcome %v, want CancelledNow", outcome)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	rt := newTestRuntime(t, Options{RegistryPath: path})
	for _, id := range []float64{1, 2} {
		r := record(t, rt, id)
		if r.Status != registry.StatusCancelled || r.LatestAttempt().Status != registry.StatusCancelled || !strings.Contains(r.Error, "requested by") {
			t.Errorf("thread %v: %s (attempt %s) %q", id, r.Status, r.LatestAttempt().Status, r.Error)
		}
	}
}

// Issue 12, item 8: started_at is when the body started, finished_at is
// never before it, for every attempt.
func TestStartedAtIsTheBodysStart(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 2})
	g := execScript(t, rt, `
def body(i):
    return time.now().unix_nano
`)
	var reqs []*SpawnRequest
	for i := 0; i < 200; i++ {
		req := request(float64(i + 1))
		req.Run, req.Args, req.Caching, req.Wait = g["body"].(starlark.Callable), starlark.Tuple{starlark.MakeInt(i)}, false, false
		reqs = append(reqs, req)
	}
	for _, res := range rt.SpawnBatch(context.Background(), reqs, 0) {
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		rec, _ := res.Handle.Wait(context.Background())
		var ns int64
		if err := jsonUnmarshal(rec.Result, &ns); err != nil {
			t.Fatal(err)
		}
		body := time.Unix(0, ns)
		start, end := mustTime(t, rec.StartedAt), mustTime(t, rec.FinishedAt)
		a := rec.LatestAttempt()
		if a == nil || a.StartedAt != rec.StartedAt || a.FinishedAt != rec.FinishedAt {
			t.Fatalf("thread %s: attempt %+v, record %s .. %s", rec.ID, a, rec.StartedAt, rec.FinishedAt)
		}
		if start.After(body) || end.Before(body) || end.Before(start) {
			t.Errorf("thread %s: started %v, body at %v, finished %v", rec.ID, start, body, end)
		}
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	return cmd.Process.Pid
}

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }

// Issue 12, item 4: an upstream thread may be one another process runs
// (here another runtime on the same registry file): its record is polled.
// One whose process is gone counts as crashed, and a pending thread that
// nothing runs does not hold Close forever.
func TestAfterAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "thread_registry.json")
	a := newTestRuntime(t, Options{RegistryPath: path})
	b := newTestRuntime(t, Options{RegistryPath: path})
	g := execScript(t, a, `
def slow():
    t0 = time.now()
    for _ in range(100000000):
        if (time.now() - t0).seconds > 0.4:
            return "up"
def down():
    return "down"
`)
	up := request(1)
	up.Run, up.Caching, up.Wait = g["slow"].(starlark.Callable), false, false
	hu, err := a.Spawn(context.Background(), up)
	if err != nil {
		t.Fatal(err)
	}
	down := request(2)
	down.Run, down.Caching, down.After = g["down"].(starlark.Callable), false, []registry.ID{1}
	hd, err := b.Spawn(context.Background(), down)
	if err != nil {
		t.Fatal(err)
	}
	rd, _ := hd.Wait(context.Background())
	ru, _ := hu.Wait(context.Background())
	if rd.Status != registry.StatusSucceeded || mustTime(t, rd.StartedAt).Before(mustTime(t, ru.FinishedAt)) {
		t.Errorf("downstream in the other runtime: %s, started %s, upstream finished %s", rd.Status, rd.StartedAt, ru.FinishedAt)
	}

	// An upstream whose process died: crashed, so the thread is skipped.
	dead := owner.ID{Host: owner.Self().Host, PID: deadPID(t), Start: 1}
	err = b.Store().Update(func(tx *registry.Tx) error {
		th := registry.NewThread(10, "BASE")
		th.Status, th.Owner = registry.StatusRunning, dead.String()
		return tx.Create(th, testToken)
	})
	if err != nil {
		t.Fatal(err)
	}
	orphan := request(11)
	orphan.Caching, orphan.After = false, []registry.ID{10}
	h, _ := b.Spawn(context.Background(), orphan)
	r, _ := h.Wait(context.Background())
	if r.Status != registry.StatusSkipped || !strings.Contains(r.Error, "upstream thread 10.0 ('Thread-10-base') ended crashed") || !strings.Contains(r.Error, "owner pid") || !errors.Is(RunErr(h), ErrSkipped) {
		t.Errorf("after a dead owner's thread: %s %q %v", r.Status, r.Error, RunErr(h))
	}

	// After a pending branch that nothing runs: Close skips it.
	var br *registry.Thread
	err = b.Store().Update(func(tx *registry.Tx) error {
		var err error
		br, err = tx.Branch(1, 20, nil, testToken)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestRuntime(t, Options{RegistryPath: path})
	wait := request(21)
	wait.Caching, wait.Wait, wait.After = false, false, []registry.ID{br.ID}
	hw, err := c.Spawn(context.Background(), wait)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if hw.Done() {
		t.Fatal("it did not wait for the pending branch")
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a thread that nothing will run")
	}
	rw, _ := hw.Wait(context.Background())
	if rw.Status != registry.StatusSkipped || !strings.Contains(rw.Error, "upstream thread 20.0 ('Thread-20-base') is pending: it is pending and nothing runs it") {
		t.Errorf("at Close: %s %q", rw.Status, rw.Error)
	}
}
