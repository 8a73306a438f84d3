// Package builtins is AutoNode's Starlark surface: spawn, branch, merge and
// the other thread builtins, and the accel module. It converts between
// Starlark values and registry/accel values and declares the small engine
// interface it needs, so that it does not import runtime.
package builtins
