package runtime

import (
	"fmt"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/internal/memlimit"
)

// Memory bounds for Starlark values (DESIGN §6). go.starlark.net has no
// allocation limit, so the runtime measures instead:
//
//   - A process-wide watchdog samples runtime/metrics every watchInterval
//     while Starlark code runs: the bytes allocated so far, and the memory
//     the process uses against what it may use (memlimit: RAM, cgroup,
//     RLIMIT_AS). It also sets debug.SetMemoryLimit to softLimitShare of
//     that, unless the program already set one (GOMEMLIMIT), so that the
//     garbage collector works harder before the limit rather than after.
//   - Each thread body has a memory account. Between two instructions
//     (the guard), once the process has allocated more since the last
//     measurement than the body could have added without passing its
//     budget, the body measures the values its frames hold (threadValues)
//     and reserves them in its accel budget, next to its arrays. A body
//     that does not fit is stopped with ErrMemoryLimit.
//   - When the process comes within emergencyShare of its limit anyway
//     (values the frames do not show, top-level code, other memory), every
//     Starlark thread measures itself at its next check and the one
//     holding the most is stopped with ErrMemoryLimit, one at a time.

// Watchdog parameters.
const (
	watchInterval  = 2 * time.Millisecond
	softLimitShare = 0.80
	emergencyShare = 0.90
	// roundWait is how long an emergency round waits for the threads to
	// measure themselves before it picks the largest of those that did.
	roundWait = 50 * time.Millisecond
	// cooldown separates two emergency stops, so that the memory freed by
	// the first is seen before a second thread is stopped.
	cooldown = 200 * time.Millisecond
	// minSlack is the least allocation between two measurements of a body.
	minSlack = 1 << 20
)

// memAccount is what the memory guard knows about one Starlark thread.
// The fields without atomics are used only on the thread's goroutine.
type memAccount struct {
	who     string        // "thread 3.0", "the top level"
	budget  *accel.Budget // the thread body's budget; nil at top level
	limitTx string        // max_memory_mb as given, for messages
	globals bool          // the thread owns its module's globals (top level)
	stopFn  func(error)   // stops the thread; safe from any goroutine

	reserved   int64  // bytes of values reserved in budget
	lastAllocs uint64 // process allocations at the last measurement
	slack      uint64 // allocation that triggers the next measurement
	epoch      uint64 // the emergency round last answered

	size     atomic.Int64  // values held at the last measurement
	answered atomic.Uint64 // the emergency round of that measurement
}

// newMemAccount makes the account of a thread; budget nil means no budget
// of its own (it only takes part in emergencies).
func newMemAccount(who string, budget *accel.Budget, limitTx string, globals bool, stop func(error)) *memAccount {
	m := &memAccount{who: who, budget: budget, limitTx: limitTx, globals: globals, stopFn: stop}
	m.lastAllocs = watch.allocs.Load()
	m.epoch = watch.epoch.Load()
	m.slack = math.MaxUint64
	if lim := budget.Limit(); lim > 0 {
		m.slack = uint64(max(lim-budget.Used(), minSlack))
	}
	return m
}

// check runs on the thread's goroutine between two instructions; it
// returns ErrMemoryLimit when the thread holds more than its budget.
func (m *memAccount) check(th *starlark.Thread) error {
	allocs := watch.allocs.Load()
	e := watch.epoch.Load()
	if e == m.epoch && allocs-m.lastAllocs < m.slack {
		return nil
	}
	return m.measure(th, allocs, e)
}

func (m *memAccount) measure(th *starlark.Thread, allocs, epoch uint64) error {
	limit := m.budget.Limit()
	arrays := max(m.budget.Used()-m.reserved, 0)
	walkLimit := int64(0)
	if limit > 0 {
		walkLimit = max(limit-arrays, 0)
	}
	size, over := threadValues(th, m.globals, walkLimit)
	m.size.Store(size)
	m.answered.Store(epoch)
	m.epoch, m.lastAllocs = epoch, allocs
	if limit == 0 {
		return nil
	}
	if !over {
		if d := size - m.reserved; d > 0 {
			over = m.budget.Reserve(d) != nil
		} else if d < 0 {
			m.budget.Release(-d)
		}
	}
	if over {
		return &memoryError{msg: fmt.Sprintf("%s holds at least %s of Starlark values and %s of arrays, more than its max_memory_mb of %s",
			m.who, memlimit.FormatBytes(size), memlimit.FormatBytes(arrays), m.limitTx)}
	}
	m.reserved = size
	headroom := limit - size - arrays
	m.slack = uint64(max(headroom, size/2, minSlack))
	return nil
}

// release gives back the budget the values were holding.
func (m *memAccount) release() {
	if m.reserved > 0 {
		m.budget.Release(m.reserved)
		m.reserved = 0
	}
}

// watch is the process's memory watchdog; the heap is shared by every
// Runtime in the process.
var watch = &heapWatch{accounts: map[*memAccount]struct{}{}, prevLimit: -1}

