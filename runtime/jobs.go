package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
)

// clock is the time source of retry delays and memory admission; tests
// replace it (Runtime.clock) to check retry timing without sleeping.
type clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed; the function it returns stops
	// the timer (reporting whether it did).
	AfterFunc(d time.Duration, f func()) func() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// sleep waits d on r's clock, or until ctx ends (false).
func (r *Runtime) sleep(ctx context.Context, d time.Duration) bool {
	ch := make(chan struct{})
	stop := r.clock.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		stop()
		return false
	}
}

// DefaultMemoryWait is how long a thread waits for memory before it fails
// (Options.MemoryWait).
const DefaultMemoryWait = 30 * time.Second

// memoryWait is Options.MemoryWait with its default applied.
func (r *Runtime) memoryWait() time.Duration {
	switch w := r.opts.MemoryWait; {
	case w < 0:
		return 0
	case w == 0:
		return DefaultMemoryWait
	default:
		return w
	}
}

// admit is the memory admission of an attempt (DESIGN §3): while the
// machine's memory (counting the cgroup's limit) is more than 95% used, or
// less is free than a max_memory_mb the thread asked for, the attempt
// waits, without its worker slot, for up to Options.MemoryWait; then it
// fails with an error wrapping ErrNoMemory. A busy CPU never holds a
// thread back: the worker pools queue it.
func (j *run) admit() error {
	r := j.r
	ok, why := r.load.admit(j.budgetMB, j.memoryAsked)
	if ok {
		return nil
	}
	wait := r.memoryWait()
	if wait > 0 {
		j.appendLine(stamp("Waiting for memory: %s; it starts when there is enough, or fails after %s.", why, wait))
		j.pool.release()
		defer j.pool.reacquire()
		deadline := r.clock.Now().Add(wait)
		for r.clock.Now().Before(deadline) {
			if !r.sleep(j.base, memoryPoll) || j.stopped() {
				return nil // stopped: execute records why
			}
			if ok, why = r.load.admit(j.budgetMB, j.memoryAsked); ok {
				j.appendLine(stamp("Memory is free again; starting."))
				return nil
			}
		}
	}
	return limitf(ErrNoMemory, "the machine is overloaded (%s) and it did not get better within %s (runtime.Options.MemoryWait, autonode run --memory-wait)", why, wait)
}

// memoryPoll is how often a thread waiting for memory looks again.
const memoryPoll = 100 * time.Millisecond

// stopped reports whether the job was asked to stop.
func (j *run) stopped() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stopCause != nil || j.base.Err() != nil
}

// shouldRetry decides, at the end of attempt e, whether the job runs
// again and after how long: a failed or timed-out attempt (never a
// cancelled one, nor a refusal by the embedder's policy) while retries
// remain and retry_on, when given, agrees. A veto or a failing retry_on
// adds a history line to e.
func (j *run) shouldRetry(e *ending, cause error) (bool, time.Duration) {
	if j.retry.Retries == 0 || j.retried >= j.retry.Retries {
		return false, 0
	}
	switch e.status {
	case registry.StatusFailed, registry.StatusTimedOut, registry.StatusCrashed:
	default:
		return false, 0
	}
	if cause != nil && errors.Is(cause, ErrCancelled) || errors.Is(e.runErr, ErrUnsandboxedForbidden) || j.stopped() {
		return false, 0
	}
	msg := e.message
	if msg == "" {
		msg = e.errText
	}
	if j.retryOn != nil {
		ok, note := j.askRetryOn(msg)
		if !ok {
			e.lines = append(e.lines, stamp("%s", note))
			return false, 0
		}
	}
	d := j.retry.DelayBefore(j.retried + 1)
	d *= 1 + 0.1*j.r.jitter()
	if d < 0 {
		d = 0
	}
	return true, time.Duration(d * float64(time.Second))
}

