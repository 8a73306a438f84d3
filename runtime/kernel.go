package runtime

import (
	"context"
	"maps"
	"slices"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/autonode/autonode/accel"
)

// Kernel is a Go function callable from Starlark as kernels.<name>(...)
// (see RegisterKernel). It runs on the caller's goroutine with the
// caller's context (a thread body's TTL and cancel(), or the top level's
// context) and accel Exec (the thread's device and memory budget); a
// kernel that loops must return soon after ctx is done.
type Kernel func(ctx context.Context, ex *accel.Exec, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

// RegisterKernel makes k callable from Starlark as kernels.<name>. The
// kernels module is predeclared once a kernel is registered; register
// kernels before running the code that uses them.
func (r *Runtime) RegisterKernel(name string, k Kernel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kernels[name] = k
}

// kernelModule builds the kernels module; r.mu is held.
func (r *Runtime) kernelModule() *starlarkstruct.Module {
	names := slices.Sorted(maps.Keys(r.kernels))
	members := make(starlark.StringDict, len(names))
	for _, n := range names {
		k := r.kernels[n]
		members[n] = starlark.NewBuiltin("kernels."+n, func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			ctx := r.contextOf(th)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return k(ctx, r.accelExec(th), args, kwargs)
		})
	}
	m := &starlarkstruct.Module{Name: "kernels", Members: members}
	m.Freeze()
	return m
}
