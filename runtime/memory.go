package runtime

import (
	"context"
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
//     while Starlark code runs (the bytes allocated so far) and, less
//     often, the memory the process has left of what it may use
//     (memlimit: RAM, cgroup, RLIMIT_AS). It also sets debug.SetMemoryLimit to softLimitShare of
//     that, unless the program already set one (GOMEMLIMIT), so that the
//     garbage collector works harder before the limit rather than after.
//   - Each Starlark thread has a memory account. Between two instructions
//     (the guard), once the process has allocated more since the last
//     measurement than the thread could have added without passing its
//     limit, the thread measures the values its frames hold (valueSizer.thread).
//     A thread body reserves them in its accel budget, next to its arrays,
//     and is stopped with ErrMemoryLimit when they do not fit. Whatever the
//     budget, a thread's values may take at most a sixth of the memory
//     the process has left (valueCap): one instruction can allocate twice what
//     a thread holds (x = x + x), and that must still fit when the check
//     after it comes, late on a busy machine. A script's top level has that cap as its limit.
//   - A thread waiting for a long accel operation (accel.Options.Busy)
//     cannot add values meanwhile: while every registered thread waits
//     for one, the watchdog sleeps, so that its wake-ups do not take the
//     kernel's cores from it, and it samples again as one returns.
//   - When the process comes within 1-emergencyShare of its limit anyway
//     (many threads, values the frames do not show, other memory), every
//     Starlark thread measures itself at its next check, so that those
//     holding more than a sixth of what is left stop, and garbage is
//     collected.

// Watchdog parameters.
const (
	watchInterval  = 2 * time.Millisecond
	softLimitShare = 0.80
	emergencyShare = 0.90
	// cooldown separates two emergencies, so that what the first freed is
	// seen before the next; quietEmergency separates two when no less
	// memory is left than at the first.
	cooldown       = 100 * time.Millisecond
	quietEmergency = 5 * time.Second
	// emergencyEvery: the memory left is read every emergencyEvery
	// samples (it costs a few file reads).
	emergencyEvery = 5
	// carefulShare: a thread whose values take 1/carefulShare of its
	// limit or more reads the allocation count itself (a clock read per
	// check, and the count when carefulEvery has passed) rather than wait
	// for the watchdog's sample.
	carefulShare = 4
	carefulEvery = time.Millisecond
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

	recheck    int  // measure again at each of the next recheck steps
	careful    bool // near its limit: read the allocations itself
	readAt     time.Time
	reserved   int64  // bytes of values reserved in budget
	lastAllocs uint64 // process allocations at the last measurement
	slack      uint64 // allocation that triggers the next measurement
	epoch      uint64 // the emergency last answered
	size       int64  // values held at the last measurement

	busy int // long accel operations the thread waits for; under watch.mu
}

// newMemAccount makes the account of a thread; budget nil means no budget
// of its own (it only takes part in emergencies).
func newMemAccount(who string, budget *accel.Budget, limitTx string, globals bool) *memAccount {
	m := &memAccount{who: who, budget: budget, limitTx: limitTx, globals: globals}
	m.lastAllocs = watch.allocs.Load()
	m.epoch = watch.epoch.Load()
	m.slack = math.MaxUint64
	if lim, _, _ := m.valueLimit(0); lim > 0 {
		m.slack = uint64(max(lim, minSlack))
	}
	return m
}

// valueLimit is the most the thread's values may take with arrays bytes
// in arrays (0: no limit), and, when the process's memory rather than the
// budget sets it, what that limit is.
func (m *memAccount) valueLimit(arrays int64) (int64, string, bool) {
	limit := int64(0)
	if b := m.budget.Limit(); b > 0 {
		limit = max(b-arrays, 0)
	}
	if c, why := watch.valueCap(); c > 0 && (limit == 0 || c < limit) {
		return c, why, true
	}
	return limit, "", false
}

// check runs on the thread's goroutine between two instructions; it
// returns ErrMemoryLimit when the thread holds more than its budget.
func (m *memAccount) check(th *starlark.Thread) error {
	allocs := watch.allocs.Load()
	if m.careful && time.Since(m.readAt) >= carefulEvery {
		// Close to its limit, the thread does not wait for the watchdog,
		// which a busy machine or a collection can hold up while one
		// instruction allocates hundreds of megabytes.
		allocs, m.readAt = max(allocs, allocsNow()), time.Now()
	}
	e := watch.epoch.Load()
	if m.recheck > 0 {
		m.recheck--
	} else if e == m.epoch && allocs-m.lastAllocs < m.slack {
		return nil
	}
	return m.measure(th, allocs, e)
}

// recheckSteps is how many single steps after a measurement that missed
// most of what was allocated are measured again: a value just computed
// (x + x) sits on the interpreter's operand stack, which frames do not
// show, until the next instruction stores it in a variable.
const recheckSteps = 3

func (m *memAccount) measure(th *starlark.Thread, allocs, epoch uint64) error {
	arrays := max(m.budget.Used()-m.reserved, 0)
	limit, capTx, capped := m.valueLimit(arrays)
	size, over := newValueSizer(limit).thread(th, m.globals)
	if grew := size - m.size; m.recheck == 0 && allocs-m.lastAllocs >= m.slack && grew < int64((allocs-m.lastAllocs)/2) {
		m.recheck = recheckSteps
	}
	m.size = size
	// What the measurement itself allocated does not count.
	m.epoch, m.lastAllocs = epoch, allocsNow()
	if limit == 0 {
		return nil
	}
	if !over && m.budget.Limit() > 0 {
		if d := size - m.reserved; d > 0 {
			over = m.budget.Reserve(d) != nil
		} else if d < 0 {
			m.budget.Release(-d)
		}
		if !over {
			m.reserved = size
		}
	}
	if over {
		if capped {
			return &memoryError{msg: fmt.Sprintf("%s holds at least %s of Starlark values, more than %s",
				m.who, memlimit.FormatBytes(size), capTx)}
		}
		return &memoryError{msg: fmt.Sprintf("%s holds at least %s of Starlark values and %s of arrays, more than its max_memory_mb of %s",
			m.who, memlimit.FormatBytes(size), memlimit.FormatBytes(arrays), m.limitTx)}
	}
	m.slack = uint64(max(limit-size, size/2, minSlack))
	if m.careful = size >= limit/carefulShare; m.careful {
		m.readAt = time.Now()
	}
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
var watch = &heapWatch{accounts: map[*memAccount]struct{}{}, prevLimit: -1, limitOf: memlimit.Get, leftOf: memlimit.Limit.Left}

// heapWatch samples the process's memory while Starlark threads run.
type heapWatch struct {
	allocs atomic.Uint64 // /gc/heap/allocs:bytes at the last sample
	goMem  atomic.Int64  // Go memory mapped and not released, ditto
	goFree atomic.Int64  // Go memory released to the system (still mapped)
	epoch  atomic.Uint64 // bumped to make every thread measure itself
	taken  atomic.Uint64 // samples taken (tests count them)

	mu        sync.Mutex
	accounts  map[*memAccount]struct{}
	busy      int           // accounts among them waiting for a long accel operation
	users     int           // open Runtimes
	wake      chan struct{} // the first account arrived
	quit      chan struct{}
	done      chan struct{}
	prevLimit int64 // the memory limit before ours; -1 if we set none

	capMu    sync.Mutex // guards the valueCap reading
	capAt    time.Time
	capBytes int64
	capWhy   string

	// limitOf and leftOf read the process's limit and what is left of it
	// (memlimit; tests replace them).
	limitOf func() memlimit.Limit
	leftOf  func(memlimit.Limit) (int64, bool)

	collecting atomic.Bool // an emergency collection runs

	// Used by the loop goroutine only.
	lastEmergency time.Time
	lastLeft      int64 // what was left at the last emergency
	samples       []metrics.Sample
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
	lim := w.limitOf()
	if lim.Bytes <= 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		return
	}
	soft := int64(float64(lim.Bytes) * softLimitShare)
	if lim.AddressSpace {
		// RLIMIT_AS counts address space the Go runtime reserves but
		// does not use; the Go limit counts only what it uses.
		if vm, goMapped := memlimit.AddressSpaceUsed(), w.goUsed()+w.goFree.Load(); vm > goMapped {
			soft -= vm - goMapped
		}
	}
	if soft <= 0 {
		return
	}
	w.prevLimit = debug.SetMemoryLimit(soft)
}

// valueCapShare: one thread's Starlark values may take 1/valueCapShare of
// the memory the process has left. A doubling (x = x + x) of a value at
// the cap makes three times it live, and the check after it may come late
// (the sampling lags on a busy machine, so a value can pass the cap by a
// factor of two before it is seen): a sixth keeps that, and the garbage
// of the step before, inside what is left.
const valueCapShare = 6

// valueCap returns the most one thread's Starlark values may take: a
// sixth of the memory the process has left (memlimit.Limit.Left), so that
// one more doubling, and the garbage it leaves, still fit; and its
// description. It is 0 when the limit or the use is unknown.
// The reading is reused for capFresh: it costs a few file reads, and a
// thread measures itself often only when it is close to its limit.
func (w *heapWatch) valueCap() (int64, string) {
	w.capMu.Lock()
	defer w.capMu.Unlock()
	if time.Since(w.capAt) < capFresh {
		return w.capBytes, w.capWhy
	}
	w.capAt, w.capBytes, w.capWhy = time.Now(), 0, ""
	lim := w.limitOf()
	if left, ok := w.leftOf(lim); ok {
		w.capBytes = max(left/valueCapShare, 1)
		w.capWhy = fmt.Sprintf("a sixth of the %s this process has left of its %s", memlimit.FormatBytes(left), lim)
	}
	return w.capBytes, w.capWhy
}

// capFresh is how long valueCap reuses a reading.
const capFresh = 5 * time.Millisecond

// register adds a thread's account; unregister removes it.
func (w *heapWatch) register(m *memAccount) {
	w.mu.Lock()
	w.accounts[m] = struct{}{}
	if m.busy > 0 {
		w.busy++
	}
	wake := w.wake
	w.mu.Unlock()
	if m.busy == 0 {
		w.rouse(wake)
	}
}

func (w *heapWatch) unregister(m *memAccount) {
	w.mu.Lock()
	if _, ok := w.accounts[m]; ok && m.busy > 0 {
		w.busy--
	}
	delete(w.accounts, m)
	w.mu.Unlock()
}

// rouse wakes a sleeping loop (a no-op when it is awake).
func (w *heapWatch) rouse(wake chan struct{}) {
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// idle reports whether no Starlark thread can allocate now: none is
// registered, or every one waits for a long accel operation.
func (w *heapWatch) idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.accounts) == w.busy
}