// askRetryOn calls retry_on(error_text) on a Starlark thread like the
// body's (its sandbox, step budget and memory budget), bounded by
// retryOnTimeout, and returns its answer, with the history note for a
// veto or a failure.
func (j *run) askRetryOn(text string) (bool, string) {
	ctx, cancel := context.WithTimeoutCause(j.base, retryOnTimeout, errors.New("retry_on took longer than 10s"))
	defer cancel()
	ctx = withAttemptAccount(context.WithValue(ctx, runKey{}, j))
	th, done := j.r.newBodyThread(j, ctx, func(error) { cancel() })
	v, err := starlark.Call(th, j.retryOn, starlark.Tuple{starlark.String(text)}, nil)
	done()
	if err != nil {
		msg, _ := errorText(err)
		return false, fmt.Sprintf("Not retried: retry_on failed: %s", sentence(msg))
	}
	b, ok := v.(starlark.Bool)
	if !ok {
		return false, fmt.Sprintf("Not retried: retry_on returned %s (%s); want True or False.", v.String(), v.Type())
	}
	if !b {
		return false, "Not retried: retry_on returned False."
	}
	return true, ""
}

// retryOnTimeout bounds one call of retry_on.
const retryOnTimeout = 10 * time.Second

// scheduleRetry records the end of attempt e and the retry that follows
// after delay: the thread is pending again, holds no worker slot while it
// waits, and its record says when and why.
func (j *run) scheduleRetry(e ending, delay time.Duration) {
	r := j.r
	j.mu.Lock()
	k := j.retried + 1
	j.mu.Unlock()
	if j.lease != nil {
		j.lease.requeue(j, e, delay)
		return
	}
	e.lines = append(e.lines, stamp("Attempt %d %s; retry %d of %d in %s.", e.attempt, e.status, k, j.retry.Retries, delay.Round(time.Millisecond)))
	change := j.endChange(e)
	again := func(t *registry.Thread) {
		change(t)
		t.Status, t.Result = registry.StatusPending, nil
	}
	j.mu.Lock()
	again(j.rec)
	j.mu.Unlock()
	r.commits.post(func(tx *registry.Tx) error {
		t, err := tx.Get(j.id)
		if err != nil {
			return err
		}
		t.History = append(t.History, j.takeLines()...)
		again(t)
		return j.put(tx, t)
	})
	j.mu.Lock()
	if cause := j.stopCause; cause != nil || j.base.Err() != nil {
		j.mu.Unlock()
		if cause == nil {
			cause = context.Cause(j.base)
		}
		j.finish(ending{status: registry.StatusCancelled, errText: cause.Error(), runErr: cause,
			lines: []string{stamp("Cancelled before its next attempt: %s.", cancelReason(cause))}})
		return
	}
	j.retried = k
	j.state = statePending
	j.submitted.Store(false)
	j.mu.Unlock()
	r.setHot(j, false)
	stop := r.clock.AfterFunc(delay, j.resubmit)
	j.mu.Lock()
	if j.state == statePending && !j.submitted.Load() {
		j.stopRetry = stop
	}
	j.mu.Unlock()
}

// resubmit queues the next attempt once its retry delay has passed.
func (j *run) resubmit() {
	j.mu.Lock()
	if j.state != statePending || j.stopCause != nil || j.submitted.Load() {
		j.mu.Unlock()
		return
	}
	j.stopRetry = nil
	j.submitted.Store(true)
	j.mu.Unlock()
	j.pool.submit(j)
}

// depWait is what a waiting run waits for: upstream runs of this process
// (which tell it when they end) and threads of other processes (which the
// monitor polls).
type depWait struct {
	local  []*run
	remote []registry.ID
	left   map[registry.ID]bool // not yet succeeded
}

