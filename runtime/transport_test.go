package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"
)

// travel encodes a spawn of fn (with args and kwargs) in rt, rebuilds it
// in a fresh runtime (another "machine": it never saw the script) and
// returns the rebuilt body, arguments and keyword arguments.
func travel(t *testing.T, rt *Runtime, fn starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Callable, starlark.Tuple, []starlark.Tuple) {
	t.Helper()
	req := DefaultSpawnRequest()
	req.Run, req.Args, req.Kwargs = fn.(starlark.Callable), args, kwargs
	spec, sources, err := rt.encodeBody(req, rt.funcs.reader(context.Background()))
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	worker := newTestRuntime(t, Options{})
	fetch := func(_ context.Context, digest string) ([]byte, error) {
		src, ok := sources[digest]
		if !ok {
			return nil, fmt.Errorf("no source %s", digest)
		}
		return src, nil
	}
	// Through JSON, as it is stored in the record.
	var back bodySpec
	if err := jsonRoundTrip(spec, &back); err != nil {
		t.Fatal(err)
	}
	body, a, kw, _, err := worker.decodeBody(context.Background(), &back, fetch, &specCache{})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return body, a, kw
}

func jsonRoundTrip(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func call(t *testing.T, fn starlark.Callable, args starlark.Tuple, kwargs []starlark.Tuple) string {
	t.Helper()
	v, err := starlark.Call(&starlark.Thread{Name: "test"}, fn, args, kwargs)
	if err != nil {
		if ee, ok := err.(*starlark.EvalError); ok {
			t.Fatalf("call: %s", ee.Backtrace())
		}
		t.Fatalf("call: %v", err)
	}
	return v.String()
}

// TestBodiesTravel: bodies rebuilt on another runtime from their spec
// compute what the originals compute: module functions that call each
// other and read globals, closures over locals (data and functions),
// lambdas, recursion, functions of loaded modules, and arguments of every
// data type, including argv.
func TestBodiesTravel(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lib.star"), []byte("SCALE = 3\ndef scaled(x):\n    return x * SCALE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rt := newTestRuntime(t, Options{LoadDir: dir, Argv: []string{"script.star", "--fast"}})
	src := `
load("lib.star", "scaled")
RATES = {"a": 0.5, "b": 2.0}
def helper(k):
    return RATES[k]
def body(k, n = 1):
    return [helper(k) * n, scaled(n), argv[1:]]
def make(offset, extra):
    def inner(x):
        return [x + offset, extra[0](x), helper("b")]
    return inner
def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)
sq = lambda x: x * x
closure = make(10, [sq])
if True:
    def nested_global(s):
        return s.upper() + str(struct(a = 1).a)
RATES["c"] = 4.0   # a change after the def: the spawn sees the value at spawn
`
	g, err := rt.ExecFile(context.Background(), filepath.Join(dir, "script.star"), src)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		fn     string
		args   starlark.Tuple
		kwargs []starlark.Tuple
	}{
		{"body", starlark.Tuple{starlark.String("a")}, []starlark.Tuple{{starlark.String("n"), starlark.MakeInt(4)}}},
		{"closure", starlark.Tuple{starlark.MakeInt(5)}, nil},
		{"fact", starlark.Tuple{starlark.MakeInt(25)}, nil},
		{"sq", starlark.Tuple{starlark.Float(1.5)}, nil},
		{"nested_global", starlark.Tuple{starlark.String("ok")}, nil},
	}
	for _, c := range cases {
		t.Run(c.fn, func(t *testing.T) {
			want := call(t, g[c.fn].(starlark.Callable), c.args, c.kwargs)
			body, args, kwargs := travel(t, rt, g[c.fn], c.args, c.kwargs)
			if body.Name() != g[c.fn].(starlark.Callable).Name() {
				t.Errorf("name %s, want %s", body.Name(), g[c.fn].(starlark.Callable).Name())
			}
			if got := call(t, body, args, kwargs); got != want {
				t.Errorf("rebuilt %s = %s, want %s", c.fn, got, want)
			}
		})
	}
	// Arguments of every data type arrive as they were.
	data, err := rt.Eval(context.Background(), `(None, True, 1 << 70, -0.5, float("inf"), "é", b"\x00\xff", [1, (2, 3)], {"k": {1: set([4])}}, struct(x = [1]))`)
	if err != nil {
		t.Fatal(err)
	}
	ident, err := rt.Eval(context.Background(), "lambda *a: a")
	if err != nil {
		t.Fatal(err)
	}
	args := data.(starlark.Tuple)
	body, got, _ := travel(t, rt, ident, args, nil)
	if a, b := call(t, body, got, nil), args.String(); a != b {
		t.Errorf("arguments: %s, want %s", a, b)
	}
}

// TestWhatCannotTravel: a spawn meant for workers whose body, arguments or
// captured values hold something that only lives in this process is
// refused with ErrCannotTravel, naming what.
func TestWhatCannotTravel(t *testing.T) {
	rt := newTestRuntime(t, Options{})
	g := execScript(t, rt, `
arr = accel.zeros((2, 2))
def uses_array():
    return arr.sum()
h = spawn(run = lambda: 1, token = "`+testToken+`")
def make():
    x = [h]
    def inner():
        return x
    return inner
handle_closure = make()
def plain(x):
    return x
`)
	for _, c := range []struct {
		fn   string
		args starlark.Tuple
		want string
	}{
		{"uses_array", nil, "function uses_array (test.star:3:1): global arr cannot travel to a worker: it is an accel array"},
		{"handle_closure", nil, "captured variable x cannot travel to a worker: it is a thread handle"},
		{"plain", starlark.Tuple{g["h"]}, "argument 0 cannot travel to a worker: it is a thread handle"},
	} {
		req := DefaultSpawnRequest()
		req.Run, req.Args = g[c.fn].(starlark.Callable), c.args
		_, _, err := rt.encodeBody(req, rt.funcs.reader(context.Background()))
		if !errors.Is(err, ErrCannotTravel) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s%v: %v, want ErrCannotTravel saying %q", c.fn, c.args, err, c.want)
		}
	}
}