// heapWatch samples the process's memory while Starlark threads run.
type heapWatch struct {
	allocs atomic.Uint64 // /gc/heap/allocs:bytes at the last sample
	epoch  atomic.Uint64 // bumped to make every thread measure itself

	mu        sync.Mutex
	accounts  map[*memAccount]struct{}
	users     int           // open Runtimes
	wake      chan struct{} // the first account arrived
	quit      chan struct{}
	done      chan struct{}
	prevLimit int64 // the memory limit before ours; -1 if we set none

	// Emergency state, used by the loop goroutine only.
	roundStart time.Time
	lastStop   time.Time
	samples    []metrics.Sample
}

// acquire is called by New: the first Runtime starts the watchdog.
func (w *heapWatch) acquire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.users++
	if w.users > 1 {
		return
	}
	w.wake, w.quit, w.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	w.samples = []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	w.sample()
	w.setSoftLimit()
	go w.loop(w.wake, w.quit, w.done)
}

// release is called by Close: the last Runtime stops the watchdog and
// restores the memory limit it found.
func (w *heapWatch) release() {
	w.mu.Lock()
	w.users--
	if w.users > 0 {
		w.mu.Unlock()
		return
	}
	quit, done := w.quit, w.done
	if w.prevLimit >= 0 {
		debug.SetMemoryLimit(w.prevLimit)
		w.prevLimit = -1
	}
	w.mu.Unlock()
	close(quit)
	<-done
}

// setSoftLimit sets the Go memory limit below what the process may use,
// unless one is set already; w.mu is held.
func (w *heapWatch) setSoftLimit() {
	lim := memlimit.Get()
	if lim.Bytes <= 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		return
	}
	soft := int64(float64(lim.Bytes) * softLimitShare)
	if lim.AddressSpace {
		// RLIMIT_AS counts address space the Go runtime reserves but
		// does not use; the Go limit counts only what it uses.
		goUsed := w.goUsed()
		if vm := memlimit.AddressSpaceUsed(); vm > goUsed {
			soft -= vm - goUsed
		}
	}
	if soft <= 0 {
		return
	}
	w.prevLimit = debug.SetMemoryLimit(soft)
}

// register adds a thread's account; unregister removes it.
func (w *heapWatch) register(m *memAccount) {
	w.mu.Lock()
	w.accounts[m] = struct{}{}
	first := len(w.accounts) == 1
	wake := w.wake
	w.mu.Unlock()
	if first && wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

func (w *heapWatch) unregister(m *memAccount) {
	w.mu.Lock()
	delete(w.accounts, m)
	w.mu.Unlock()
}

func (w *heapWatch) idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.accounts) == 0
}

func (w *heapWatch) loop(wake, quit, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		if w.idle() {
			select {
			case <-quit:
				return
			case <-wake:
			}
		}
		select {
		case <-quit:
			return
		case <-t.C:
		}
		w.sample()
		w.checkEmergency()
	}
}

// sample reads the metrics and publishes the allocation count.
func (w *heapWatch) sample() {
	metrics.Read(w.samples)
	if v := w.samples[0].Value; v.Kind() == metrics.KindUint64 {
		w.allocs.Store(v.Uint64())
	}
}

// goUsed is the memory the Go runtime has mapped and not released, from
// the last sample.
func (w *heapWatch) goUsed() int64 {
	total, released := w.samples[1].Value, w.samples[2].Value
	if total.Kind() != metrics.KindUint64 || released.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(total.Uint64() - released.Uint64())
}

// used returns the process's memory use as lim counts it.
func (w *heapWatch) used(lim memlimit.Limit) int64 {
	if lim.AddressSpace {
		return memlimit.AddressSpaceUsed()
	}
	return w.goUsed()
}

// checkEmergency stops the Starlark thread holding the most values when
// the process is close to the memory it may use.
func (w *heapWatch) checkEmergency() {
	lim := memlimit.Get()
	if lim.Bytes <= 0 || time.Since(w.lastStop) < cooldown {
		return
	}
	threshold := int64(float64(lim.Bytes) * emergencyShare)
	if w.used(lim) <= threshold {
		w.roundStart = time.Time{}
		return
	}
	if w.roundStart.IsZero() {
		// Garbage first: a collection may be all it takes.
		debug.FreeOSMemory()
		w.sample()
		if w.used(lim) <= threshold {
			return
		}
		w.roundStart = time.Now()
		w.epoch.Add(1)
		return
	}
	epoch := w.epoch.Load()
	var biggest *memAccount
	all := true
	w.mu.Lock()
	for m := range w.accounts {
		if m.answered.Load() != epoch {
			all = false
			continue
		}
		if biggest == nil || m.size.Load() > biggest.size.Load() {
			biggest = m
		}
	}
	w.mu.Unlock()
	if !all && time.Since(w.roundStart) < roundWait {
		return
	}
	w.roundStart = time.Time{}
	if biggest == nil {
		return
	}
	w.lastStop = time.Now()
	used := w.used(lim)
	biggest.stopFn(&memoryError{msg: fmt.Sprintf("the process uses %s of the %s it may use; %s holds the most Starlark values (%s)",
		memlimit.FormatBytes(used), lim, biggest.who, memlimit.FormatBytes(biggest.size.Load()))})
}