// checkAfter checks a plan's dependencies inside the transaction that
// creates thread id: each must exist, and none may wait (directly or not)
// for id, which would never run.
func (r *Runtime) checkAfter(tx *registry.Tx, p *plan, id registry.ID) (*depWait, error) {
	if len(p.after) == 0 {
		return nil, nil
	}
	d := &depWait{left: map[registry.ID]bool{}}
	for i, a := range p.after {
		if a == id {
			return nil, fmt.Errorf("%s: after[%d]: thread %s cannot wait for itself", p.fn, i, a)
		}
		r.mu.Lock()
		u := r.runs[a]
		r.mu.Unlock()
		if u == nil && !tx.Exists(a) {
			return nil, fmt.Errorf("%s: after[%d]: thread %s: %w", p.fn, i, a, registry.ErrNotFound)
		}
		if waitsFor(tx, a, id) {
			return nil, fmt.Errorf("%s: after[%d]: thread %s waits (after=) for thread %s already: they would wait for each other for ever", p.fn, i, a, id)
		}
		d.left[a] = true
		if u != nil {
			d.local = append(d.local, u)
		} else {
			d.remote = append(d.remote, a)
		}
	}
	return d, nil
}

// waitsFor reports whether thread from waits, through after= lists of
// threads that have not ended, for thread target.
func waitsFor(tx *registry.Tx, from, target registry.ID) bool {
	seen := map[registry.ID]bool{}
	queue := []registry.ID{from}
	for len(queue) > 0 && len(seen) < 10000 {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		t, err := tx.Get(id)
		if err != nil || registry.Final(t.Status) {
			continue
		}
		for _, a := range t.After {
			if a == target {
				return true
			}
			queue = append(queue, a)
		}
	}
	return false
}

// waitDeps starts a waiting run's wait: runs of this process tell it when
// they end; the monitor polls the others.
func (r *Runtime) waitDeps(j *run) {
	d := j.deps
	if d == nil {
		j.release(nil)
		return
	}
	r.setHot(j, true)
	for _, u := range d.local {
		u.mu.Lock()
		if u.state == stateDone && u.final != nil {
			final := u.final
			u.mu.Unlock()
			j.upstreamEnded(u.id, final)
			continue
		}
		u.dependents = append(u.dependents, j)
		u.mu.Unlock()
	}
	if len(d.remote) > 0 {
		r.monitor.wake()
	}
}

// upstreamEnded tells a waiting run that upstream thread id ended with
// record t (of this process, or read from the registry).
func (j *run) upstreamEnded(id registry.ID, t *registry.Thread) {
	ok, why := upstreamOutcome(t)
	j.mu.Lock()
	if j.state != stateWaiting || j.deps == nil || !j.deps.left[id] {
		j.mu.Unlock()
		return
	}
	if !ok {
		j.mu.Unlock()
		j.skip(id, why)
		return
	}
	delete(j.deps.left, id)
	rest := len(j.deps.left)
	j.mu.Unlock()
	if rest == 0 {
		j.release(j.after)
	}
}

// upstreamOutcome says whether an ended upstream thread lets its
// dependents run (it succeeded or was served from the cache) and, if not,
// why.
func upstreamOutcome(t *registry.Thread) (bool, string) {
	switch t.Status {
	case registry.StatusSucceeded, registry.StatusCached:
		return true, ""
	case "":
		return false, fmt.Sprintf("upstream thread %s has no status (a seed thread AutoNode never ran; run() it first)", t.ID)
	}
	if !registry.Final(t.Status) { // it can never end (see remoteEnded)
		return false, fmt.Sprintf("upstream thread %s (%s) is %s: %s", t.ID, registry.PyRepr(t.Name), t.Status, t.Error)
	}
	why := fmt.Sprintf("upstream thread %s (%s) ended %s", t.ID, registry.PyRepr(t.Name), t.Status)
	if first := registry.ErrorSummary(t.Error); first != "" {
		why += ": " + first
	}
	return false, why
}

// skip ends a waiting run that will never run: upstream thread id failed
// for good.
func (j *run) skip(id registry.ID, why string) {
	j.r.setHot(j, false)
	err := &skippedError{upstream: id, why: why}
	j.finish(ending{status: registry.StatusSkipped, errText: why, message: why,
		lines: []string{stamp("Skipped, not run: %s.", strings.TrimSuffix(why, "."))}, runErr: err})
}

