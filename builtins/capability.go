package builtins

import (
	"strings"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/registry"
)

// capability is what a builtin may touch. Each builtin declares its one
// capability in capabilities, and newBuiltin enforces it before the
// builtin runs: the sandbox (DESIGN §6) is decided here and nowhere else.
type capability uint8

const (
	// pure builtins compute, or read the calling thread's own snapshot.
	pure capability = iota + 1
	// engine builtins start, wait for or write to threads through the
	// engine (spawn, wait, log); a sandboxed body may use them, within
	// the engine's spawn bounds.
	engine
	// readsRecord builtins read the one record named by their first
	// argument, "id": a sandboxed body may read only its own.
	readsRecord
	// readsRegistry builtins read many records: refused to sandboxed
	// bodies.
	readsRegistry
	// writesRegistry builtins change the registry: refused to sandboxed
	// bodies.
	writesRegistry
	// host builtins touch the machine (files, environment, processes):
	// Engine.HostAccess decides.
	host
)

// capabilities declares the capability of every builtin, by the name a
// script calls it with. Members of pureModules not listed here are pure.
// A test fails when a builtin has none.
var capabilities = map[string]capability{
	"token": pure, "current": pure, "struct": pure,
	"spawn": engine, "spawn_batch": engine, "wait": engine, "Handle.wait": engine, "log": engine, "log_metric": engine,
	"get": readsRecord, "info": readsRecord, "lineage": readsRecord,
	"threads": readsRegistry, "query": readsRegistry, "summarize": readsRegistry,
	"run": writesRegistry, "cancel": writesRegistry, "branch": writesRegistry, "fork": writesRegistry,
	"merge": writesRegistry, "reparent": writesRegistry, "rename": writesRegistry, "mutate": writesRegistry,
	"update": writesRegistry, "delete": writesRegistry, "restore": writesRegistry,
	"host.read_file": host, "host.write_file": host, "host.env": host, "host.exec": host,
	"accel.save": host, "accel.save_npy": host, "accel.load": host, "accel.load_npy": host,
}

// pureModules are the modules whose members only compute unless listed in
// capabilities.
var pureModules = []string{"accel", "array", "json", "math", "time", "struct"}

// capabilityOf returns the declared capability of the builtin name.
func capabilityOf(name string) (capability, bool) {
	if c, ok := capabilities[name]; ok {
		return c, true
	}
	if mod, _, ok := strings.Cut(name, "."); ok {
		for _, m := range pureModules {
			if m == mod {
				return pure, true
			}
		}
	}
	return 0, false
}

// allow is the sandbox decision for a call of builtin fn with capability
// c on th.
func allow(e Engine, th *starlark.Thread, fn string, c capability, args starlark.Tuple, kwargs []starlark.Tuple) error {
	if c == pure {
		return nil
	}
	if c == host {
		short := fn
		if rest, ok := strings.CutPrefix(fn, "host."); ok {
			short = rest // "read_file"; "accel.save" stays itself
		}
		if err := e.HostAccess(th, short); err != nil {
			return wrapErr(fn, err)
		}
		return nil
	}
	if outer, ok := th.Local(inUpdateKey).(string); ok && outer != "" {
		return errorf(fn, "refused inside the function given to %s: it runs inside the registry transaction, so it may only compute and return the changes", outer)
	}
	rec := e.Running(th)
	if rec == nil || !rec.Sandbox {
		return nil
	}
	switch c {
	case readsRecord:
		if id, ok := firstID(args, kwargs); !ok || id == rec.ID {
			return nil // its own record, or an argument the builtin refuses
		}
		fallthrough
	case readsRegistry:
		return errorf(fn, "refused: thread %s is sandboxed and may read only its own record (current()); spawn it with sandbox=False", rec.ID)
	case writesRegistry:
		return errorf(fn, "refused: thread %s is sandboxed and may not change the registry; spawn it with sandbox=False", rec.ID)
	}
	return nil
}

// firstID is the id argument of a call (first positional, or id=), when
// it is one.
func firstID(args starlark.Tuple, kwargs []starlark.Tuple) (registry.ID, bool) {
	var v starlark.Value
	if len(args) > 0 {
		v = args[0]
	}
	for _, kv := range kwargs {
		if k, _ := starlark.AsString(kv[0]); k == "id" {
			v = kv[1]
		}
	}
	var id idArg
	if v == nil || id.Unpack(v) != nil {
		return 0, false
	}
	return id.id(), true
}
