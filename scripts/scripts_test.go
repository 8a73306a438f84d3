// Package scripts_test runs every example script, twice on the same
// registry (a user runs a script again), as `autonode run` does.
package scripts_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/runtime"
)

// sessionToken is what a user sets in AUTONODE_TOKEN (scripts that run
// explicit ids again need one).
const sessionToken = "0123456789abcdef0123456789abcdef"

func TestScripts(t *testing.T) {
	all, err := filepath.Glob("*.star")
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, "_test.star") { // autonode test runs those
			files = append(files, f)
		}
	}
	if err != nil || len(files) < 5 {
		t.Fatalf("scripts: %v %v", files, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(file, ".star"), func(t *testing.T) {
			reg := filepath.Join(t.TempDir(), registry.DefaultRegistryFile)
			for run := 1; run <= 2; run++ {
				var out bytes.Buffer
				rt, err := runtime.New(runtime.Options{RegistryPath: reg, SessionToken: sessionToken, Stdout: &out, Stderr: &out, TopLevelHost: true})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				_, err = rt.ExecFile(ctx, file, nil)
				cancel()
				if cerr := rt.Close(); cerr != nil && err == nil {
					err = cerr
				}
				if err != nil {
					var ee *starlark.EvalError
					if errors.As(err, &ee) {
						t.Fatalf("run %d: %s\noutput:\n%s", run, ee.Backtrace(), out.String())
					}
					t.Fatalf("run %d: %v\noutput:\n%s", run, err, out.String())
				}
				if out.Len() == 0 {
					t.Errorf("run %d printed nothing", run)
				}
				t.Logf("run %d:\n%s", run, out.String())
			}
			if rep, err := registry.Fsck(reg, nil); err != nil || !rep.OK() {
				t.Errorf("fsck after the script: %+v %v", rep, err)
			}
			if _, err := os.Stat(reg); err != nil {
				t.Errorf("the script left no registry: %v", err)
			}
		})
	}
}