// skippedError is RunErr's error for a skipped thread.
type skippedError struct {
	upstream registry.ID
	why      string
}

func (e *skippedError) Error() string        { return "skipped: " + e.why }
func (e *skippedError) Is(target error) bool { return target == ErrSkipped }

// release ends a run's wait: it is pending again, served from the cache
// when a succeeded thread has its key, and otherwise queued.
func (j *run) release(met []registry.ID) {
	r := j.r
	j.mu.Lock()
	if j.state != stateWaiting && !(met == nil && j.state == statePending) {
		j.mu.Unlock()
		return
	}
	j.state = statePending
	j.mu.Unlock()
	r.setHot(j, false)
	var hit *registry.Thread
	var final *registry.Thread
	fn := func(tx *registry.Tx) error {
		t, err := tx.Get(j.id)
		if err != nil {
			return err
		}
		if registry.Final(t.Status) {
			return nil // cancelled by another process meanwhile: the monitor finds it
		}
		t.History = append(t.History, j.takeLines()...)
		if len(met) > 0 {
			t.History = append(t.History, stamp("Dependencies met: %s succeeded.", registry.JoinIDs(met)))
		}
		t.Status = registry.StatusPending
		if j.cacheKey != "" {
			if src, ok := r.cache.lookup(tx, j.cacheKey); ok {
				cacheHit(t, src)
				hit = src
			}
		}
		if err := tx.Put(t, j.tok); err != nil {
			return err
		}
		final = t
		return nil
	}
	r.commits.async(fn, func(err error) {
		j.mu.Lock()
		if j.state != statePending {
			j.mu.Unlock()
			return // stopped meanwhile: stop recorded it
		}
		if final != nil {
			j.rec = final.Clone()
		}
		if err != nil || hit == nil {
			j.mu.Unlock()
			if j.feeder != nil {
				j.feeder.ready(j)
				return
			}
			j.submitted.Store(true)
			j.pool.submit(j)
			return
		}
		release := j.endLocked()
		j.mu.Unlock()
		release()
		j.completed(final, registry.StatusCached, nil)
	})
}

// monitor is the goroutine that watches, for the runs of this runtime,
// what other processes write: cancel requests in their records (a
// running thread is stopped within a second of one) and the upstream
// threads that waiting runs wait for. It reads the registry every
// monitorTick while runs are live (the file store refreshes from its
// journal's tail, so a read costs what changed).
type monitor struct {
	r       *Runtime
	once    sync.Once
	started bool // set inside once
	quit    chan struct{}
	done    chan struct{}
	wakeCh  chan struct{}
}

// monitorTick is how often the monitor reads the registry; every
// fullScanEvery-th tick it checks queued runs too.
const (
	monitorTick   = 200 * time.Millisecond
	fullScanEvery = 5
)

func newMonitor(r *Runtime) *monitor {
	return &monitor{r: r, quit: make(chan struct{}), done: make(chan struct{}), wakeCh: make(chan struct{}, 1)}
}

// start launches the monitor on first use.
func (m *monitor) start() {
	m.once.Do(func() {
		m.started = true
		go m.loop()
	})
}

func (m *monitor) wake() {
	select {
	case m.wakeCh <- struct{}{}:
	default:
	}
}

func (m *monitor) loop() {
	defer close(m.done)
	t := time.NewTicker(monitorTick)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-m.quit:
			return
		case <-t.C:
		case <-m.wakeCh:
		}
		m.r.checkOthers(tick%fullScanEvery == 0)
	}
}

// close stops the monitor; it never starts after this.
func (m *monitor) close() {
	m.once.Do(func() {})
	if m.started {
		close(m.quit)
		<-m.done
	}
}

// setHot marks j as a run the monitor checks every tick (running or
// waiting) or not.
func (r *Runtime) setHot(j *run, hot bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if hot {
		r.hot[j] = struct{}{}
	} else {
		delete(r.hot, j)
	}
}