// attemptAccount holds, in the context of one attempt of a run (or of a
// retry_on call), the memory account of the Starlark thread that runs it:
// nil until that thread starts, after it ends, and for the default work.
// Each attempt has its own, so that a body left running after its attempt
// ended never speaks for the next attempt's thread.
type attemptAccount struct {
	mem atomic.Pointer[memAccount]
}

// attemptKey finds a context's attemptAccount.
type attemptKey struct{}

// withAttemptAccount gives ctx an empty attemptAccount of its own (a
// body's context carries its spawner's values, its attempt's among them).
func withAttemptAccount(ctx context.Context) context.Context {
	return context.WithValue(ctx, attemptKey{}, &attemptAccount{})
}

// accountOf returns the memory account of the Starlark thread whose
// builtin called with ctx: a body's is its attempt's, a top level's its
// topLevel's; nil for the default work, a top-level load() and Go callers.
func accountOf(ctx context.Context) *memAccount {
	if ctx == nil {
		return nil
	}
	if a, ok := ctx.Value(attemptKey{}).(*attemptAccount); ok {
		return a.mem.Load()
	}
	if t, ok := ctx.Value(topCtxKey{}).(*topLevel); ok {
		return t.mem // nil for a load() thread: it never pauses the watchdog
	}
	return nil
}

