package runtime

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/registry"
)

// testToken is the session token of the tests' runtimes.
const testToken = "0123456789abcdef0123456789abcdef"

// newTestRuntime returns a runtime on a fresh registry in t.TempDir(),
// closed when the test ends. Options left zero get test defaults.
func newTestRuntime(t testing.TB, opts Options) *Runtime {
	t.Helper()
	if opts.RegistryPath == "" && opts.Store == nil {
		opts.RegistryPath = filepath.Join(t.TempDir(), "thread_registry.json")
	}
	if opts.SessionToken == "" {
		opts.SessionToken = testToken
	}
	if opts.LoadSampler == nil {
		opts.LoadSampler = func() (float64, float64, error) { return 10, 10, nil }
	}
	rt, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rt
}

// execScript executes src as a script and fails the test on error.
func execScript(t testing.TB, rt *Runtime, src string) starlark.StringDict {
	t.Helper()
	g, err := rt.ExecFile(context.Background(), "test.star", src)
	if err != nil {
		if ee, ok := err.(*starlark.EvalError); ok {
			t.Fatalf("ExecFile: %s", ee.Backtrace())
		}
		t.Fatalf("ExecFile: %v", err)
	}
	return g
}

// record reads thread id from the registry.
func record(t testing.TB, rt *Runtime, id float64) *registry.Thread {
	t.Helper()
	var th *registry.Thread
	err := rt.Store().View(func(tx *registry.Tx) error {
		var err error
		th, err = tx.Get(registry.ID(id))
		return err
	})
	if err != nil {
		t.Fatalf("get %v: %v", id, err)
	}
	return th
}

// history returns the thread's history without timestamps.
func history(t *registry.Thread) []string {
	out := make([]string, len(t.History))
	for i, h := range t.History {
		if j := strings.Index(h, "] "); j >= 0 && strings.HasPrefix(h, "[") {
			h = h[j+2:]
		}
		out[i] = h
	}
	return out
}

func hasLine(t *registry.Thread, sub string) bool {
	for _, h := range history(t) {
		if strings.Contains(h, sub) {
			return true
		}
	}
	return false
}

// request returns a spawn request with spawn()'s defaults.
func request(id float64) *SpawnRequest {
	i := registry.ID(id)
	req := DefaultSpawnRequest()
	req.ID = &i
	return req
}
