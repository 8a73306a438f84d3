package builtins

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	"go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/registry"
)

// threadBuiltins maps each thread builtin's name to its constructor.
var threadBuiltins = map[string]func(Engine) builtinFunc{
	"token":       builtinToken,
	"spawn":       builtinSpawn,
	"spawn_batch": builtinSpawnBatch,
	"run":         builtinRun,
	"wait":        builtinWait,
	"cancel":      builtinCancel,
	"get":         builtinGet,
	"threads":     builtinThreads,
	"query":       builtinQuery,
	"branch":      builtinBranch,
	"fork":        builtinFork,
	"merge":       builtinMerge,
	"reparent":    builtinReparent,
	"rename":      builtinRename,
	"mutate":      builtinMutate,
	"update":      builtinUpdate,
	"delete":      builtinDelete,
	"restore":     builtinRestore,
	"summarize":   builtinSummarize,
	"lineage":     builtinLineage,
	"info":        builtinInfo,
	"current":     builtinCurrent,
	"log":         builtinLog,
	"log_metric":  builtinLogMetric,
}

// Predeclared returns AutoNode's Starlark environment bound to e: every
// thread builtin (token, spawn, spawn_batch, wait, cancel, get, threads,
// query, branch, fork, merge, reparent, rename, mutate, delete, restore,
// summarize, lineage, info, current, log), struct, and the modules accel,
// host, json, math and time. The values are frozen and safe to share between
// Starlark threads. Docs describes each one.
func Predeclared(e Engine) starlark.StringDict {
	if e == nil {
		e = nilEngine{}
	}
	d := make(starlark.StringDict, len(threadBuiltins)+5)
	for name, mk := range threadBuiltins {
		d[name] = newBuiltin(e, name, mk(e))
	}
	d["struct"] = structBuiltin(e)
	d["accel"] = newAccelModule(e)
	d["host"] = hostModule(e)
	d["json"] = guardModule(json.Module)
	d["math"] = guardModule(math.Module)
	d["time"] = guardModule(time.Module)
	d.Freeze()
	return d
}

// structBuiltin is go.starlark.net's struct(**kwargs) (starlarkstruct.Make),
// predeclared as Bazel, Tilt and starlet have it.
func structBuiltin(e Engine) *starlark.Builtin {
	mk := starlark.NewBuiltin("struct", starlarkstruct.Make)
	return newBuiltin(e, "struct", func(th *starlark.Thread, _ string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return starlark.Call(th, mk, args, kwargs)
	})
}

// builtinFunc is the signature of every builtin's implementation.
type builtinFunc func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

// newBuiltin wraps impl as a Starlark builtin named name, bound to e. The
// wrapper enforces the builtin's declared capability (capabilities: the
// one sandbox decision point) before impl runs, and turns a panic (a bug,
// never an expected outcome) into an error naming the builtin
// ("accel.add: internal error: ..."), so that no input can bring the host
// program down and the script or thread fails instead of succeeding;
// InternalErrors counts it. A builtin without a declared capability is
// refused (a test keeps every builtin declared).
func newBuiltin(e Engine, name string, impl builtinFunc) *starlark.Builtin {
	c, declared := capabilityOf(name)
	return starlark.NewBuiltin(name, func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (v starlark.Value, err error) {
		defer recoverValue(name, &v, &err)
		if th == nil {
			return nil, fmt.Errorf("%s: called without a Starlark thread", name)
		}
		if !declared {
			return nil, fmt.Errorf("%s: %w: the builtin declares no capability", name, ErrInternal)
		}
		if err := allow(e, th, name, c, args, kwargs); err != nil {
			return nil, err
		}
		return impl(th, name, args, kwargs)
	})
}

// guardModule returns a copy of a go.starlark.net library module whose
// functions recover from panics as newBuiltin's do.
func guardModule(mod *starlarkstruct.Module) *starlarkstruct.Module {
	out := &starlarkstruct.Module{Name: mod.Name, Members: make(starlark.StringDict, len(mod.Members))}
	for name, v := range mod.Members {
		if b, ok := v.(*starlark.Builtin); ok {
			full := mod.Name + "." + name
			v = starlark.NewBuiltin(b.Name(), func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (v starlark.Value, err error) {
				defer recoverValue(full, &v, &err)
				return starlark.Call(th, b, args, kwargs)
			})
		}
		out.Members[name] = v
	}
	return out
}

// ErrInternal is wrapped by the error that reports a recovered panic: a
// bug in AutoNode, never an expected outcome.
var ErrInternal = errors.New("internal error")

var internalErrors atomic.Int64

// InternalErrors returns how many panics the builtins (and the thread
// engine, through Panicked) have turned into errors since the process
// started. autonode run exits with a failure when the count grew during
// its run, even when the script carried on (a thread body that failed this
// way only sets the thread's status).
func InternalErrors() int64 { return internalErrors.Load() }

// Panicked returns the error reporting the recovered panic value p in the
// builtin or operation name ("accel.add: internal error: ..."; just
// "internal error: ..." for an empty name), and counts it in
// InternalErrors.
func Panicked(name string, p any) error {
	internalErrors.Add(1)
	if name == "" {
		return fmt.Errorf("%w: %v", ErrInternal, p)
	}
	return fmt.Errorf("%s: %w: %v", name, ErrInternal, p)
}

// recoverValue is deferred by builtins and value methods: it turns a panic
// into Panicked's error.
func recoverValue(name string, v *starlark.Value, err *error) {
	if r := recover(); r != nil {
		*v, *err = nil, Panicked(name, r)
	}
}

// recoverErr is recoverValue for methods that return only an error.
func recoverErr(name string, err *error) {
	if r := recover(); r != nil {
		*err = Panicked(name, r)
	}
}

// errNoEngine is what every builtin reports under Predeclared(nil).
var errNoEngine = errors.New("no thread engine: these builtins were made with Predeclared(nil)")

// nilEngine stands in for a nil Engine so that misuse gives errors, not
// panics.
type nilEngine struct{}

func (nilEngine) Store() registry.Store                                { return nilStore{} }
func (nilEngine) Token(string) (string, error)                         { return "", errNoEngine }
func (nilEngine) Spawn(context.Context, *SpawnRequest) (Handle, error) { return nil, errNoEngine }
func (nilEngine) Cancel(registry.ID, string) error                     { return errNoEngine }
func (nilEngine) Running(*starlark.Thread) *registry.Thread            { return nil }
func (nilEngine) LogMetric(*starlark.Thread, string, float64, *int64) (int64, error) {
	return 0, errNoEngine
}
func (nilEngine) Log(*starlark.Thread, string) error        { return errNoEngine }
func (nilEngine) HostAccess(*starlark.Thread, string) error { return errNoEngine }
func (nilEngine) CheckRecord(*registry.Thread) error        { return errNoEngine }
func (nilEngine) Accel(*starlark.Thread) *accel.Exec        { return nil }
func (nilEngine) Context(*starlark.Thread) context.Context  { return context.Background() }
func (nilEngine) SpawnBatch(_ context.Context, reqs []*SpawnRequest, _ int) []BatchResult {
	out := make([]BatchResult, len(reqs))
	for i := range out {
		out[i].Err = errNoEngine
	}
	return out
}

type nilStore struct{}

func (nilStore) View(func(*registry.Tx) error) error   { return errNoEngine }
func (nilStore) Update(func(*registry.Tx) error) error { return errNoEngine }
func (nilStore) Close() error                          { return nil }
