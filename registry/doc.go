// Package registry is AutoNode's durable thread store: the thread record,
// the Store interface with its JSON-file implementation (thread_registry.json
// and the deleted_threads.json archive, in the Python seed's shape), lineage
// operations (branch, fork, merge, reparent, rename, mutate, delete, restore),
// token checks, queries and summaries. It knows nothing of Starlark or devices.
package registry
