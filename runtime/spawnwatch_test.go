package runtime

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/registrytest"
)

// watchesLeft is how many spawner contexts the runtime still watches.
func watchesLeft(rt *Runtime) int {
	rt.spawners.mu.Lock()
	defer rt.spawners.mu.Unlock()
	return len(rt.spawners.by)
}

// TestSpawnerEndStopsRunningThenQueued: when the context a script ran
// with ends, every unfinished thread it spawned is recorded cancelled:
// the running ones "while running", the queued ones "before it started";
// and the runtime no longer watches that context.
func TestSpawnerEndStopsRunningThenQueued(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 200
	src := `
def spin():
    while True:
        pass
hs = [spawn(run = spin, ttl = 60, caching = False, wait = False) for i in range(200)]
`
	if _, err := rt.ExecFile(ctx, "spin.star", src); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for running := 0; running < 2; {
		running = 0
		for _, th := range registrytest.Threads(t, rt.Store()) {
			if th.Status == registry.StatusRunning {
				running++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 threads running after 30s", running)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	for len(rt.Threads()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d threads still unfinished", len(rt.Threads()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	whileRunning, beforeStart := 0, 0
	ts := registrytest.Threads(t, rt.Store())
	for _, th := range ts {
		if th.Status != registry.StatusCancelled {
			t.Errorf("thread %s: %s, want cancelled", th.ID, th.Status)
		}
		h := strings.Join(history(th), "\n")
		switch {
		case strings.Contains(h, "Cancelled while running: "):
			whileRunning++
		case strings.Contains(h, "Cancelled before it started: "):
			beforeStart++
		default:
			t.Errorf("thread %s: history %q says nothing of its cancel", th.ID, h)
		}
	}
	if len(ts) != n || whileRunning < 2 || whileRunning+beforeStart != n {
		t.Errorf("%d threads: %d cancelled while running, %d before they started; want %d, at least 2 running", len(ts), whileRunning, beforeStart, n)
	}
	if left := watchesLeft(rt); left != 0 {
		t.Errorf("%d spawner contexts still watched after their threads ended", left)
	}
}

// TestSpawnerWatchEndsWithItsThreads: a context that never ends is
// watched only while threads spawned with it are unfinished.
func TestSpawnerWatchEndsWithItsThreads(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 2})
	execScript(t, rt, `hs = [spawn(run = lambda: 1, caching = False, wait = False) for i in range(50)]`)
	deadline := time.Now().Add(30 * time.Second)
	for len(rt.Threads()) > 0 || watchesLeft(rt) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d threads unfinished, %d contexts watched", len(rt.Threads()), watchesLeft(rt))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, th := range registrytest.Threads(t, rt.Store()) {
		if th.Status != registry.StatusSucceeded {
			t.Errorf("thread %s: %s", th.ID, th.Status)
		}
	}
}

// oddContext is a context of a type that cannot be a map key.
type oddContext struct {
	context.Context
	tags []string
}

// TestSpawnerWatchOfAnUncomparableContext: an embedder's context that
// cannot be compared still stops its threads when it ends (no panic).
func TestSpawnerWatchOfAnUncomparableContext(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 2})
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx := oddContext{Context: base, tags: []string{"embedder"}}
	if _, err := rt.ExecFile(ctx, "spin.star", "def spin():\n    while True:\n        pass\nhs = [spawn(run = spin, ttl = 60, caching = False, wait = False) for i in range(5)]\n"); err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(30 * time.Second)
	for len(rt.Threads()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d threads still unfinished 30s after their context ended", len(rt.Threads()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, th := range registrytest.Threads(t, rt.Store()) {
		if th.Status != registry.StatusCancelled {
			t.Errorf("thread %s: %s, want cancelled", th.ID, th.Status)
		}
	}
}
