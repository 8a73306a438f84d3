package builtins

import (
	"context"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/registry"
)

// Engine is the thread engine as the builtins see it. Package runtime
// implements it; builtins never imports runtime.
type Engine interface {
	// Store is the registry every builtin reads and writes through.
	Store() registry.Store

	// Token returns tok, or the session token when tok is empty. With
	// neither it returns an error that says how to get one
	// (`autonode token`, --token, AUTONODE_TOKEN).
	Token(tok string) (string, error)

	// Spawn validates req (DESIGN §3 defaults and rules), persists the
	// thread (or a new attempt of an existing one) and submits it to the
	// scheduler. With req.Wait it returns once the thread has ended;
	// otherwise at once. A dry run validates only.
	Spawn(ctx context.Context, req *SpawnRequest) (Handle, error)

	// SpawnBatch submits every request and runs them concurrently (at most
	// workers at a time; <= 0 means the engine's default), returning one
	// result per request, in order. One failure never stops the rest.
	SpawnBatch(ctx context.Context, reqs []*SpawnRequest, workers int) []BatchResult

	// Cancel stops a pending, waiting or running thread, in this process
	// or, through a durable request in its record, in any other; tok must
	// open it.
	Cancel(id registry.ID, tok string) error

	// Running returns a snapshot of the record of the thread whose body
	// runs on th, or nil when th is not running a thread body.
	Running(th *starlark.Thread) *registry.Thread

	// Log appends msg to the history of the thread whose body runs on th
	// (and to its log, where the registry keeps logs).
	Log(th *starlark.Thread, msg string) error

	// LogMetric records a point (step, value) of the metric name of the
	// thread whose body runs on th; a nil step is the metric's next one.
	// It returns the step recorded.
	LogMetric(th *starlark.Thread, name string, value float64, step *int64) (int64, error)

	// HostAccess decides whether th may call host.<fn> (DESIGN §6):
	// sandboxed bodies are refused, unsandboxed bodies are served and
	// their history records the elevated run, a script's top level
	// follows the embedder's policy. The error says why not.
	HostAccess(th *starlark.Thread, fn string) error

	// CheckRecord refuses a record that a lineage operation (branch,
	// fork, merge, mutate) is about to write when the embedder's policy
	// forbids it (an unsandboxed thread under ForbidUnsandboxed). The
	// builtins call it inside the operation's transaction, so a refused
	// operation writes nothing.
	CheckRecord(t *registry.Thread) error

	// Accel returns the accel execution context for th: the running
	// thread's device and memory budget, or the session's at top level.
	Accel(th *starlark.Thread) *accel.Exec

	// Context returns the context that ends th's work (TTL, cancel(),
	// Ctrl-C, the embedder's context).
	Context(th *starlark.Thread) context.Context
}

// SpawnRequest describes a thread for Engine.Spawn and SpawnBatch:
// spawn()'s parameters, after argument unpacking; the engine validates the
// values. Package runtime exports it as runtime.SpawnRequest (the same
// type), with DefaultSpawnRequest for spawn()'s defaults.
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

// Handle is a submitted thread.
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
