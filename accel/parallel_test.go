package accel

import (
	"context"
	"testing"
)

// TestForChunksPanicReachesCaller: a panic in a worker goroutine (a bug in
// a kernel) is raised in the caller's goroutine, where the builtins
// recover it, instead of crashing the process.
func TestForChunksPanicReachesCaller(t *testing.T) {
	defer func() {
		if r := recover(); r != "kernel bug" {
			t.Fatalf("recovered %v, want the worker's panic", r)
		}
	}()
	forChunks(context.Background(), 1<<22, 1, func(lo, hi int) {
		if lo > 0 {
			panic("kernel bug")
		}
	})
	t.Fatal("forChunks returned normally")
}
