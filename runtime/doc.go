// Package runtime is AutoNode's thread engine (validation, tokens,
// scheduling, execution on devices, TTL, caching, sandbox) and the embedding
// API for host Go programs.
//
// # Embedding
//
// [New] opens a registry and returns a [Runtime]. [Runtime.ExecFile] runs a
// script, [Runtime.Eval] evaluates snippets as a REPL does (globals persist
// between calls), [Runtime.Call] calls a Starlark function, and
// [Runtime.AddBuiltin], [Runtime.AddModule] and [Runtime.RegisterKernel]
// extend what scripts see (add them before running the code that uses
// them: Starlark resolves names when it compiles). Every call takes a
// context: cancelling it stops the Starlark code it runs and the threads it
// spawned. [Runtime.Close] waits for the threads still pending or running,
// then closes (and compacts) the registry.
//
//	rt, err := runtime.New(runtime.Options{SessionToken: tok, Stdout: os.Stdout})
//	if err != nil { ... }
//	defer rt.Close()
//	if _, err := rt.ExecFile(ctx, "quickstart.star", nil); err != nil {
//		var ee *starlark.EvalError
//		if errors.As(err, &ee) { fmt.Fprintln(os.Stderr, ee.Backtrace()) }
//	}
//
// Scripts use the dialect of [Dialect] (while loops, top-level control
// flow, global reassignment, sets, recursion) and see the builtins of
// package builtins, argv, and the kernels module once a kernel is
// registered.
//
// # Threads
//
// A [Runtime] serves the builtins behind spawn(), spawn_batch(), wait(),
// cancel(), current() and log(), and Go code spawns threads with
// [Runtime.Spawn] and [Runtime.SpawnBatch] ([DefaultSpawnRequest]). A
// spawned thread is validated with the seed's rules and defaults (DESIGN §3), persisted
// as pending (or waiting, for its after= dependencies, without a worker
// slot) and queued. A thread is a job that may run more than once: each
// run is an attempt, kept in the record (registry.Thread.Attempts); its
// status, result and error are the latest attempt's, its history is
// appended and never reset. It goes pending → waiting → running →
// succeeded, failed, timed_out, cancelled, crashed or skipped; cached and
// dry_run threads never run ([RunErr] tells an embedder why one did not
// succeed). A failed or timed-out attempt is retried by the request's
// retry policy (SpawnRequest.Retries: the n-th retry after RetryDelay *
// Backoff^(n-1) seconds, at most MaxDelay, ±10% jitter; RetryOn may veto;
// a cancelled attempt never is), each attempt with its own TTL. A request
// whose ID names an existing thread is a new attempt of it (run() and
// spawn(id=X)): its token must open the thread, and only the fields the
// request gives replace the record's. Every transition is persisted, with
// the seed's history wording ("Thread 'x' initialized with priority 2.",
// "Spawning 'x' | ID: 1.0 | Device: CPU | …", "CPU computation
// complete."); started_at is when the attempt's body started, and
// finished_at is never before it. The record of a running thread names its
// process (pid, host, start time); New marks threads left running by a dead
// process as crashed (cancelled, when a cancel was requested).
//
// A busy CPU never refuses a thread: threads queue. Memory is admission
// controlled: while the machine's memory (or its cgroup's) is more than
// 95% used, sampled by a background goroutine, or less is free than the
// max_memory_mb a thread asks for, the thread waits without its worker
// slot for up to Options.MemoryWait, then fails with ErrNoMemory.
//
// [Runtime.Cancel] stops a thread of this runtime at once, and records a
// cancel request in the record of a thread another process runs
// (registry.Tx.RequestCancel): each runtime watches the records of its
// live threads (a registry read every 200 ms while it has some) and stops
// a running one within a second of a request. [Runtime.Failed] lists the
// threads that did not succeed, for autonode run's exit status.
//
// Queued threads start by stage (CRITICAL, CORE, BASE), then priority
// (higher first), then submission order, on a bounded pool per device
// (Options.CPUWorkers, Options.GPUWorkers). A body that waits for other
// threads gives its slot back while it waits, so nested spawns cannot
// deadlock a small pool.
//
// Each run gets a new starlark.Thread (print and load as the runtime's, the
// step budget Options.MaxSteps) and an accel Exec on its device, charged to
// a budget of metadata.max_memory_mb (default 500) and closed when the run
// ends. A run still going at its TTL is stopped (the Starlark thread is
// cancelled and kernels see their context end) and recorded timed_out; a Go
// kernel that ignores its context is abandoned after a grace period. With
// no body, a thread runs the seed's default work, done for real: a 512×512
// float64 matrix product, checked first against the memory budget. A
// body's return value is stored as the thread's result (JSON).
//
// device="gpu", a backend name, and every CRITICAL thread go through one
// function that picks a GPU backend when accel finds one and otherwise runs
// on the CPU with a history note saying why; device_used records the
// outcome.
//
// # Sharing between threads
//
// Starlark values are not safe for concurrent mutation, and a body runs on
// another goroutine than its spawner. Spawn therefore freezes the body,
// its arguments, and the module globals the body's code (and the code of
// the module functions it mentions) names; the top level may keep mutating
// every other global. Assigning a new value to a global that a running body
// reads is a data race that Starlark cannot prevent: don't.
//
// # Caching
//
// With caching=True, a thread whose key matches an earlier succeeded
// thread reuses its result (status cached) without running. The key
// covers the body (its name, position and file source), the values of the
// variables it captures and the globals it names, the arguments, the
// device, the sandbox flag, the metadata, and for the default work the
// spawning script's source. Values without a stable key (accel arrays, handles, built-ins)
// disable caching for that spawn, with a history note. Keys are stored in
// the records, so the cache survives restarts.
//
// # Sandbox
//
// Sandboxed bodies (the default) are refused by the host module; an
// unsandboxed body is served and its history records each host function it
// used; a script's top level is served when Options.TopLevelHost is set
// (autonode run sets it) and refused otherwise. A sandboxed body cannot
// spawn an unsandboxed thread, and Options.ForbidUnsandboxed refuses every
// way to an unsandboxed thread: spawn(sandbox=False), a branch, fork, merge
// or mutate whose result has sandbox=False, and running such a record.
//
// # Limits
//
// Every limit ends in an error that wraps one of the sentinels
// ([ErrTTLExceeded], [ErrCancelled], [ErrInterrupted], [ErrStepLimit],
// [ErrMemoryLimit], [ErrSpawnLimit], [ErrLoadDenied], [ErrLoadTooLarge],
// [ErrUnsandboxedForbidden]): from ExecFile, Eval and Call (still a
// *starlark.EvalError for errors.As) and from [RunErr] for a thread.
//
//   - Time: a thread's TTL; Options.MaxSteps for each body and top level;
//     the context of ExecFile, Eval, Call and Spawn.
//   - Memory: metadata.max_memory_mb bounds a thread's accel arrays (charged
//     before they are allocated) and its Starlark values together. Values
//     are measured between instructions (checked every 8 steps; measured
//     once the process has allocated enough since the last measurement for
//     the thread to have passed its budget, as a watchdog samples every 2
//     ms and a thread close to its limit reads itself) by walking what the
//     thread's frames hold. A thread's values may also
//     take at most a sixth of the memory the process has left (RAM, the
//     cgroup's memory limit, RLIMIT_AS); that is the only bound of a
//     script's top level. When the process comes within 10% of its limit
//     anyway, every Starlark thread measures itself at once against that.
//     While a Runtime is open the Go memory limit (debug.SetMemoryLimit) is
//     80% of the process's limit, unless the program set one. A measure is
//     not a quota: one instruction allocates before it can be stopped
//     (go.starlark.net caps [x] * n at 2^30 elements), so a value that
//     doubles can pass its budget by a factor of two (four, rarely, on a
//     busy machine) before it is stopped.
//   - Spawns: a body may spawn Options.MaxChildren threads
//     (DefaultMaxChildren), and the bodies under one top-level thread
//     Options.MaxDescendants (DefaultMaxDescendants). A child is sandboxed
//     when its parent is, gets at most the TTL its parent has left, and is
//     cancelled when its parent ends, whatever the reason.
//   - Loads: load() reads only what Options.LoadDir, AllowLoad, LoadFS or
//     LoadFunc allow (nothing by default): regular files, at most
//     Options.MaxLoadBytes each, never through "..", an absolute path or a
//     symbolic link that leaves the allowed directories.
//
// When the context of ExecFile ends (autonode run cancels it on SIGINT and
// SIGTERM with a cause wrapping ErrInterrupted), every thread the script
// spawned is stopped: running ones at their next check (a Go kernel that
// ignores its context is abandoned after a grace period), queued ones at
// once; all are recorded cancelled.
package runtime
