package runtime

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/registry"
)

func TestPyRepr(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{map[string]any{}, "{}"},
		{map[string]any{"max_memory_mb": int64(1000)}, "{'max_memory_mb': 1000}"},
		{map[string]any{"tags": []any{"a", "b"}, "lr": 0.1}, "{'lr': 0.1, 'tags': ['a', 'b']}"},
		{map[string]any{"ok": true, "none": nil, "n": json.Number("2.50")}, "{'n': 2.5, 'none': None, 'ok': True}"},
		{"it's", `"it's"`},
		{1e-05, "1e-05"},
		{10.0, "10.0"},
		{1e16, "1e+16"},
	}
	for _, c := range cases {
		if got := pyRepr(c.v); got != c.want {
			t.Errorf("pyRepr(%#v) = %s, want %s", c.v, got, c.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("lib.star", "def cube(x):\n    return x * x * x\n")
	write("main.star", "load(\"lib.star\", \"cube\")\nt = spawn(id=1, run=cube, args=(3,))\n")
	write("a.star", "load(\"b.star\", \"x\")\n")
	write("b.star", "load(\"a.star\", \"y\")\nx = 1\n")
	rt := newTestRuntime(t, Options{LoadDir: dir})
	if _, err := rt.ExecFile(context.Background(), filepath.Join(dir, "main.star"), nil); err != nil {
		t.Fatal(err)
	}
	if r := record(t, rt, 1); r.Status != registry.StatusSucceeded || string(r.Result) != "27" {
		t.Errorf("loaded body: %s %s %s", r.Status, r.Result, r.Error)
	}
	_, err := rt.ExecFile(context.Background(), filepath.Join(dir, "a.star"), nil)
	if err == nil || !strings.Contains(err.Error(), "cycle in load graph") {
		t.Errorf("load cycle: %v", err)
	}
}

func TestLog_Bounded(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	execScript(t, rt, `
def chatty():
    for i in range(3000):
        log("line %d" % i)
spawn(id=1, run=chatty)
`)
	r := record(t, rt, 1)
	n := 0
	for _, h := range history(r) {
		if strings.HasPrefix(h, "line ") {
			n++
		}
	}
	if r.Status != registry.StatusSucceeded || n != maxLogLines || !hasLine(r, "Further log lines of this run are dropped") {
		t.Errorf("status %s, %d log lines kept", r.Status, n)
	}
}

// A parent blocked waiting for a child still stops at its own TTL.
func TestTTL_WhileWaiting(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 2})
	execScript(t, rt, `
def spin():
    while True:
        pass
def parent():
    return spawn(run=spin, ttl=30).status
spawn(id=1, run=parent, ttl=0.3)
`)
	if r := record(t, rt, 1); r.Status != registry.StatusTimedOut {
		t.Errorf("parent: %s %s", r.Status, r.Error)
	}
	// The child got what its parent had left of its TTL, and ends with
	// it: by its own TTL or by its parent's end, whichever comes first.
	child := waitFor(t, rt, 2)
	if !hasLine(child, "TTL capped at ") {
		t.Errorf("child's TTL not capped: %q", history(child))
	}
	ended := child.Status == registry.StatusTimedOut ||
		child.Status == registry.StatusCancelled && hasLine(child, "Cancelled while running: its parent thread 1.0 ended (thread 1.0 exceeded its TTL of 0.3s).")
	if !ended {
		t.Errorf("child: %s %q", child.Status, history(child))
	}
}

// Cancels racing with dispatch, in a batch fed a few at a time: every
// thread ends cancelled, none is lost or run twice.
func TestCancel_Racing(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 2})
	g := execScript(t, rt, "def spin():\n    while True:\n        pass\n")
	var reqs []*SpawnRequest
	for i := 0; i < 60; i++ {
		req := request(float64(i + 1))
		req.Run, req.TTL, req.Wait = g["spin"].(starlark.Callable), 30, false
		reqs = append(reqs, req)
	}
	res := rt.SpawnBatch(context.Background(), reqs, 3)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(res); i += 4 {
				if err := rt.Cancel(res[i].Handle.ID(), ""); err != nil && !strings.Contains(err.Error(), "already ended") && !strings.Contains(err.Error(), "not pending or running") {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, r := range res {
		rec, err := r.Handle.Wait(ctx)
		if err != nil || rec.Status != registry.StatusCancelled {
			t.Fatalf("thread %s: %v %v", r.Handle.ID(), rec, err)
		}
	}
}
