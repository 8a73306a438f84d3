package kern

import "testing"

// TestParallelForPanicReachesCaller: a panic in a pool worker is raised
// again in the goroutine that called parallelFor.
func TestParallelForPanicReachesCaller(t *testing.T) {
	for _, at := range []int{0, 7} { // in the caller's own chunk, and in a worker's
		func() {
			defer func() {
				if r := recover(); r != "kernel bug" {
					t.Fatalf("chunk %d: recovered %v, want the worker's panic", at, r)
				}
			}()
			parallelFor(4, 64, 1, func(w, lo, hi int) {
				if lo == at {
					panic("kernel bug")
				}
			})
			t.Fatalf("chunk %d: parallelFor returned normally", at)
		}()
	}
	// The pool still works afterwards.
	sum := make([]int, 64)
	parallelFor(4, 64, 1, func(w, lo, hi int) {
		for i := lo; i < hi; i++ {
			sum[i] = i
		}
	})
	for i, v := range sum {
		if v != i {
			t.Fatalf("after a panic, chunk %d was not run", i)
		}
	}
}
