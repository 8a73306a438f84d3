package runtime_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/runtime"
)

// token is the examples' session token (create one with `autonode token`).
const token = "0123456789abcdef0123456789abcdef"

// newRuntime opens a runtime on a registry in a fresh temporary directory;
// cleanup closes it and removes the directory.
func newRuntime(opts runtime.Options) (rt *runtime.Runtime, cleanup func()) {
	dir, err := os.MkdirTemp("", "autonode-example-")
	if err != nil {
		panic(err)
	}
	opts.RegistryPath = filepath.Join(dir, "thread_registry.json")
	opts.SessionToken = token
	opts.Stdout = os.Stdout
	rt, err = runtime.New(opts)
	if err != nil {
		panic(err)
	}
	return rt, func() {
		rt.Close()
		os.RemoveAll(dir)
	}
}

// printErr prints a Starlark error with its backtrace, or a Go error.
func printErr(err error) {
	if ee, ok := err.(*starlark.EvalError); ok {
		fmt.Println(ee.Backtrace())
		return
	}
	fmt.Println(err)
}

func ExampleNew() {
	dir, _ := os.MkdirTemp("", "autonode-example-")
	defer os.RemoveAll(dir)
	rt, err := runtime.New(runtime.Options{
		RegistryPath: filepath.Join(dir, "thread_registry.json"),
		SessionToken: token,
		Stdout:       os.Stdout,
		CPUWorkers:   2,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close()
	_, err = rt.ExecFile(context.Background(), "quickstart.star", `
t = spawn(id=1.0, stage="CORE", priority=2, ttl=15.0, metadata={"max_memory_mb": 1000}, name="YourCoreThread")
print(t.name, t.status, t.result["n"])
`)
	if err != nil {
		printErr(err)
	}
	// Output: YourCoreThread succeeded 512
}

func ExampleRuntime_ExecFile() {
	rt, cleanup := newRuntime(runtime.Options{})
	defer cleanup()
	globals, err := rt.ExecFile(context.Background(), "squares.star", `
def square(x):
    log("squaring %d" % x)
    return x * x

threads = [spawn(run=square, args=(n,)) for n in range(1, 4)]
results = [t.result for t in threads]
`)
	if err != nil {
		printErr(err)
		return
	}
	fmt.Println(globals["results"])
	// Errors carry a Starlark backtrace.
	_, err = rt.ExecFile(context.Background(), "bad.star", "spawn(stage=\"FAST\")\n")
	fmt.Println(err.(*starlark.EvalError).Backtrace())
	// Output:
	// [1, 4, 9]
	// Traceback (most recent call last):
	//   bad.star:1:6: in <toplevel>
	// Error in spawn: spawn: stage: got "FAST", want one of CRITICAL, CORE, BASE
}

func ExampleRuntime_Eval() {
	rt, cleanup := newRuntime(runtime.Options{})
	defer cleanup()
	ctx := context.Background()
	// Statements define globals that later snippets see, as in a REPL.
	if _, err := rt.Eval(ctx, "def double(x):\n    return 2 * x\nn = 21\n"); err != nil {
		printErr(err)
		return
	}
	v, err := rt.Eval(ctx, "double(n)")
	if err != nil {
		printErr(err)
		return
	}
	fmt.Println(v)
	// Output: 42
}

func ExampleRuntime_Call() {
	rt, cleanup := newRuntime(runtime.Options{})
	defer cleanup()
	ctx := context.Background()
	if _, err := rt.ExecFile(ctx, "lib.star", `
def run_sweep(n):
    hs = spawn_batch([{"run": lambda i: i * i, "args": (i,), "wait": False} for i in range(n)])
    return [t.result for t in wait(hs)]
`); err != nil {
		printErr(err)
		return
	}
	v, err := rt.Call(ctx, "run_sweep", starlark.MakeInt(5))
	if err != nil {
		printErr(err)
		return
	}
	fmt.Println(v)
	// Output: [0, 1, 4, 9, 16]
}

func ExampleRuntime_AddBuiltin() {
	rt, cleanup := newRuntime(runtime.Options{})
	defer cleanup()
	// Add builtins before running the code that uses them.
	rt.AddBuiltin("greet", func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var who string
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "who", &who); err != nil {
			return nil, err
		}
		return starlark.String("hello, " + who), nil
	})
	v, err := rt.Eval(context.Background(), `greet("AutoNode")`)
	if err != nil {
		printErr(err)
		return
	}
	fmt.Println(v)
	// Output: "hello, AutoNode"
}

