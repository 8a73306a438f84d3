package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/runtime"
)

// TestRunFailsOnInternalError checks that a panic in Go code called from a
// thread body fails `autonode run`, although the script itself carries on
// (a failed thread only sets its status), and that a panic at the top
// level fails it too.
func TestRunFailsOnInternalError(t *testing.T) {
	runHook = func(rt *runtime.Runtime) {
		rt.AddBuiltin("boom", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			var m map[string]int
			m["x"] = 1 // a nil-map write: a real runtime panic
			return starlark.None, nil
		})
	}
	defer func() { runHook = nil }()
	dir := t.TempDir()
	reg := filepath.Join(dir, "thread_registry.json")
	vars := map[string]string{"AUTONODE_TOKEN": "0123456789abcdef0123456789abcdef"}
	script := filepath.Join(dir, "body.star")
	os.WriteFile(script, []byte("t = spawn(run = lambda: boom(), caching = False)\nprint(t.status, t.error)\n"), 0o644)
	r := cli(t, reg, vars, "run", script).want(t, 1)
	if !strings.Contains(r.stdout, "failed internal error: assignment to entry in nil map") {
		t.Errorf("the thread should fail with the panic's message:\n%s", r)
	}
	if !strings.Contains(r.stderr, "autonode: 1 internal error(s) during the run") {
		t.Errorf("no internal-error report on stderr:\n%s", r)
	}

	top := filepath.Join(dir, "top.star")
	os.WriteFile(top, []byte("boom()\n"), 0o644)
	r = cli(t, reg, vars, "run", top).want(t, 1)
	if !strings.Contains(r.stderr, "internal error") {
		t.Errorf("a top-level panic is not reported:\n%s", r)
	}

	// Without a panic the same kind of failure (a thread failing on bad
	// input) is no internal error: the run exits 3 for the failed thread
	// (issue 12), and 0 with --allow-failed.
	ok := filepath.Join(dir, "ok.star")
	os.WriteFile(ok, []byte("t = spawn(run = lambda: accel.add(accel.zeros((2, 3)), accel.zeros((4, 5))), caching = False)\nprint(t.status)\n"), 0o644)
	r = cli(t, reg, vars, "run", ok).want(t, 3)
	if strings.Contains(r.stderr, "internal error") {
		t.Errorf("an ordinary failure reported as an internal error:\n%s", r)
	}
	r = cli(t, reg, vars, "run", "--allow-failed", ok).want(t, 0)
	if !strings.Contains(r.stdout, "failed") {
		t.Errorf("the thread should have failed:\n%s", r)
	}
}
