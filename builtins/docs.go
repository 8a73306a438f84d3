package builtins

import "strings"

// Docs returns the documentation of every builtin, module and module
// member, keyed by the name a script uses ("spawn", "accel", "accel.zeros",
// "host.exec", "array.sum", "Thread", ...). The first line of each entry is
// a one-line summary; the rest gives the signature in pseudo-Python and the
// details. The REPL's :help and `autonode doc` print them.
func Docs() map[string]string {
	out := make(map[string]string, len(docs))
	for k, v := range docs {
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// docs holds the text of Docs. Every builtin and member must have an entry
// (a test checks it).
var docs = map[string]string{
	"token": `Return a new random token (32 hex characters).

token() -> str

The token comes from crypto/rand (128 bits), in the seed's format. Pass it
as token= to spawn to protect a thread: changing, running or deleting the
thread then needs it. The registry stores only a hash of it.`,

	"spawn": `Create a thread, persist it and run it.

spawn(id=None, stage="BASE", device="cpu", token=None, sandbox=True,
      caching=True, priority=1, ttl=10.0, metadata=None, name=None,
      run=None, args=(), kwargs=None, dry_run=False, wait=True,
      retries=0, retry_delay=1.0, backoff=2.0, max_delay=60.0,
      retry_on=None, after=None) -> Thread

id is a number (1 and 1.0 are the same thread); None picks the next free
id (always a whole number: ids like 2.5 never collide with automatic
ones). When thread id exists, spawn runs it again: a new attempt with the
caller's token (which must open it); the parameters you pass replace its
fields, the history records what changed, the others stay. A script with
explicit ids can therefore run again on the same registry. stage is
CRITICAL, CORE or BASE (scheduling order: stage, then priority, higher
first, then submission order). device is "cpu" or "gpu" (or a GPU
backend's name); CRITICAL threads and device="gpu" use a GPU when one
exists and otherwise run on the CPU with a note in the history.
token=None uses the session token. priority is a non-negative int; ttl a
positive number of seconds, for each attempt: a body still running at its
TTL is stopped and recorded as timed_out. metadata is a dict;
metadata["max_memory_mb"] bounds what the thread's accel arrays and
Starlark values may take together (default 500; at least one byte): a
body over it fails with "memory limit exceeded", and a thread that sets it
waits (up to 30 s by default) until that much memory is free. name
defaults to "Thread-<int(id)>-<stage in lower case>".

run is a function executed as the thread's body with args and kwargs (they
are frozen first); inside it current() and log() work, and its return value
(JSON-compatible, or an accel array, stored as a summary) becomes the
thread's result. Without run the thread does the default work, a 512x512
float64 matrix product checked against its memory budget. sandbox=True
(the default) lets the body compute and read its own record, nothing
else: the host module, registry changes and reads of other threads are
refused. A body may spawn threads, within bounds (32 per body and 256
under one top-level thread unless the embedding application says
otherwise): they are sandboxed when it is, get at most the TTL it has left,
and are cancelled when it ends. With caching=True, a
thread whose body, arguments, device and script are unchanged reuses the
stored result (status "cached"); a failure is never cached.

retries: a failed, timed-out or crashed attempt is run again up to
retries times, the n-th retry after retry_delay * backoff**(n-1) seconds
(at most max_delay, with +-10% jitter); retry_on(error_text) -> bool may
veto a retry; a cancelled attempt is never retried. current().attempt is
1 for the first attempt, 2 for the first retry, and t.attempts lists them.
after is a list of threads (Thread, Handle or id) that must succeed (or be
served from the cache) first: until then the thread is "waiting" and holds
no worker slot; if one fails for good it ends "skipped", naming it. after
is a run dependency, not lineage.

dry_run=True validates and returns without running or persisting.
wait=True returns the finished Thread; wait=False returns a Handle at once
(see wait()). A failing body does not raise: the Thread has status
"failed" and its error.`,

	"run": `Run an existing thread again: a new attempt.

run(id, run=None, args=(), kwargs=None, token=None, wait=True,
    retries=None, retry_delay=None, backoff=None, max_delay=None,
    retry_on=None, after=None) -> Thread

The thread runs with its own record's fields (stage, device, priority,
ttl, metadata, sandbox, caching): a pending branch, fork or merge result,
or a thread that already ran. run is its body (None: the body this
process last ran it with, else the default work); token must open it.
The history is appended, never reset; the new attempt joins t.attempts and
status, result and error become its. retries and the retry timing, and
after, default to the thread's own (None). A thread that is pending,
waiting or running cannot be run again until it ends; cancel it first.
caching applies as for spawn: an unchanged body reuses the stored result.`,

	"spawn_batch": `Spawn many threads at once, concurrently.

spawn_batch(specs, workers=None) -> list

specs is a list of dicts with spawn's parameters as keys (retries,
after, ... included). The threads run concurrently, at most workers at a
time (None: the engine's default). The result has one entry per spec, in
order: a Thread (a Handle when the spec says "wait": False), or, for a
spec that was refused, a struct(ok=False, error="...", spec_index=i,
id=...). One bad spec never stops the others and spawn_batch never raises
for one; test entries with type(r) == "Thread".`,

	"wait": `Wait for threads started with spawn(wait=False).

wait(handles, timeout=None) -> Thread or list

handles is one Handle or a list of them (Thread values are returned as
they are). Returns the final Thread, or a list of them in the same order.
timeout (seconds) bounds the whole wait; when it passes, wait fails with
an error naming the thread. A Handle also has .wait(timeout=None).`,

	"cancel": `Stop a pending, waiting or running thread, in any process.

cancel(id, token=None)

A thread of this process stops at once. For one that another process
runs, the request is recorded in the thread's record: a pending or
waiting thread is cancelled at once, a running one is stopped by its
process within a second, and a process that restarts honours it. The
history names who asked. token=None uses the session token. A thread that
has ended is an error (autonode cancel ID does the same from a shell).`,

	"get": `Return a thread by id, or None when there is none.

get(id) -> Thread or None

Reads need no token. id may also be a Thread or Handle (its id).`,

	"threads": `List threads, optionally filtered.

threads(stage=None, device=None, status=None, parent=None) -> list of Thread

Every given filter must match: stage (CRITICAL, CORE, BASE), device,
status (pending, waiting, running, succeeded, failed, timed_out,
cancelled, crashed, skipped, cached, dry_run, or unknown for seed threads;
a thread whose process is gone counts as crashed) and parent (the direct
children of that id, merges included). The list is in id order.`,

	"query": `Evaluate a gjson path over the registry.

query(path) -> value

The registry is one JSON object keyed by thread id as Python prints a float
("1.0", "2.5"), without token hashes. A dot inside an id must be escaped:
query("1\\.0.name"). Query across threads with @values:
query('@values.#(stage=="CORE")#.id'). Returns the matched value converted
to Starlark (None when nothing matches); a malformed path is an error.`,

	"branch": `Copy a thread into a new one derived from it.

branch(source, new_id=None, overrides=None, token=None) -> Thread

The branch copies stage, device, sandbox, caching, priority, ttl, metadata
and history; overrides (a dict) replaces fields, except id (ignored) and
metadata (merged key by key). Its parent is the source, and the source is
appended to its lineage. new_id=None picks the next free id. The token must
open the source and protects the branch.`,

	"fork": `Branch a thread into several new ones.

fork(source, new_ids, overrides=None, token=None) -> list of Thread

new_ids is a list of ids; overrides, when given, is a list with one dict
(or None) per new id. All branches are created in one transaction: if one
fails, none is.`,

	"merge": `Combine two threads into one.

merge(left, right, new_id=None, strategy="prefer-left", conflict_keys=None,
      resolve=None, inplace=None, token=None) -> Thread

Over the union of both records' keys (except id): a key on one side only is
taken; on both sides, dicts merge key by key with the preferred side
winning, lists concatenate without duplicates (preferred side first), and
scalars take the preferred side. strategy is "prefer-left",
"prefer-right" or "manual" (or the seed's "prefer-left-inplace-left" and
"prefer-right-inplace-right"). conflict_keys limits which keys count as
conflicts; the others take the left value when present.

"manual" never guesses: every key whose values differ needs a resolution,
from resolve, a dict {key: value} or a function (key, left, right) ->
value called for each such key on the calling thread; an unresolved
conflict fails, listing every key with both values.

The result is a new thread (new_id, or the next free id) unless inplace is
"left" or "right", which writes it over that side. token opens both
sides; give a list of two, [left_token, right_token], when they differ.`,

	"reparent": `Give a thread a new parent.

reparent(child, new_parent, token=None) -> Thread

The new parent is appended to the lineage. A change that would make a
thread its own ancestor is refused.`,

	"rename": `Rename a thread.

rename(id, name, token=None) -> Thread`,

	"mutate": `Change fields of a thread.

mutate(id, updates, safe_fields=None, token=None, if_version=None) -> Thread

updates is a dict of field: value; metadata is merged key by key; id
cannot change; history, parent, lineage and AutoNode's run state (the
"autonode" key) cannot be mutated; any other name is your own field. With
safe_fields (a list of names), other fields are left unchanged and a
warning naming them is printed. With if_version=N, the change applies only
if the thread is still at version N (t.version when you read it), else it
fails with "changed since it was read".`,

	"update": `Change a thread atomically from its current state.

update(id, fn, token=None) -> Thread

fn(thread) returns a dict of changes (as mutate's updates) or None. It runs
inside the registry transaction, so nothing changes the thread between the
read fn is given and the write of what it returns: four processes adding 1
to a counter 300 times each end at exactly 1200. fn may only compute: the
registry and engine builtins are refused inside it.`,

	"delete": `Delete threads, keeping them in the archive.

delete(*ids, token=None) -> list

Moves every thread to the archive (deleted_threads.json) in one commit, so
a thread is never in neither file, and returns their final records. If one
id fails (missing, wrong token), none is deleted. Bring one back with
restore().`,

	"restore": `Bring a deleted thread back from the archive.

restore(id, token=None) -> Thread`,

	"summarize": `Describe the registry.

summarize() -> dict

Keys: total, archived, by_stage, by_device, by_status and lineage (roots,
orphans, deepest_chain, most_children).`,

	"lineage": `Return a thread's ancestors and descendants.

lineage(id) -> struct(ancestors=[...], descendants=[...])

Both are lists of ids, nearest first; parents include merge sources.`,

	"info": `Print every field and the history of a thread.

info(id)

Prints like the seed's print_info (and autonode show), through print. A
deleted thread is shown from the archive.`,

	"current": `Return the thread whose body is running.

current() -> Thread

Only inside a function run by spawn(run=...); an error at top level.`,

	"log": `Append a message to the running thread's history.

log(msg)

Only inside a thread body; at top level use print. The message also goes
to the thread's log (with what the body prints), which autonode logs ID
shows and follows.`,

	"log_metric": `Record a point of one of the running thread's metrics.

log_metric(name, value, step=None) -> int

name is a metric's name ("loss"), value a number, step an int of at
least 0; None takes the metric's next step (0 first). Returns the step.
Metrics are kept beside the registry as one time series per thread and
name (at most 1,000 names and 100,000 points a thread): autonode metrics
ID prints them, autonode diff A B compares them, the web view plots them.
Only inside a thread body.`,

	"struct": `Make a struct: an immutable value with named fields.

struct(**kwargs) -> struct

struct(name="a", size=3).size is 3. Structs compare equal when their
fields are, and json.encode writes one as an object. The same struct as
Bazel's (go.starlark.net's starlarkstruct).`,

	"Thread": `A read-only snapshot of a thread record.

Attributes: id, name, stage, device, priority, ttl, sandbox, caching,
metadata, history, parent, lineage, status, result, error, duration_ms,
started_at, finished_at, device_used, cached, version (bumped by every
committed change; see mutate's if_version), attempt (the latest attempt's
number, 0 before the first), attempts (a list of dicts: attempt, status,
error, started_at, finished_at, duration_ms, device_used) and after.
status is one of pending, waiting, running, succeeded, failed, timed_out,
cancelled, crashed, skipped, cached and dry_run; a thread whose process
is gone reads as crashed. History lines copied by branch, fork or merge
say "(inherited from <id>)". It prints as
<Thread 1.0 'name' CORE cpu succeeded>, never shows the token, hashes by
id (usable as a dict key) and compares equal to a snapshot with the same
id and content. Call get(t.id) for a fresh snapshot.`,

	"Handle": `A thread started with spawn(wait=False).

Attributes: id, done (bool), and the method wait(timeout=None) -> Thread.`,

	"host": `Files, environment variables and commands of the host machine.

Sandboxed thread bodies (the default) are refused every host function;
unsandboxed bodies are served and their history records it; a script's
top level is served under autonode run and follows the embedder's policy
otherwise. Starlark resolves names when it compiles, so host is always
defined: the check happens at each call.`,

	"host.read_file":  "Read a file as a string.\n\nhost.read_file(path) -> str\n\nAt most 64 MiB.",
	"host.write_file": "Write a string (or bytes) to a file, replacing it.\n\nhost.write_file(path, data)",
	"host.env":        "Read an environment variable.\n\nhost.env(name, default=None) -> str or default",
	"host.exec":       "Run a command and collect its output.\n\nhost.exec(argv, timeout=10.0) -> struct(code, stdout, stderr)\n\nargv is the program and its arguments (no shell). A non-zero exit is reported in code, not raised; a command still running after timeout seconds (or at the thread's TTL) is killed and raises an error. stdout and stderr keep at most 16 MiB each.",

	"json": "JSON encoding and decoding (go.starlark.net/lib/json).\n\njson.encode(x) -> str, json.decode(s[, default]) -> value, json.encode_indent(x, prefix=\"\", indent=\"\\t\") -> str, json.indent(s, prefix=\"\", indent=\"\\t\") -> str. Arrays encode as nested lists.",
	"math": "Mathematical functions and constants (go.starlark.net/lib/math).\n\nceil, floor, round, sqrt, exp, log, pow, sin, cos, tan, ..., and pi, e, inf.",
	"time": "Time and duration values (go.starlark.net/lib/time).\n\ntime.now(), time.parse_time(s), time.parse_duration(s), time.from_timestamp(sec), time.second, ...",
}