func ExampleRuntime_AddModule() {
	rt, cleanup := newRuntime(runtime.Options{})
	defer cleanup()
	rt.AddModule("site", starlark.StringDict{
		"name":    starlark.String("lab-7"),
		"workers": starlark.MakeInt(16),
	})
	v, err := rt.Eval(context.Background(), `"%s has %d workers" % (site.name, site.workers)`)
	if err != nil {
		printErr(err)
		return
	}
	fmt.Println(v)
	// Output: "lab-7 has 16 workers"
}

func ExampleRuntime_RegisterKernel() {
	rt, cleanup := newRuntime(runtime.Options{})
	defer cleanup()
	// kernels.norm2(n) is the squared norm of a vector of n ones, computed
	// with the calling thread's accel Exec (its device and memory budget)
	// under its context (its TTL).
	rt.RegisterKernel("norm2", func(ctx context.Context, ex *accel.Exec, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var n int
		if err := starlark.UnpackArgs("kernels.norm2", args, kwargs, "n", &n); err != nil {
			return nil, err
		}
		v, err := ex.Ones(accel.Float64, n)
		if err != nil {
			return nil, err
		}
		d, err := ex.Dot(ctx, v, v)
		return starlark.Float(d), err
	})
	_, err := rt.ExecFile(context.Background(), "kernels.star", `
def body(n):
    return kernels.norm2(n)
print(spawn(run=body, args=(1000,)).result)
print(kernels.norm2(3))
`)
	if err != nil {
		printErr(err)
	}
	// Output:
	// 1000.0
	// 3.0
}

func ExampleRuntime_Globals() {
	rt, cleanup := newRuntime(runtime.Options{Argv: []string{"fast", "verbose"}})
	defer cleanup()
	if _, err := rt.ExecFile(context.Background(), "config.star", `mode = argv[0]`); err != nil {
		printErr(err)
		return
	}
	if _, err := rt.Eval(context.Background(), `flags = len(argv)`); err != nil {
		printErr(err)
		return
	}
	g := rt.Globals()
	fmt.Println(g["mode"], g["flags"])
	// Output: "fast" 2
}

func ExampleRuntime_Close() {
	dir, _ := os.MkdirTemp("", "autonode-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "thread_registry.json")
	rt, err := runtime.New(runtime.Options{RegistryPath: path, SessionToken: token})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Threads spawned with wait=False may outlive the script...
	if _, err := rt.ExecFile(context.Background(), "bg.star", `
def work():
    return "done"
spawn(id=1, run=work, wait=False)
`); err != nil {
		printErr(err)
	}
	// ...and Close waits for them, then compacts the registry.
	if err := rt.Close(); err != nil {
		fmt.Println(err)
	}
	data, _ := os.ReadFile(path)
	fmt.Println(strings.Contains(string(data), `"status": "succeeded"`))
	// Output: true
}

func ExampleRuntime_Spawn() {
	rt, cleanup := newRuntime(runtime.Options{})
	defer cleanup()
	// Go code can spawn threads directly, with spawn()'s defaults.
	req := runtime.DefaultSpawnRequest()
	id := registry.ID(5)
	req.ID, req.Stage, req.Metadata = &id, "CORE", map[string]any{"max_memory_mb": 1}
	h, err := rt.Spawn(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	t, err := h.Wait(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Status)
	fmt.Println(t.History[len(t.History)-1][22:])
	// Output:
	// failed
	// CPU computation failed Thread 5.0 exceeds memory budget. Needs 6.00MB, allowed 1MB.
}

func ExampleRuntime_SpawnBatch() {
	rt, cleanup := newRuntime(runtime.Options{})
	defer cleanup()
	_, err := rt.ExecFile(context.Background(), "sweep.star", `
def score(lr):
    return int(1 / lr)
specs = [{"run": score, "args": (lr,), "metadata": {"lr": lr}} for lr in (0.1, 0.5, 1.0)]
specs.append({"stage": "FAST"})
for t in spawn_batch(specs, workers=2):
    print(t.error if hasattr(t, "spec_index") else "%s %s" % (t.status, t.result))
`)
	if err != nil {
		printErr(err)
	}
	// Output:
	// succeeded 10
	// succeeded 2
	// succeeded 1
	// spawn_batch: specs[3].stage: got "FAST", want one of CRITICAL, CORE, BASE
}

func ExampleRuntime_Cancel() {
	rt, cleanup := newRuntime(runtime.Options{CPUWorkers: 1})
	defer cleanup()
	_, err := rt.ExecFile(context.Background(), "cancel.star", `
def forever():
    while True:
        pass
first = spawn(id=1, run=forever, ttl=60, wait=False)
second = spawn(id=2, run=forever, ttl=60, wait=False)  # queued behind the first
cancel(2)
cancel(1)
for t in wait([first, second]):
    print(t.id, t.status)
`)
	if err != nil {
		printErr(err)
	}
	// Output:
	// 1.0 cancelled
	// 2.0 cancelled
}
