// Package builtins is AutoNode's Starlark surface: spawn, branch, merge and
// the other thread builtins, and the accel module. It converts between
// Starlark values and registry/accel values and declares the small engine
// interface it needs, so that it does not import runtime.
//
// # The surface
//
// [Predeclared] binds every builtin to an [Engine] (package runtime
// implements it). In pseudo-Python:
//
//	token() -> str
//	spawn(id=None, stage="BASE", device="cpu", token=None, sandbox=True,
//	      caching=True, priority=1, ttl=10.0, metadata=None, name=None,
//	      run=None, args=(), kwargs=None, dry_run=False, wait=True,
//	      retries=0, retry_delay=1.0, backoff=2.0, max_delay=60.0,
//	      retry_on=None, after=None) -> Thread or Handle
//	run(id, run=None, args=(), kwargs=None, token=None, wait=True,
//	    retries=None, ...) -> Thread or Handle
//	spawn_batch(specs, workers=None) -> list of Thread, Handle or struct(ok=False, error, spec_index, id)
//	wait(handles, timeout=None) -> Thread or list
//	cancel(id, token=None)
//	get(id) -> Thread or None
//	threads(stage=None, device=None, status=None, parent=None) -> list of Thread
//	query(path) -> value
//	branch(source, new_id=None, overrides=None, token=None) -> Thread
//	fork(source, new_ids, overrides=None, token=None) -> list of Thread
//	merge(left, right, new_id=None, strategy="prefer-left", conflict_keys=None,
//	      resolve=None, inplace=None, token=None) -> Thread
//	reparent(child, new_parent, token=None) -> Thread
//	rename(id, name, token=None) -> Thread
//	mutate(id, updates, safe_fields=None, token=None) -> Thread
//	delete(*ids, token=None) -> list of Thread
//	restore(id, token=None) -> Thread
//	summarize() -> dict
//	lineage(id) -> struct(ancestors, descendants)
//	info(id)
//	current() -> Thread
//	log(msg)
//
// and the modules accel (arrays and kernels, see [Array]), host
// (read_file, write_file, env, exec; every call is checked with
// [Engine.HostAccess]), json, math and time. [Docs] documents each name.
//
// # Conventions
//
// Thread ids are numbers (1 and 1.0 are the same thread); a [Thread] or
// handle value stands for its id wherever one is expected. token=None means
// the session token ([Engine.Token]). Every error names the builtin and the
// parameter: `spawn: stage: got "FAST", want one of CRITICAL, CORE, BASE`,
// `branch: source: got "x" (string), want a thread id (number)`; registry
// errors are wrapped with the builtin's name. No input makes a builtin
// panic. A sandboxed thread body may compute and read its own record,
// nothing else (DESIGN §6): registry changes and reads of other records
// from it are refused.
//
// Values that cross goroutines are frozen: spawn freezes the body and its
// arguments, Thread values are immutable snapshots, and accel arrays are
// never written except by accel.axpy and accel.triad, which refuse frozen
// arrays.
//
// [FromStarlark] and [ToStarlark] convert between Starlark values and
// JSON-compatible Go values (thread results, metadata, query results).
package builtins
