package runtime

import "go.starlark.net/starlark"

// SetGlobal binds name in the globals that later Eval and Call calls see
// (an interactive session keeps the last value in _).
func (r *Runtime) SetGlobal(name string, v starlark.Value) {
	r.envMu.Lock()
	defer r.envMu.Unlock()
	r.env[name] = v
}

// Predeclared returns the names every script sees without defining them:
// the builtins, modules, argv and what AddBuiltin, AddModule and
// RegisterKernel added.
func (r *Runtime) Predeclared() starlark.StringDict { return r.predeclared() }
