package runtime

import (
	"context"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/registry"
)

// SpawnRequest describes a thread for Spawn and SpawnBatch: spawn()'s
// parameters. DefaultSpawnRequest fills in spawn()'s defaults.
type SpawnRequest struct {
	// ID is the thread id; nil picks the next free one.
	ID       *registry.ID
	Stage    string
	Device   string
	Token    string
	Sandbox  bool
	Caching  bool
	Priority int64
	TTL      float64
	Metadata map[string]any
	Name     string
	// Run is the thread's body; nil runs the default work (the seed's
	// 512×512 float64 matmul, checked against the memory budget). It and
	// Args/Kwargs are frozen before they run.
	Run    starlark.Callable
	Args   starlark.Tuple
	Kwargs []starlark.Tuple
	DryRun bool
	Wait   bool
	// Caller is the Starlark thread that asks for the spawn, or nil from
	// Go. A spawn from a running thread body (a builtin of the embedder
	// passing its thread) is that body's child: bounded, sandboxed when
	// it is, and cancelled when it ends.
	Caller *starlark.Thread
	// Retries, RetryDelay, Backoff and MaxDelay are the retry policy: a
	// failed, timed-out or crashed attempt is retried up to Retries
	// times, the n-th retry after RetryDelay * Backoff^(n-1) seconds
	// (at most MaxDelay, ±10% jitter); a cancelled one never is. RetryOn,
	// when set, is called with the attempt's error text and returns
	// whether to retry.
	Retries    int
	RetryDelay float64
	Backoff    float64
	MaxDelay   float64
	RetryOn    starlark.Callable
	// After lists the threads that must succeed (or be served from the
	// cache) before this one runs; until then it is waiting, without a
	// worker slot. If one fails for good, this one is skipped.
	After []registry.ID
	// Rerun asks for a new attempt of the existing thread ID (run()):
	// it is an error when ID does not exist.
	Rerun bool
	// Given names the fields the caller set ("stage", "priority",
	// "retries", "after", ...). A request for an existing thread (ID
	// names one) is a new attempt of it, and only the given fields
	// replace the record's; nil means all of them.
	Given []string
}

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

// Handle is a thread submitted by Spawn or SpawnBatch.
type Handle interface {
	ID() registry.ID
	// Wait blocks until the thread has ended, or ctx is done, and
	// returns its final record.
	Wait(ctx context.Context) (*registry.Thread, error)
	// Done reports whether the thread has ended.
	Done() bool
}

// BatchResult is the outcome of one request of SpawnBatch: a handle, or
// the error that refused the request.
type BatchResult struct {
	Handle Handle
	Err    error
}

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

func (e engine) Spawn(ctx context.Context, req *builtins.SpawnRequest) (builtins.Handle, error) {
	h, err := e.r.Spawn(ctx, (*SpawnRequest)(req))
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (e engine) SpawnBatch(ctx context.Context, reqs []*builtins.SpawnRequest, workers int) []builtins.BatchResult {
	rs := make([]*SpawnRequest, len(reqs))
	for i, req := range reqs {
		rs[i] = (*SpawnRequest)(req)
	}
	res := e.r.SpawnBatch(ctx, rs, workers)
	out := make([]builtins.BatchResult, len(res))
	for i, b := range res {
		out[i].Err = b.Err
		if b.Handle != nil {
			out[i].Handle = b.Handle
		}
	}
	return out
}