// busyFor is accel.Options.Busy for the runtime's Execs: the thread that
// waits for a long operation cannot allocate Starlark values meanwhile,
// so the watchdog may sleep while every thread does (its wake-ups cost
// the kernel's cores more than the sampling itself).
func busyFor(ctx context.Context) func() {
	m := accountOf(ctx)
	if m == nil {
		return func() {}
	}
	return watch.markBusy(m)
}

// markBusy records that m's thread waits for a long operation, until the
// returned function is called.
func (w *heapWatch) markBusy(m *memAccount) func() {
	w.mu.Lock()
	m.busy++
	if _, ok := w.accounts[m]; ok && m.busy == 1 {
		w.busy++
	}
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		m.busy--
		_, ok := w.accounts[m]
		roused := ok && m.busy == 0
		if roused {
			w.busy--
		}
		wake := w.wake
		w.mu.Unlock()
		if roused {
			w.rouse(wake)
		}
	}
}

func (w *heapWatch) loop(wake, quit, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	ticks := 0
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
		if ticks++; ticks%emergencyEvery == 0 {
			w.checkEmergency()
		}
	}
}

// sample reads the metrics and publishes them; only one goroutine at a
// time calls it (acquire before the loop starts, then the loop).
func (w *heapWatch) sample() {
	w.taken.Add(1)
	metrics.Read(w.samples)
	if v := w.samples[0].Value; v.Kind() == metrics.KindUint64 {
		w.allocs.Store(v.Uint64())
	}
	total, released := w.samples[1].Value, w.samples[2].Value
	if total.Kind() == metrics.KindUint64 && released.Kind() == metrics.KindUint64 {
		w.goMem.Store(int64(total.Uint64() - released.Uint64()))
		w.goFree.Store(int64(released.Uint64()))
	}
}

