package builtins

import (
	"context"
	"errors"

	"go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	"go.starlark.net/lib/time"
	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/registry"
)

// threadBuiltins maps each thread builtin's name to its constructor.
var threadBuiltins = map[string]func(Engine) builtinFunc{
	"token":       builtinToken,
	"spawn":       builtinSpawn,
	"spawn_batch": builtinSpawnBatch,
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
	"delete":      builtinDelete,
	"restore":     builtinRestore,
	"summarize":   builtinSummarize,
	"lineage":     builtinLineage,
	"info":        builtinInfo,
	"current":     builtinCurrent,
	"log":         builtinLog,
}

// Predeclared returns AutoNode's Starlark environment bound to e: every
// thread builtin (token, spawn, spawn_batch, wait, cancel, get, threads,
// query, branch, fork, merge, reparent, rename, mutate, delete, restore,
// summarize, lineage, info, current, log) and the modules accel, host,
// json, math and time. The values are frozen and safe to share between
// Starlark threads. Docs describes each one.
func Predeclared(e Engine) starlark.StringDict {
	if e == nil {
		e = nilEngine{}
	}
	d := make(starlark.StringDict, len(threadBuiltins)+5)
	for name, mk := range threadBuiltins {
		d[name] = newBuiltin(name, mk(e))
	}
	d["accel"] = newAccelModule(e)
	d["host"] = hostModule(e)
	d["json"] = json.Module
	d["math"] = math.Module
	d["time"] = time.Module
	d.Freeze()
	return d
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
func (nilEngine) Log(*starlark.Thread, string) error                   { return errNoEngine }
func (nilEngine) HostAccess(*starlark.Thread, string) error            { return errNoEngine }
func (nilEngine) CheckRecord(*registry.Thread) error                   { return errNoEngine }
func (nilEngine) Accel(*starlark.Thread) *accel.Exec                   { return nil }
func (nilEngine) Context(*starlark.Thread) context.Context             { return context.Background() }
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
