package runtime

import (
	"context"
	"strings"
	"testing"

	"github.com/autonode/autonode/registry"
)

// TestCacheKeyIgnoresLocals: a name a body binds is its local, even when
// the module has a global of that name (here an array, which has no cache
// key): the body is cached as usual.
func TestCacheKeyIgnoresLocals(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	execScript(t, rt, `
w = accel.zeros(3)       # a global array the body does not read
def body(n):
    w = n * 2            # a local of the same name
    for i, v in [(1, 2)]:
        w += i + v
    return w
a = spawn(run = body, args = (4,))
b = spawn(run = body, args = (4,))
if a.status != "succeeded" or b.status != "cached":
    fail("%s %s: %s" % (a.status, b.status, b.history))
`)
}

// TestRunOutputs checks the engine's outputs at the runtime's level: what
// a body logs and prints is in its log with the engine's attempt notes, a
// metric is recorded, array results are stored whole and a silent thread
// leaves no log.
func TestRunOutputs(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	execScript(t, rt, `
def chatty():
    print("to stdout and the log")
    log("to the history and the log")
    log_metric("acc", 0.5)
    log_metric("acc", 0.75, step = 10)
    return accel.ones((2, 2))
def silent():
    return 1
c = spawn(id = 1, run = chatty)
s = spawn(id = 2, run = silent)
if c.status != "succeeded" or s.status != "succeeded":
    fail(c.error or s.error)
if c.result.shape != (2, 2) or c.result.sum() != 4.0:
    fail("result: %s" % c.result)
`)
	outs, err := registry.OutputsOf(rt.store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	page, err := outs.Logs().ReadLog(ctx, 1, registry.LogCursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range page.Entries {
		lines = append(lines, e.Stream+": "+e.Text)
	}
	want := "autonode: attempt 1 started on cpu|print: to stdout and the log|log: to the history and the log|autonode: attempt 1 succeeded"
	if got := strings.Join(lines, "|"); got != want {
		t.Errorf("log of 1:\n%s\nwant\n%s", got, want)
	}
	if page, err := outs.Logs().ReadLog(ctx, 2, registry.LogCursor{}, 100); err != nil || len(page.Entries) != 0 {
		t.Errorf("a silent thread has a log: %+v %v", page, err)
	}
	pts, err := outs.Metrics().ReadMetrics(ctx, 1)
	if err != nil || len(pts) != 2 || pts[0].Step != 0 || pts[1].Step != 10 || pts[1].Value != 0.75 {
		t.Errorf("metrics: %+v %v", pts, err)
	}
	var rec *registry.Thread
	rt.store.View(func(tx *registry.Tx) error { rec, err = tx.Get(1); return err })
	arrays, err := rec.ResultArrays()
	if err != nil || len(arrays) != 1 || arrays[0].Pointer != "" || arrays[0].DType != "float64" || len(arrays[0].Shape) != 2 {
		t.Errorf("result arrays: %+v %v", arrays, err)
	}
}
