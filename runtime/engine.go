package runtime

import (
	"context"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/registry"
)

// SpawnRequest describes a thread for Spawn and SpawnBatch: spawn()'s
// parameters (each field is documented at builtins.SpawnRequest, the same
// type, which the builtins hand to the engine). DefaultSpawnRequest fills
// in spawn()'s defaults.
type SpawnRequest = builtins.SpawnRequest

// DefaultSpawnRequest returns a request with spawn()'s defaults (stage
// BASE, device cpu, sandbox and caching on, priority 1, ttl 10.0, wait, no
// retries and the default retry timing), for Go code that calls Spawn
// directly.
func DefaultSpawnRequest() *SpawnRequest {
	return &SpawnRequest{
		Stage: registry.StageBase, Device: "cpu", Sandbox: true, Caching: true,
		Priority: registry.DefaultPriority, TTL: registry.DefaultTTL, Wait: true,
		RetryDelay: registry.DefaultRetryDelay, Backoff: registry.DefaultBackoff, MaxDelay: registry.DefaultMaxDelay,
	}
}

// Handle is a thread submitted by Spawn or SpawnBatch: its ID, Wait
// (until it has ended, or ctx is done; it returns the final record) and
// Done.
type Handle = builtins.Handle

// BatchResult is the outcome of one request of SpawnBatch: a handle, or
// the error that refused the request.
type BatchResult = builtins.BatchResult

// engine is the Runtime as the builtins see it (builtins.Engine): the
// plumbing they need, kept off the Runtime's exported API.
type engine struct{ r *Runtime }

var _ builtins.Engine = engine{}

func (e engine) Store() registry.Store                        { return e.r.store }
func (e engine) Token(tok string) (string, error)             { return e.r.token(tok) }
func (e engine) Cancel(id registry.ID, tok string) error      { return e.r.Cancel(id, tok) }
func (e engine) Running(th *starlark.Thread) *registry.Thread { return e.r.running(th) }
func (e engine) Log(th *starlark.Thread, msg string) error    { return e.r.logLine(th, msg) }
func (e engine) LogMetric(th *starlark.Thread, name string, value float64, step *int64) (int64, error) {
	return e.r.logMetric(th, name, value, step)
}
func (e engine) HostAccess(th *starlark.Thread, fn string) error {
	return e.r.hostAccess(th, fn)
}
func (e engine) CheckRecord(t *registry.Thread) error        { return e.r.checkRecord(t) }
func (e engine) Accel(th *starlark.Thread) *accel.Exec       { return e.r.accelExec(th) }
func (e engine) Context(th *starlark.Thread) context.Context { return e.r.contextOf(th) }

func (e engine) Spawn(ctx context.Context, req *SpawnRequest) (Handle, error) {
	return e.r.Spawn(ctx, req)
}

func (e engine) SpawnBatch(ctx context.Context, reqs []*SpawnRequest, workers int) []BatchResult {
	return e.r.SpawnBatch(ctx, reqs, workers)
}
