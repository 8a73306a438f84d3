// Package heapfloor keeps the Go collector's heap goal at or above a floor.
//
// The collector aims to start its next cycle when the heap reaches the
// live heap times 1+GOGC/100 (and at least 4 MB times GOGC/100). A program
// whose live heap is small but which allocates fast, such as a script that
// makes small arrays in a loop, therefore collects hundreds of times a
// second; every cycle stops the world twice, and on a machine whose CPUs
// are shared with others a stop can wait milliseconds for a descheduled
// thread. Keep raises GOGC while the live heap is small, so that the goal
// stays at the floor, and gives the program's own GOGC back as soon as the
// live heap makes the goal reach the floor by itself: above the floor,
// memory grows as GOGC says. A memory limit (GOMEMLIMIT,
// debug.SetMemoryLimit) still bounds the heap below the floor.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// goMinHeap is the heap size the collector's minimum goal scales from
// (4 MB times GOGC/100).
const goMinHeap = 4 << 20

// PercentFor returns the GOGC that makes the goal of a collector with live
// bytes of live heap at least floor, and never less than base.
func PercentFor(live, floor uint64, base int) int {
	var p uint64
	switch {
	case live < goMinHeap:
		// The goal is the larger of 4 MB times p/100 and live times
		// 1+p/100: the first reaches the floor at this p.
		p = (100*floor + goMinHeap - 1) / goMinHeap
	case live < floor:
		p = (100*(floor-live) + live - 1) / live
	}
	return max(base, int(p))
}

// keeper adjusts GOGC after each collection until stopped.
type keeper struct {
	floor   uint64
	base    int
	stopped atomic.Bool
	mu      sync.Mutex // orders SetGCPercent calls with stop
	percent int        // what it set last
	samples []metrics.Sample
}

// sentinel is dropped at once; the cleanup attached to it runs after the
// collection that finds it unreachable. Its pointer keeps it out of the
// tiny allocator, whose blocks are freed together.
type sentinel struct {
	_ *int
	_ [2]uint64
}

// Keep keeps the heap goal at least floor bytes, with gcPercent the GOGC
// (a positive percentage) where the live heap alone makes the goal larger.
// It sets GOGC at once and again after each collection; the program should
// not call debug.SetGCPercent itself until it calls stop, which sets
// gcPercent back and ends the adjustments.
func Keep(floor uint64, gcPercent int) (stop func()) {
	k := &keeper{floor: floor, base: gcPercent, samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	k.adjust()
	k.arm()
	var once sync.Once
	return func() {
		once.Do(func() {
			k.mu.Lock()
			defer k.mu.Unlock()
			k.stopped.Store(true)
			debug.SetGCPercent(k.base)
		})
	}
}

// arm attaches the next adjustment to a collection.
func (k *keeper) arm() {
	runtime.AddCleanup(new(sentinel), func(k *keeper) {
		if k.stopped.Load() {
			return
		}
		k.adjust()
		k.arm()
	}, k)
}

// adjust sets GOGC for the live heap the last collection found.
func (k *keeper) adjust() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped.Load() {
		return
	}
	metrics.Read(k.samples)
	var live uint64
	if v := k.samples[0].Value; v.Kind() == metrics.KindUint64 {
		live = v.Uint64()
	}
	if p := PercentFor(live, k.floor, k.base); p != k.percent {
		k.percent = p
		debug.SetGCPercent(p)
	}
}
