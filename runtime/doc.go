// Package runtime is AutoNode's thread engine (validation, tokens,
// scheduling, execution on devices, TTL, caching, sandbox) and the embedding
// API for host Go programs.
package runtime
