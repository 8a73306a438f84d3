package builtins_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/runtime"
)

// TestReadmeArrays runs the code block of README.md's "Arrays (accel)"
// section and checks what its comments promise: the printed values and the
// broadcast error of its last line.
func TestReadmeArrays(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "## Arrays (accel)")
	if !ok {
		t.Fatal("README.md has no Arrays (accel) section")
	}
	_, block, _ := strings.Cut(section, "```python\n")
	block, _, _ = strings.Cut(block, "```")
	var out strings.Builder
	rt, err := runtime.New(runtime.Options{RegistryPath: filepath.Join(t.TempDir(), "r.json"), SessionToken: sessionToken, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	_, err = rt.ExecFile(context.Background(), "readme.star", block)
	var ee *starlark.EvalError
	if !errors.As(err, &ee) || !strings.Contains(ee.Msg, "operands could not be broadcast") || ee.CallStack.At(0).Pos.Line != int32(strings.Count(block, "\n")) {
		t.Fatalf("the last line should fail to broadcast: %v", err)
	}
	want := "100.0 [0.0, 100.0, 8.0]\n324.0 [0.0, 0.0, 0.0]\n"
	if out.String() != want {
		t.Errorf("README block printed\n%s\nwant\n%s", out.String(), want)
	}
}
