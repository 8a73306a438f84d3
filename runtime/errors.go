package runtime

import (
	"errors"
	"fmt"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/registry"
)

// Errors that tell the limits apart. Every limit the runtime enforces ends
// in an error that wraps one of them, whether it stops a thread body (see
// [RunErr]), a script's top level (the error of ExecFile, Eval or Call,
// which is still a *starlark.EvalError for errors.As), or a builtin call:
//
//	_, err := rt.ExecFile(ctx, "job.star", nil)
//	switch {
//	case errors.Is(err, runtime.ErrStepLimit): ...
//	case errors.Is(err, runtime.ErrLoadDenied): ...
//	}
var (
	// ErrTTLExceeded ends a thread that ran past its TTL (status
	// timed_out).
	ErrTTLExceeded = errors.New("TTL exceeded")
	// ErrCancelled ends a thread stopped by cancel(), by its parent's end,
	// by the context of its spawner, or by Close (status cancelled).
	ErrCancelled = errors.New("cancelled")
	// ErrInterrupted is the cause the CLI gives a context it cancels on
	// SIGINT or SIGTERM; threads stopped by it are recorded cancelled.
	ErrInterrupted = errors.New("interrupted")
	// ErrStepLimit ends Starlark code that used up Options.MaxSteps.
	ErrStepLimit = errors.New("step budget exhausted")
	// ErrMemoryLimit ends a thread whose Starlark values and arrays need
	// more than its metadata.max_memory_mb, and Starlark code stopped
	// because the process came close to the memory it may use. It also
	// matches accel.ErrBudget, the error of an array allocation that does
	// not fit the budget.
	ErrMemoryLimit = errors.New("memory limit exceeded")
	// ErrSpawnLimit refuses a spawn from a thread body beyond
	// Options.MaxChildren or Options.MaxDescendants.
	ErrSpawnLimit = errors.New("spawn limit exceeded")
	// ErrLoadDenied refuses a load() the embedder's load policy does not
	// allow: outside the allowed directories, an absolute path, a
	// symbolic link that leads out, or not a regular file.
	ErrLoadDenied = errors.New("load refused")
	// ErrLoadTooLarge refuses a module larger than Options.MaxLoadBytes.
	ErrLoadTooLarge = errors.New("module too large")
	// ErrUnsandboxedForbidden refuses, under Options.ForbidUnsandboxed,
	// every way to get an unsandboxed thread: spawn(sandbox=False), a
	// branch, fork, merge or mutate that yields sandbox=False, and running
	// such a record.
	ErrUnsandboxedForbidden = errors.New("unsandboxed threads are forbidden by the embedding application")
	// ErrClosed refuses work once Close has begun.
	ErrClosed = errors.New("the runtime is closed")
	// ErrNoMemory fails a thread that could not start because the
	// machine's memory stayed too full for Options.MemoryWait (status
	// failed; it never ran).
	ErrNoMemory = errors.New("not enough free memory to start")
	// ErrSkipped ends a thread that waited for others (after=) of which
	// one failed for good (status skipped; it never ran).
	ErrSkipped = errors.New("skipped")
)

// memoryError is ErrMemoryLimit with its details; it also matches
// accel.ErrBudget, so that code checking for either finds it.
type memoryError struct{ msg string }

func (e *memoryError) Error() string { return ErrMemoryLimit.Error() + ": " + e.msg }

func (e *memoryError) Is(target error) bool {
	return target == ErrMemoryLimit || target == accel.ErrBudget
}

// limitError is a sentinel with details: its text is the details, and it
// matches the sentinel.
type limitError struct {
	sentinel error
	msg      string
}

func (e *limitError) Error() string        { return e.msg }
func (e *limitError) Unwrap() error        { return e.sentinel }
func (e *limitError) Is(target error) bool { return target == e.sentinel }

func limitf(sentinel error, format string, args ...any) error {
	return &limitError{sentinel: sentinel, msg: fmt.Sprintf(format, args...)}
}

// stoppedError is the error of Starlark code that a limit or a context
// stopped: its text and first cause are the interpreter's error (a
// *starlark.EvalError with its backtrace), and it also wraps why.
type stoppedError struct {
	err error // from the interpreter
	why error // the limit or the context's cause
}

func (e *stoppedError) Error() string   { return e.err.Error() }
func (e *stoppedError) Unwrap() []error { return []error{e.err, e.why} }

// RunErr returns why the thread behind h, a handle from this package's
// Spawn or SpawnBatch, did not succeed: nil while it runs, when it
// succeeded or was cached, or when h does not come from this package.
// Otherwise the error wraps ErrTTLExceeded, ErrCancelled (and, for a
// signal, ErrInterrupted), ErrMemoryLimit, ErrNoMemory, ErrStepLimit,
// ErrUnsandboxedForbidden, ErrSkipped, or is the body's own error (a
// *starlark.EvalError). With retries it is the last attempt's. The
// thread's record holds the same text.
func RunErr(h Handle) error {
	j, ok := h.(*run)
	if !ok || !j.Done() {
		return nil
	}
	return j.runErr
}

// classify returns the status a run ends with, given why its context
// ended (nil if it did not) and the body's error.
func classify(cause, bodyErr error) string {
	switch {
	case cause != nil && errors.Is(cause, ErrTTLExceeded):
		return registry.StatusTimedOut
	case cause != nil && (errors.Is(cause, ErrMemoryLimit) || errors.Is(cause, ErrStepLimit) || errors.Is(cause, ErrUnsandboxedForbidden)):
		return registry.StatusFailed
	case cause != nil:
		return registry.StatusCancelled
	case bodyErr != nil:
		return registry.StatusFailed
	}
	return registry.StatusSucceeded
}
