// Package registry is AutoNode's durable thread store: the thread record,
// the Store interface with its JSON-file implementation (thread_registry.json
// and the deleted_threads.json archive, in the Python seed's shape), lineage
// operations (branch, fork, merge, reparent, rename, mutate, delete, restore),
// token checks, queries and summaries, and what threads produce beside
// their records (Outputs: stored results as .npy files, bounded logs,
// metric time series; see outputs.go). It knows nothing of Starlark or
// devices.
package registry
