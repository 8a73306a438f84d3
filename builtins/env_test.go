package builtins_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/autonode/autonode/internal/syncbuf"
	"github.com/autonode/autonode/runtime"
)

// newTestEnv returns the real engine for one chunk: a runtime on a fresh
// registry, with the session token (unless "# option:no-session") and
// top-level host access (unless "# option:no-host"), four CPU workers
// (one with "# option:one-worker"), and the test modules.
func newTestEnv(t *testing.T, c *chunk) *testEnv {
	t.Helper()
	out := &syncbuf.Buffer{}
	opts := runtime.Options{
		RegistryPath: filepath.Join(t.TempDir(), "thread_registry.json"),
		SessionToken: sessionToken,
		Stdout:       out,
		CPUWorkers:   4,
		TopLevelHost: !c.option("no-host"),
		LoadSampler:  func() (float64, float64, error) { return 10, 10, nil },
	}
	if c.option("no-session") {
		opts.SessionToken = ""
	}
	if c.option("one-worker") {
		opts.CPUWorkers = 1
	}
	rt, err := runtime.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	for name, members := range testModules(t, out) {
		rt.AddModule(name, members)
	}
	return &testEnv{out: out, rt: rt, exec: func(ctx context.Context, filename, src string) error {
		_, err := rt.ExecFile(ctx, filename, src)
		return err
	}}
}