// checkOthers is one pass of the monitor; with all, queued runs are
// checked for cancel requests too.
func (r *Runtime) checkOthers(all bool) {
	r.mu.Lock()
	var check []*run
	if all {
		check = slices.Collect(maps.Values(r.runs))
	} else {
		check = slices.Collect(maps.Keys(r.hot))
	}
	closing := r.closing.Load()
	r.mu.Unlock()
	if len(check) == 0 {
		return
	}
	type stopReq struct {
		j   *run
		req registry.CancelRequest
	}
	type depEnd struct {
		j  *run
		id registry.ID
		t  *registry.Thread
	}
	var stops []stopReq
	var ends []depEnd
	var waiting []*run
	for _, j := range check {
		j.mu.Lock()
		if j.state == stateWaiting && j.deps != nil && len(j.deps.remote) > 0 {
			waiting = append(waiting, j)
		}
		j.mu.Unlock()
	}
	alive := &owner.Checker{}
	err := r.store.View(func(tx *registry.Tx) error {
		for _, j := range check {
			if c, err := tx.CancelRequested(j.id); err == nil && c != nil {
				stops = append(stops, stopReq{j, *c})
			}
		}
		seen := map[registry.ID]*registry.Thread{}
		for _, j := range waiting {
			for _, id := range j.deps.remote {
				t, ok := seen[id]
				if !ok {
					var err error
					if t, err = tx.Get(id); err != nil {
						t = &registry.Thread{ID: id, Status: registry.StatusCancelled, Error: "deleted while others waited for it"}
					}
					seen[id] = t
				}
				if ended := remoteEnded(t, alive, closing); ended != nil {
					ends = append(ends, depEnd{j, id, ended})
				}
			}
		}
		return nil
	})
	if err != nil {
		return // the next tick tries again
	}
	for _, s := range stops {
		_ = s.j.stop(&requestedError{s.req})
	}
	for _, e := range ends {
		e.j.upstreamEnded(e.id, e.t)
	}
}

// remoteEnded returns the record of an upstream thread of another process
// once it lets its dependents decide (it ended, or can never end: its
// owner is gone, or nothing will run it and this runtime is closing), or
// nil while it may still succeed.
func remoteEnded(t *registry.Thread, alive *owner.Checker, closing bool) *registry.Thread {
	if registry.Final(t.Status) || t.Status == "" {
		return t
	}
	if note := alive.Gone(t); note != "" {
		c := t.Clone()
		alive.Apply(c)
		return c
	}
	if t.Owner == "" && t.Status == registry.StatusPending && closing {
		c := t.Clone()
		c.Status, c.Error = registry.StatusPending, "it is pending and nothing runs it (the runtime closed before anyone did; run() it)"
		return c
	}
	return nil
}

// noteEnd remembers how a job ended, for Failed.
func (r *Runtime) noteEnd(t *registry.Thread) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	switch t.Status {
	case registry.StatusFailed, registry.StatusTimedOut, registry.StatusCrashed, registry.StatusSkipped:
		r.failed[t.ID] = &registry.Thread{ID: t.ID, Name: t.Name, Status: t.Status, Error: registry.ErrorSummary(t.Error)}
	default:
		delete(r.failed, t.ID)
	}
}

// Failed returns the threads this runtime ran (created, retried or ran
// again) whose last run ended failed, timed_out, crashed or skipped, in id
// order: their id, name, status and what went wrong (one line). autonode
// run prints them and exits 3.
func (r *Runtime) Failed() []*registry.Thread {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	ids := slices.Sorted(maps.Keys(r.failed))
	out := make([]*registry.Thread, len(ids))
	for i, id := range ids {
		out[i] = r.failed[id].Clone()
	}
	return out
}

// jitterUniform is the default jitter: uniform in [-1, 1).
func jitterUniform() float64 { return 2*rand.Float64() - 1 }
