package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// outputsScript is a run whose body logs, prints, records a metric and
// returns arrays inside a dict; a second spawn of it is a cache hit.
const outputsScript = `
def train(n):
    log("starting with n=%d" % n)
    w = accel.arange(n).reshape(2, n // 2) * 0.5
    for step in range(4):
        log_metric("loss", 1.0 / (step + 1))
        print("step", step)
    return {"weights": w, "bias": accel.ones(3), "note": "ok"}

t = spawn(run = train, args = (8,))   # thread 1.0
if t.status not in ("succeeded", "cached"):
    fail(t.error)
w = get(1).result["weights"]
print("weights", w.shape, w.tolist())
c = spawn(run = train, args = (8,))   # 2.0: the same body and arguments
print("second", c.status, c.result["bias"].sum(), type(c.result["weights"]))
def plain():
    return accel.linspace(0, 1, 5)
print("plain", spawn(run = plain).result.tolist())   # 3.0
`

// TestOutputsOfARun checks issue 15 end to end through the binary: a
// body's log() lines and prints reach its log, log_metric its metrics, an
// array result is stored whole (get(id).result and a cache hit give the
// arrays back), and autonode logs, metrics and result read them.
func TestOutputsOfARun(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "o.star"), []byte(outputsScript), 0o600)
	vars := []string{envToken + "=" + tokA}
	r := bin(t, dir, vars, "run", "o.star").want(t, 0)
	for _, want := range []string{
		"weights (2, 4) [[0.0, 0.5, 1.0, 1.5], [2.0, 2.5, 3.0, 3.5]]\n",
		"second cached 3.0 array\n",
		"plain [0.0, 0.25, 0.5, 0.75, 1.0]\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the script's output lacks %q:\n%s", want, r)
		}
	}
	logs := bin(t, dir, nil, "logs", "1").want(t, 0).stdout
	if logs != "attempt 1 started on cpu\nstarting with n=8\nstep 0\nstep 1\nstep 2\nstep 3\nattempt 1 succeeded\n" {
		t.Errorf("autonode logs 1:\n%q", logs)
	}
	if m := bin(t, dir, nil, "metrics", "1", "--summary").want(t, 0).stdout; !strings.Contains(m, "loss") || !strings.Contains(m, "0.25") {
		t.Errorf("autonode metrics 1 --summary:\n%s", m)
	}
	// The cache hit shares the stored arrays: no log of its own.
	if l := bin(t, dir, nil, "logs", "2"); l.code != 0 || strings.Contains(l.stdout, "step") {
		t.Errorf("autonode logs 2 (a cache hit): %s", l)
	}
	npy := filepath.Join(dir, "plain.npy")
	bin(t, dir, nil, "result", "3", "--out", npy).want(t, 0)
	npz := filepath.Join(dir, "train.npz")
	bin(t, dir, nil, "result", "1", "--out", npz).want(t, 0)
	// Garbage collection keeps what records reference.
	bin(t, dir, vars, "compact", "--gc-results", "--gc-grace", "0s").want(t, 0)
	bin(t, dir, nil, "result", "1", "--out", filepath.Join(dir, "again.npz")).want(t, 0)
	got := numpy(t, dir, `import numpy
print(numpy.load("plain.npy").tolist())
z = numpy.load("train.npz")
print(z["weights"].tolist(), z["bias"].tolist())`)
	want := "[0.0, 0.25, 0.5, 0.75, 1.0]\n[[0.0, 0.5, 1.0, 1.5], [2.0, 2.5, 3.0, 3.5]] [1.0, 1.0, 1.0]"
	if got != want {
		t.Errorf("numpy.load:\n%s\nwant\n%s", got, want)
	}
}

// TestLogsFollowARun follows a running thread's log from another process:
// every line arrives, and the command ends when the thread does.
func TestLogsFollowARun(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f.star"), []byte(`
def slow():
    for i in range(6):
        print("line", i)
        t = time.now()
        for _ in range(200000):
            pass
    return i
print("started")
spawn(id = 1, run = slow, ttl = 60)
`), 0o600)
	r := start(t, dir, "run", "f.star")
	r.waitLine(t, "started")
	deadline := time.Now().Add(10 * time.Second)
	for !exists(filepath.Join(dir, "thread_registry.json.journal")) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	f := bin(t, dir, nil, "logs", "1", "-f").want(t, 0)
	for i := 0; i < 6; i++ {
		if !strings.Contains(f.stdout, "line "+string(rune('0'+i))+"\n") {
			t.Errorf("logs -f lacks line %d:\n%s", i, f)
		}
	}
	if !strings.HasSuffix(f.stdout, "attempt 1 succeeded\n") {
		t.Errorf("logs -f did not end with the thread's end:\n%s", f)
	}
	r.wait(t, 30*time.Second)
}
