// Command embed runs a Starlark job inside a Go program with AutoNode's
// runtime: the script spawns threads (sandboxed, bounded), calls a kernel
// written in Go, and the program reads the results back and spawns a
// thread from Go. Run it with `go run ./examples/embed [DIR]`; the
// registry is DIR/thread_registry.json (default: a new temporary
// directory).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/registry"
	autonode "github.com/autonode/autonode/runtime" // the package is runtime: alias it, Go has one
)

// job is the user's script; a real program reads it from a file.
const job = `
def body(n):
    return kernels.norm2(n)                 # a kernel written in Go, below
t = spawn(run = body, args = (1000,), retries = 1)
print("thread", t.id, t.status, t.result)
`

func main() {
	if err := run(); err != nil {
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, ee.Backtrace()) // the script's own traceback
		} else {
			fmt.Fprintln(os.Stderr, "embed:", err)
		}
		os.Exit(1)
	}
}

func run() error {
	// Ctrl-C cancels the context: the script and the threads it waits on stop.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	dir := ""
	if len(os.Args) > 1 {
		dir = os.Args[1]
	} else {
		d, err := os.MkdirTemp("", "autonode-embed-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	// The session token opens the threads the script creates with
	// token=None; any 16 to 256 characters, e.g. one from registry.NewToken.
	token, err := registry.NewToken()
	if err != nil {
		return err
	}
	rt, err := autonode.New(autonode.Options{
		RegistryPath:      filepath.Join(dir, registry.DefaultRegistryFile), // or Store: any registry.Store
		SessionToken:      token,
		Stdout:            os.Stdout,  // print() of the script and its threads
		MaxSteps:          10_000_000, // step budget per body and per call
		ForbidUnsandboxed: true,       // user scripts may not leave the sandbox
	})
	if err != nil {
		return err
	}
	defer rt.Close() // waits for the threads, compacts the registry

	// kernels.norm2(n): the squared norm of n ones, computed with the
	// calling thread's accel Exec (its device and memory budget) under its
	// context (its TTL). Register kernels before running code that uses them.
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

	if _, err := rt.ExecFile(ctx, "job.star", job); err != nil {
		return err
	}
	total, err := rt.Eval(ctx, `summarize()["total"]`) // REPL-style: the script's globals persist
	if err != nil {
		return err
	}
	fmt.Println("threads in the registry:", total)

	// spawn() from Go, with its defaults: the seed's default work (a
	// 512x512 matmul) as a CORE thread.
	req := autonode.DefaultSpawnRequest()
	req.Stage, req.Metadata = registry.StageCore, map[string]any{"max_memory_mb": 64}
	h, err := rt.Spawn(ctx, req)
	if err != nil {
		return err
	}
	rec, err := h.Wait(ctx)
	if err != nil {
		return err
	}
	fmt.Println("from Go:", rec.Key(), rec.Name, rec.Status)
	for _, t := range rt.Failed() { // threads that ended failed, timed out, crashed or skipped
		fmt.Println("failed:", t.Key(), t.Error)
	}
	return nil
}
