package builtins_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/starlarktest"
	"go.starlark.net/syntax"

	"github.com/autonode/autonode/internal/syncbuf"
	"github.com/autonode/autonode/runtime"
)

// sessionToken is the session token of every test runtime (chunks with
// "# option:no-session" run without one).
const sessionToken = "0123456789abcdef0123456789abcdef"

// TestStarlark runs every chunk of every testdata/*.star file on a fresh
// registry and engine, in the style of go.starlark.net's own tests.
func TestStarlark(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.star"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.star files (%v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			chunks, err := splitChunks(file, string(data))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range chunks {
				runChunk(t, file, c)
			}
		})
	}
}

// testModules returns the modules a test chunk gets besides the engine's
// builtins: assert (go.starlark.net's assert.star, reporting to t from
// whatever Starlark thread calls it, thread bodies included) and testing,
// whose output() returns and clears what print() wrote so far.
func testModules(t testing.TB, out *syncbuf.Buffer) map[string]starlark.StringDict {
	d, err := starlarktest.LoadAssertModule()
	if err != nil {
		t.Fatal(err)
	}
	mod := d["assert"].(*starlarkstruct.Module)
	members := starlark.StringDict{"freeze": d["freeze"]}
	for name, v := range mod.Members {
		fn, ok := v.(starlark.Callable)
		if !ok {
			continue
		}
		members[name] = starlark.NewBuiltin("assert."+name, func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			starlarktest.SetReporter(th, t)
			return starlark.Call(th, fn, args, kwargs)
		})
	}
	members.Freeze()
	output := starlark.NewBuiltin("output", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		return starlark.String(out.Take()), nil
	})
	return map[string]starlark.StringDict{
		"assert":  members,
		"testing": {"output": output},
	}
}

// runChunk runs one chunk and checks its errors against the ### marks.
func runChunk(t *testing.T, file string, c *chunk) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := newTestEnv(t, c)
	err := env.exec(ctx, file, c.src)
	line, msg := errorLine(err, file)
	switch {
	case err == nil:
		for l, re := range c.wantErr {
			t.Errorf("%s:%d: no error, want one matching %q", file, l, re)
		}
	case line == 0:
		t.Errorf("%s:%d: chunk failed: %s", file, c.line, backtrace(err))
	default:
		re, ok := c.wantErr[line]
		switch {
		case !ok:
			t.Errorf("%s:%d: unexpected error: %s", file, line, backtrace(err))
		case !re.MatchString(msg):
			t.Errorf("%s:%d: error %q does not match %q", file, line, msg, re)
		}
		for l, re := range c.wantErr {
			if l != line {
				t.Errorf("%s:%d: no error (an earlier line failed), want one matching %q", file, l, re)
			}
		}
	}
}

// errorLine finds where in file err happened: the innermost call frame in
// the file for an evaluation error, the position of a syntax or resolve
// error. It returns 0 when it cannot tell.
func errorLine(err error, file string) (int, string) {
	if err == nil {
		return 0, ""
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		for i := range ee.CallStack {
			if pos := ee.CallStack.At(i).Pos; pos.Filename() == file {
				return int(pos.Line), ee.Msg
			}
		}
		return 0, ee.Msg
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return int(se.Pos.Line), se.Msg
	}
	var re resolve.ErrorList
	if errors.As(err, &re) && len(re) > 0 {
		return int(re[0].Pos.Line), re[0].Msg
	}
	return 0, err.Error()
}

func backtrace(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return ee.Backtrace()
	}
	return err.Error()
}

// testEnv runs chunks on an engine.
type testEnv struct {
	exec func(ctx context.Context, filename, src string) error
	out  *syncbuf.Buffer
	rt   *runtime.Runtime
}

// option reports whether the chunk has `# option:name`.
func (c *chunk) option(name string) bool { return c.options[name] }
