// Package memlimit reports how much memory this process may use: the
// machine's RAM, lowered by the memory limit of the process's cgroup
// (cgroup v2 memory.max, cgroup v1 memory.limit_in_bytes, the smallest
// along the path to the root) and by RLIMIT_AS. Both the accel package
// (which refuses an array larger than the process can hold) and the thread
// engine (which stops Starlark code before the process runs out of memory)
// ask it, so that they agree on one number.
package memlimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Limit is the most memory the process may use, and what sets it.
type Limit struct {
	// Bytes is the limit; 0 means unknown (no RAM figure and no other
	// limit was found).
	Bytes int64
	// Source names what sets Bytes: "RAM", "cgroup memory.max",
	// "cgroup memory.limit_in_bytes" or "RLIMIT_AS".
	Source string
	// AddressSpace reports that the limit counts virtual memory
	// (RLIMIT_AS) rather than resident memory.
	AddressSpace bool

	dir string // the cgroup directory whose limit this is
	v2  bool   // dir is a cgroup v2 directory
}

// Left returns how many more bytes the process may use before it reaches
// the limit, counting what is in use now the way the limit does: the
// address space (VmSize) under RLIMIT_AS; the cgroup's usage less its
// inactive page cache (which the kernel reclaims before it fails an
// allocation) under a cgroup; the machine's available memory for RAM.
// ok is false when it cannot tell.
func (l Limit) Left() (left int64, ok bool) {
	if l.Bytes <= 0 {
		return 0, false
	}
	used, ok := l.used()
	if !ok {
		return 0, false
	}
	return max(l.Bytes-used, 0), true
}

// String describes the limit, e.g. "2.00GiB (the cgroup's memory.max)".
func (l Limit) String() string {
	if l.Bytes <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%s (%s)", FormatBytes(l.Bytes), l.Source)
}

// FormatBytes prints a byte count with a binary unit: "512B", "1.50MiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= unit
		if f < unit || u == "TiB" {
			return fmt.Sprintf("%.2f%s", f, u)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// refresh is how long Get reuses a reading: cgroup and rlimit settings
// rarely change while a process runs, and reading them costs system calls.
const refresh = time.Second

var (
	mu      sync.Mutex
	current atomic.Pointer[Limit] // the reading; nil once refresh has passed
	readNow = read                // tests replace it
)

// Get returns the current limit, read at most once a second. It is on
// the path of every array allocation, so a fresh reading costs one atomic
// load: a timer, not a clock read per call, makes it stale.
func Get() Limit {
	if l := current.Load(); l != nil {
		return *l
	}
	mu.Lock()
	defer mu.Unlock()
	if l := current.Load(); l != nil {
		return *l // another caller read it meanwhile
	}
	l := readNow()
	current.Store(&l)
	time.AfterFunc(refresh, func() { current.Store(nil) })
	return l
}

// lowest combines candidate limits: the smallest positive one wins.
func lowest(cands ...Limit) Limit {
	var best Limit
	for _, c := range cands {
		if c.Bytes > 0 && (best.Bytes == 0 || c.Bytes < best.Bytes) {
			best = c
		}
	}
	return best
}
