package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/internal/syncbuf"
	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natstest"
)

var bucketSeq atomic.Int64

// cluster is a JetStream node and a bucket on it, for a spawner and
// workers.
type cluster struct {
	url, bucket string
}

func newCluster(t *testing.T) cluster {
	t.Helper()
	n := natstest.RunNode(t)
	return cluster{url: n.ClientURL(), bucket: fmt.Sprintf("rt%d", bucketSeq.Add(1))}
}

// spawner returns a runtime that leaves its threads to workers.
func (c cluster) spawner(t *testing.T) *Runtime {
	t.Helper()
	return newTestRuntime(t, Options{NATS: c.url, NATSBucket: c.bucket, Remote: true})
}

// worker runs a worker until the test ends.
func (c cluster) worker(t *testing.T, name string, log *syncbuf.Buffer) *Worker {
	t.Helper()
	w, err := NewWorker(WorkerOptions{
		Runtime: Options{NATS: c.url, NATSBucket: c.bucket, LoadSampler: func() (float64, float64, error) { return 10, 10, nil }},
		Name:    name, Concurrency: 4, Lease: 2 * time.Second, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, nil) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker %s: %v", name, err)
		}
	})
	return w
}

// TestRemoteThreadsRunOnWorkers: a script whose threads are left to
// workers behaves as it does locally: results, retries (queued again for
// any worker), after=, log() lines, spawn_batch, caching; the records say
// which worker ran each attempt, and nothing ran in the spawning process.
func TestRemoteThreadsRunOnWorkers(t *testing.T) {
	c := newCluster(t)
	var logs syncbuf.Buffer
	w1 := c.worker(t, "w1", &logs)
	w2 := c.worker(t, "w2", &logs)
	rt := c.spawner(t)
	execScript(t, rt, `
def check(cond, msg):
    if not cond:
        fail(msg)

def fetch():
    if current().attempt == 1:
        fail("connection reset")
    log("fetched on attempt %d" % current().attempt)
    return {"rows": 1000}

f = spawn(id = 1.0, run = fetch, retries = 2, retry_delay = 0.05, caching = False)
check(f.status == "succeeded" and f.attempt == 2, "fetch: %s %s" % (f.status, f.error))
check([a["status"] for a in f.attempts] == ["failed", "succeeded"], "attempts %s" % f.attempts)

SCALE = 10
def total(rows, extra = 0):
    return rows * SCALE + extra
t = spawn(id = 2.0, run = total, args = (f.result["rows"],), kwargs = {"extra": 5}, after = [f], caching = False)
check(t.status == "succeeded" and t.result == 10005, "after: %s %s %s" % (t.status, t.result, t.error))

rs = spawn_batch([{"run": total, "args": (i,), "stage": ["CRITICAL", "CORE", "BASE"][i % 3]} for i in range(30)])
check([r.result for r in rs] == [i * 10 for i in range(30)], "batch: %s" % [r.result for r in rs])

c1 = spawn(id = 3.0, run = total, args = (7,), caching = True)
c2 = spawn(run = total, args = (7,), caching = True)
check(c2.status == "cached", "cache: %s" % c2.status)
`)
	th := record(t, rt, 1)
	if !strings.HasPrefix(th.Owner, "worker=w") || len(th.Attempts) != 2 {
		t.Fatalf("thread 1.0: owner %q, attempts %+v", th.Owner, th.Attempts)
	}
	for _, a := range th.Attempts {
		if !strings.HasPrefix(a.Owner, "worker=w") {
			t.Errorf("attempt %d ran in %q, not on a worker", a.N, a.Owner)
		}
	}
	if !historyHas(th, "fetched on attempt 2") || !historyHas(th, "queued for any worker") {
		t.Errorf("history of 1.0: %q", th.History)
	}
	if _, ok := natsstore.QueueOf(th); ok {
		t.Errorf("an ended thread keeps its queue marker")
	}
	// A worker claims up to twice its concurrency; a claimed attempt that
	// waited for a slot still records the body's start, so its span is
	// its duration (the batch's 30 threads queue on 2 × 4 slots).
	var all []*registry.Thread
	if err := rt.Store().View(func(tx *registry.Tx) (err error) {
		all, err = tx.List(registry.Filter{})
		return err
	}); err != nil || len(all) != 33 { // 1.0, 2.0, the batch's 3.0-32.0 (c1 is a new attempt of 3.0), c2
		ids := []string{}
		for _, th := range all {
			ids = append(ids, th.ID.Key()+":"+th.Status)
		}
		t.Fatalf("%d threads (%v), want 33: %v", len(all), err, ids)
	}
	for _, th := range all {
		for _, a := range th.Attempts {
			span := mustTime(t, a.FinishedAt).Sub(mustTime(t, a.StartedAt))
			if d := span - time.Duration(a.DurationMS*float64(time.Millisecond)); d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("thread %s attempt %d: %s .. %s is %v, its duration %.3f ms", th.ID, a.N, a.StartedAt, a.FinishedAt, span, a.DurationMS)
			}
		}
		if a := th.LatestAttempt(); a != nil && a.StartedAt != th.StartedAt {
			t.Errorf("thread %s: started_at %s, its attempt's %s", th.ID, th.StartedAt, a.StartedAt)
		}
	}
	if got := w1.Stats().Claimed + w2.Stats().Claimed; got != 34 {
		t.Errorf("workers claimed %d attempts, want 34 (2 + 1 + 30 + 1)", got)
	}
	if n := w1.Stats().Fenced + w2.Stats().Fenced; n != 0 {
		t.Errorf("%d fenced writes without a fault; log:\n%s", n, logs.String())
	}
}

