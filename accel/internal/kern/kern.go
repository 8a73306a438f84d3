// Package kern holds AutoNode's low-level CPU kernels: cache-blocked,
// packed matrix multiplication (GemmF64, GemmF32), streaming element-wise
// kernels (add, sub, mul, div, scalar forms, axpy, triad) and reductions
// (sum, dot) for float64 and float32.
//
// On amd64 the kernels use AVX-512 or AVX2+FMA assembly, chosen at run time
// with golang.org/x/sys/cpu; every other architecture (and the purego build
// tag) uses a portable, cache-blocked pure-Go path. Large calls are split
// across runtime.GOMAXPROCS cores through a persistent worker pool; small
// calls run inline in the caller's goroutine without allocating.
//
// Preconditions: the element-wise kernels require len(dst) == len(x) ==
// len(y) (the caller validates; dst may alias x or y). They never read or
// write past len(dst) and do not panic on valid input.
package kern

import "sync/atomic"

// Implementation levels, from slowest to fastest.
const (
	levelGeneric = iota
	levelAVX2
	levelAVX512
)

var levelNames = [...]string{"generic", "avx2", "avx512"}

// maxLevel is the best level this CPU and build support; set by the
// architecture-specific init.
var maxLevel = levelGeneric

// curLevel is the level in use (maxLevel unless forced lower).
var curLevel atomic.Int32

func init() {
	archInit()
	setupTables()
	setupGemm()
	curLevel.Store(int32(maxLevel))
}

// Impl reports the kernel path currently in use: "avx512", "avx2" or
// "generic". It is chosen at run time from the CPU's features, and is
// "generic" while SetGeneric(true) is in effect.
func Impl() string {
	return levelNames[curLevel.Load()]
}

// SetGeneric forces the pure-Go kernels when on is true and restores the
// fastest supported path when on is false. It returns the previous setting.
// It is safe to call between operations (it is meant for tests and
// benchmarks); operations already running keep the path they started with.
func SetGeneric(on bool) (prev bool) {
	l := int32(maxLevel)
	if on {
		l = levelGeneric
	}
	old := curLevel.Swap(l)
	return old == levelGeneric && maxLevel != levelGeneric
}

// setLevel forces a specific level (clamped to maxLevel) and returns the
// previous one. Used by tests to exercise the AVX2 path on AVX-512 machines.
func setLevel(l int) int {
	if l > maxLevel {
		l = maxLevel
	}
	if l < levelGeneric {
		l = levelGeneric
	}
	return int(curLevel.Swap(int32(l)))
}

func level() int { return int(curLevel.Load()) }