// allocsNow reads the bytes allocated so far, at once.
func allocsNow() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return watch.allocs.Load()
	}
	return s[0].Value.Uint64()
}

// goUsed is the memory the Go runtime has mapped and not released, at the
// last sample.
func (w *heapWatch) goUsed() int64 { return w.goMem.Load() }

// checkEmergency acts when the process has less than 1-emergencyShare of
// its limit left: every Starlark thread measures itself at its next check
// (valueCap then stops those holding more than a sixth of what is left),
// and garbage is collected and returned to the system on another
// goroutine, so that sampling goes on meanwhile.
func (w *heapWatch) checkEmergency() {
	if time.Since(w.lastEmergency) < cooldown {
		return
	}
	lim := w.limitOf()
	reserve := int64(float64(lim.Bytes) * (1 - emergencyShare))
	left, ok := w.leftOf(lim)
	if !ok || left >= reserve {
		w.lastLeft = 0
		return
	}
	// Again only when less is left than at the last one, or a while
	// later: under RLIMIT_AS the address space used never shrinks, and a
	// process that stays close to its limit must not spend its time
	// measuring.
	if w.lastLeft > 0 && left > w.lastLeft-w.lastLeft/10 && time.Since(w.lastEmergency) < quietEmergency {
		return
	}
	w.lastEmergency, w.lastLeft = time.Now(), left
	w.capMu.Lock()
	w.capAt = time.Time{} // read what is left afresh
	w.capMu.Unlock()
	w.epoch.Add(1)
	if w.collecting.CompareAndSwap(false, true) {
		go func() {
			defer w.collecting.Store(false)
			debug.FreeOSMemory()
		}()
	}
}