func historyHas(th *registry.Thread, s string) bool {
	for _, h := range th.History {
		if strings.Contains(h, s) {
			return true
		}
	}
	return false
}

// TestRemoteCancelReachesWorker: cancel() in the spawning process (a
// request in the record) stops a body running on a worker within a
// second, and a thread cancelled while queued is never run.
func TestRemoteCancelReachesWorker(t *testing.T) {
	c := newCluster(t)
	c.worker(t, "w1", nil)
	rt := c.spawner(t)
	g := execScript(t, rt, `
def spin():
    while True:
        pass
h = spawn(run = spin, ttl = 60, wait = False, caching = False)
hid = h.id
`)
	id := registry.ID(g["hid"].(starlark.Float))
	deadline := time.Now().Add(10 * time.Second)
	for record(t, rt, float64(id)).Status != registry.StatusRunning {
		if time.Now().After(deadline) {
			t.Fatal("the worker never started the thread")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := rt.Cancel(id, ""); err != nil {
		t.Fatal(err)
	}
	s := rt.remote.store
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	th, err := s.WaitEnded(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if th.Status != registry.StatusCancelled || took > 2*time.Second {
		t.Fatalf("status %s after %v (error %q); want cancelled within 2s (the worker checks every 200ms)", th.Status, took, th.Error)
	}
	t.Logf("cancelled on the worker %v after the request", took.Round(time.Millisecond))
}

// TestRemoteRefusals: a body that cannot travel is refused at spawn and
// says why and what to do; Remote needs a NATS registry.
func TestRemoteRefusals(t *testing.T) {
	c := newCluster(t)
	rt := c.spawner(t)
	_, err := rt.ExecFile(context.Background(), "refuse.star", `
a = accel.ones((3,))
def use():
    return a.sum()
spawn(run = use)
`)
	if !errors.Is(err, ErrCannotTravel) || !strings.Contains(err.Error(), "global a cannot travel to a worker: it is an accel array") || !strings.Contains(err.Error(), "--remote") {
		t.Errorf("spawn of a body with an array: %v", err)
	}
	_, err = New(Options{RegistryPath: t.TempDir() + "/r.json", Remote: true})
	if !errors.Is(err, ErrRemoteNeedsNATS) {
		t.Errorf("Remote on a file registry: %v", err)
	}
}
