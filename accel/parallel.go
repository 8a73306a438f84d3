package accel

import (
	"context"
	"math"
	"runtime"
	"sync"
)

// Element counts that steer the host loops written in this package (the
// contiguous fast paths live in internal/kern, which parallelises itself).
const (
	// parallelMin is the smallest loop split across goroutines.
	parallelMin = 1 << 15
	// chunkElems bounds the work between two cancellation checks.
	chunkElems = 1 << 20
)

// forChunks calls fn over [0, n) in consecutive pieces [lo, hi), spread over
// up to GOMAXPROCS goroutines when n is large, checking ctx between pieces.
// grain is the cost of one index in elements, so that loops whose index
// stands for a row of work split sooner. fn must be safe to run concurrently
// on disjoint ranges. Small loops run inline with no goroutine.
func forChunks(ctx context.Context, n, grain int, fn func(lo, hi int)) error {
	if grain < 1 {
		grain = 1
	}
	if n <= 0 {
		return ctx.Err()
	}
	total := n * grain
	if total/grain != n {
		total = math.MaxInt
	}
	chunk := max(1, chunkElems/grain)
	workers := runtime.GOMAXPROCS(0)
	if total < parallelMin || workers == 1 {
		for lo := 0; lo < n; lo += chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			fn(lo, min(n, lo+chunk))
		}
		return nil
	}
	// Split into at least one piece per worker, each at most chunk long.
	per := (n + workers - 1) / workers
	chunk = min(chunk, per)
	pieces := (n + chunk - 1) / chunk
	var (
		next     int
		mu       sync.Mutex
		wg       sync.WaitGroup
		panicked any // the first panic of a worker, raised again here
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= pieces || ctx.Err() != nil {
			return 0, false
		}
		p := next
		next++
		return p, true
	}
	for range min(workers, pieces) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					mu.Lock()
					if panicked == nil {
						panicked = r
					}
					next = pieces // stop the others
					mu.Unlock()
				}
			}()
			for {
				p, ok := take()
				if !ok {
					return
				}
				lo := p * chunk
				fn(lo, min(n, lo+chunk))
			}
		}()
	}
	wg.Wait()
	if panicked != nil {
		// A bug in fn: raise it in the caller's goroutine, where the
		// builtins turn it into an error, rather than crash the process.
		panic(panicked)
	}
	return ctx.Err()
}
