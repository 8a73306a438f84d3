package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/registry"
)

// abandonGrace is how long a run that reached its TTL (or was cancelled)
// gets to stop before its thread is recorded as ended anyway. A Go kernel
// that ignores its context keeps its worker slot until it returns.
var abandonGrace = 2 * time.Second

type runState int

const (
	statePending runState = iota // queued, held by a batch, or between attempts
	stateWaiting                 // for the threads in after=
	stateRunning
	stateDone
)

// Errors used as context causes, to tell why a run's context ended.
var (
	errCancelled = &limitError{sentinel: ErrCancelled, msg: "cancelled by cancel()"}
	errClosed    = closedError{}
	// errRunEnded is the cause a run gives its context when its body has
	// returned: the children it left running are cancelled.
	errRunEnded = errors.New("its body returned")
)

// closedError is the cause of a run stopped by Close: it matches both
// ErrCancelled (its status) and ErrClosed.
type closedError struct{}

func (closedError) Error() string { return "the runtime was closed" }

func (closedError) Is(target error) bool { return target == ErrCancelled || target == ErrClosed }

// requestedError is the cause of a run stopped by a cancel request in its
// record, made by another process (autonode cancel, cancel() elsewhere).
type requestedError struct{ req registry.CancelRequest }

func (e *requestedError) Error() string { return "cancelled: requested by " + e.req.By }

func (e *requestedError) Is(target error) bool { return target == ErrCancelled }

// ttlError is the cause of a run context that reached the thread's TTL.
type ttlError struct {
	id  registry.ID
	ttl float64
}

func (e *ttlError) Error() string {
	return fmt.Sprintf("thread %s exceeded its TTL of %ss", e.id, registry.PyFloat(e.ttl))
}

func (e *ttlError) Is(target error) bool { return target == ErrTTLExceeded }

// parentEndedError is the cause of a run stopped because the thread
// whose body spawned it ended.
type parentEndedError struct {
	parent registry.ID
	why    error  // why the parent's context ended
	reason string // cancelReason's, when spawnerCause made it
}

func (e *parentEndedError) Error() string {
	return fmt.Sprintf("its parent thread %s ended (%s)", e.parent, e.why)
}

func (e *parentEndedError) Is(target error) bool {
	return target == ErrCancelled || target == ErrInterrupted && errors.Is(e.why, ErrInterrupted)
}

// spawnerEndedError is the cause of a run stopped because the context
// it was spawned with (a script's top level, the embedder's) ended.
type spawnerEndedError struct {
	why    error
	reason string // cancelReason's, when spawnerCause made it
}

func (e *spawnerEndedError) Error() string {
	if errors.Is(e.why, ErrInterrupted) {
		return e.why.Error()
	}
	return fmt.Sprintf("its spawner's context ended (%s)", e.why)
}

func (e *spawnerEndedError) Unwrap() []error { return []error{ErrCancelled, e.why} }

// spawnerCause says why a run's spawner context ctx ended.
func spawnerCause(ctx context.Context) error {
	why := context.Cause(ctx)
	if why == nil {
		why = context.Canceled
	}
	// The reason is worked out once: one cause stops every run of the
	// context (80 000 of a spawn_batch), each noting it in its history.
	if p, ok := ctx.Value(runKey{}).(*run); ok {
		e := &parentEndedError{parent: p.id, why: why}
		e.reason = cancelReason(e)
		return e
	}
	e := &spawnerEndedError{why: why}
	e.reason = cancelReason(e)
	return e
}

// run is one job of this runtime: a thread from its creation (or the
// request for a new attempt) to its end, through every attempt its retry
// policy allows. It is the Handle that Spawn returns.
type run struct {
	r           *Runtime
	id          registry.ID
	tok         string // a token that opens the record
	fn          starlark.Callable
	args        starlark.Tuple
	kwargs      []starlark.Tuple
	sandbox     bool
	ttl         float64
	budgetMB    float64
	budgetTx    string // max_memory_mb as the seed prints it
	memoryAsked bool   // metadata sets max_memory_mb (memory admission)
	device      deviceChoice
	cacheKey    string
	pool        *pool
	retry       registry.RetryPolicy
	retryOn     starlark.Callable
	after       []registry.ID
	// base is the job's own context: the spawner's values, cancelled
	// (with a cause) when the spawner's context ends or stop is called.
	spawner    context.Context
	base       context.Context
	cancelBase context.CancelCauseFunc
	unwatch    func() bool // stops watching the spawner; under mu

	// Spawn bounds (DESIGN §6): the threads this run's body spawned, and
	// the counter shared by every run under the same top-level thread.
	parentRun *run
	children  atomic.Int64
	tree      *spawnTree
	kids      []*run // the runs its body spawned; under mu

	// Scheduling, read by the pool under its lock.
	rank     int
	priority int64
	seq      uint64
	heapIdx  int

	submitted atomic.Bool
	onEnd     func()  // called once the run has ended (batch feeder)
	feeder    *feeder // the batch feeder that submits it, if any

	mu          sync.Mutex
	rec         *registry.Thread // the record as this run last wrote it
	state       runState
	stopCause   error // why stop was called, nil if it was not
	cancel      context.CancelCauseFunc
	ctx         context.Context // the current attempt's
	ex          *accel.Exec
	elevated    map[string]bool
	logged      int      // lines added by appendLine
	pending     []string // appended lines not yet in the registry
	flushQueued bool
	retried     int         // retries done in this job
	stopRetry   func() bool // cancels the timer of a retry that waits
	deps        *depWait    // what a waiting run still waits for
	dependents  []*run      // waiting runs of this process that wait for this one

	outs runOutputs // its log, metrics (beside the registry)

	done   chan struct{}
	final  *registry.Thread
	err    error // the registry could not record the end
	runErr error // why the run did not succeed (RunErr)

	lease  *workLease // the attempt a worker claimed (worker.go); nil in the spawning process
	remote bool       // left to workers (remote.go)
}

var _ Handle = (*run)(nil)

// ID implements Handle.
func (j *run) ID() registry.ID { return j.id }

// Done implements Handle.
func (j *run) Done() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// Wait implements Handle. A thread body that waits gives its worker slot
// back while it blocks.
func (j *run) Wait(ctx context.Context) (*registry.Thread, error) {
	if !j.Done() {
		if w, ok := ctx.Value(runKey{}).(*run); ok && w != j {
			w.pool.release()
			defer w.pool.reacquire()
		}
		select {
		case <-j.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for thread %s: %w", j.id, context.Cause(ctx))
		}
	}
	return j.final.Clone(), j.err
}

// snapshot returns a copy of the record as the run knows it.
func (j *run) snapshot() *registry.Thread {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.rec.Clone()
}

// stamp formats a history line as registry.Thread.AddHistory does.
func stamp(format string, args ...any) string {
	return "[" + time.Now().Format("2006-01-02 15:04:05") + "] " + cleanHistory(fmt.Sprintf(format, args...))
}

func nowRFC3339() string { return formatTime(time.Now()) }

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// maxLogLines bounds the history lines one run may add with log() and
// elevated host calls, so that a chatty body cannot outgrow its record.
const maxLogLines = 1000

// appendLine adds a history line from the running body (log(), elevated
// host calls). The line is in the run's record at once; it reaches the
// registry with the next commit, lines from many calls batched into one
// write.
func (j *run) appendLine(line string) {
	j.mu.Lock()
	switch {
	case j.logged < maxLogLines:
		j.logged++
	case j.logged == maxLogLines:
		j.logged++
		line = stamp("Further log lines of this run are dropped (at most %d are kept).", maxLogLines)
	default:
		j.mu.Unlock()
		return
	}
	j.rec.History = append(j.rec.History, line)
	j.pending = append(j.pending, line)
	post := !j.flushQueued
	j.flushQueued = true
	j.mu.Unlock()
	if post {
		j.r.commits.post(j.flush)
	}
}

// takeLines returns and clears the lines not yet written.
func (j *run) takeLines() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	lines := j.pending
	j.pending, j.flushQueued = nil, false
	return lines
}

// flush writes the pending lines.
func (j *run) flush(tx *registry.Tx) error {
	lines := j.takeLines()
	if len(lines) == 0 {
		return nil
	}
	t, err := tx.Get(j.id)
	if err != nil {
		return err
	}
	t.History = append(t.History, lines...)
	return j.put(tx, t)
}

// execute runs one attempt of the thread on the goroutine the pool
// started for it.
func (j *run) execute() {
	r := j.r
	j.mu.Lock()
	if j.state != statePending {
		j.mu.Unlock()
		j.pool.done()
		return
	}
	j.mu.Unlock()
	if err := j.admit(); err != nil {
		j.finish(ending{status: registry.StatusFailed, errText: err.Error(), lines: []string{stamp("Not started: %s.", err)}, runErr: err})
		j.pool.done()
		return
	}
	j.mu.Lock()
	if j.state != statePending {
		j.mu.Unlock()
		j.pool.done()
		return
	}
	if j.stopCause == nil && j.spawner != nil && j.spawner.Err() != nil {
		// Its spawner has ended (a signal, the parent's end) and the
		// watch that stops it has not run yet: it must not start.
		j.stopCause = spawnerCause(j.spawner)
	}
	base, cancel := context.WithCancelCause(j.base)
	stopClose := context.AfterFunc(r.ctx, func() { cancel(errClosed) })
	ctx, cancelTTL := context.WithTimeoutCause(base, ttlDuration(j.ttl), &ttlError{j.id, j.ttl})
	ctx = withAttemptAccount(context.WithValue(ctx, runKey{}, j))
	j.ctx, j.cancel, j.state = ctx, cancel, stateRunning
	if j.stopCause != nil {
		cancel(j.stopCause)
	}
	budget, _ := accel.NewBudgetMB(j.budgetMB)
	// This attempt's Exec: a retry scheduled below runs on a new one
	// (j.ex) while this attempt may still be closing its own.
	ex := accel.New(accel.Options{Device: j.device.dev, Budget: budget, Busy: busyFor})
	j.ex = ex
	n := j.attemptNumber()
	j.mu.Unlock()
	endAttempt := func() {
		cancel(errRunEnded) // first: the children it left running end with it
		cancelTTL()
		stopClose()
	}

	if ctx.Err() != nil { // stopped, timed out or closed while it was queued
		ex.Close()
		cause := context.Cause(ctx)
		status := classify(cause, nil)
		line := cancelledLine(cause, false)
		if status == registry.StatusTimedOut {
			line = stamp("Timed out before it started: %s.", cause)
		}
		endAttempt()
		j.finish(ending{status: status, errText: cause.Error(), lines: []string{line}, runErr: runError(status, cause, nil)})
		j.pool.done()
		return
	}
	if !j.sandbox && r.opts.ForbidUnsandboxed {
		ex.Close()
		err := fmt.Errorf("thread %s is unsandboxed: %w", j.id, ErrUnsandboxedForbidden)
		endAttempt()
		j.finish(ending{status: registry.StatusFailed, errText: err.Error(), lines: []string{stamp("Refused to run: %s.", err)}, runErr: err})
		j.pool.done()
		return
	}

	what := "default work (512x512 float64 matmul)"
	if j.fn != nil {
		what = "'" + j.fn.Name() + "'"
	}
	mode := "sandboxed"
	if !j.sandbox {
		mode = "unsandboxed: host access allowed"
	}
	if n > 1 {
		mode += fmt.Sprintf(", attempt %d", n)
	}
	startLine := stamp("Running %s on %s (%s).", what, runLabel(j.device), mode)
	devName := j.device.dev.Name()
	start := time.Now()
	j.begin(registry.Attempt{N: n, Status: registry.StatusRunning, StartedAt: formatTime(start), Owner: r.owner, DeviceUsed: devName}, startLine)
	j.logNote(n, "attempt %d started on %s", n, devName)

	results := make(chan outcome, 1)
	go func() { results <- j.body(ctx, cancel) }()
	var out outcome
	abandoned := false
	select {
	case out = <-results:
	case <-ctx.Done():
		grace := abandonGrace
		if errors.Is(context.Cause(ctx), ErrInterrupted) {
			grace = min(grace, interruptGrace)
		}
		t := time.NewTimer(grace)
		select {
		case out = <-results:
		case <-t.C:
			abandoned = true
			out = outcome{err: fmt.Errorf("did not stop within %s of being stopped: %w", grace, context.Cause(ctx))}
		}
		t.Stop()
	}
	end := time.Now()
	dur := end.Sub(start)

	label := runLabel(j.device)
	var cause error
	if ctx.Err() != nil {
		cause = context.Cause(ctx)
	}
	if out.err == nil {
		cause = nil // it finished before the stop took effect
	}
	// Its end stops the children it left, before its slot goes to one.
	why := cause
	if why == nil {
		why = errRunEnded
	}
	j.stopChildren(why)
	status := classify(cause, out.err)
	e := ending{status: status, started: start, ended: end, dur: dur, attempt: n, runErr: runError(status, cause, out.err)}
	switch status {
	case registry.StatusSucceeded:
		e.result, e.arrays = out.result, out.arrays
		e.lines = append(out.notes, stamp("%s computation complete.", label))
	case registry.StatusTimedOut:
		e.errText = cause.Error() + "; stopped"
		e.lines = []string{stamp("Timed out: %s.", e.errText)}
		e.message = e.errText
	case registry.StatusCancelled:
		e.errText = cause.Error()
		e.lines = []string{cancelledLine(cause, true)}
	default:
		msg, detail := errorText(out.err)
		e.errText, e.message = detail, msg
		e.lines = []string{stamp("%s computation failed %s", label, sentence(msg))}
	}
	retry, delay := j.shouldRetry(&e, cause)
	endAttempt()
	finished := func() {
		ex.Close()
		j.pool.done()
	}
	if abandoned {
		finished = func() {
			go func() {
				<-results
				ex.Close()
				j.pool.done()
			}()
		}
	}
	if retry {
		j.scheduleRetry(e, delay)
	} else {
		j.finish(e)
	}
	finished()
}

// begin records the start of an attempt: in the run's record at once, in
// the registry with the next commit (not waited for: the worker's slot is
// not idle during an fsync, and starts and ends of many runs share
// commits). A cancel request found in the stored record, made while the
// thread was queued, stops the attempt at once.
func (j *run) begin(a registry.Attempt, line string) {
	if j.lease != nil {
		j.beginLeased(line)
		return
	}
	start := func(t *registry.Thread) {
		t.Status = registry.StatusRunning
		t.StartedAt, t.FinishedAt, t.DurationMS, t.Error, t.Result = a.StartedAt, "", 0, "", nil
		_ = t.SetResultArrays(nil)
		t.Owner = a.Owner
		t.DeviceUsed = a.DeviceUsed
		t.Attempts = append(t.Attempts, a)
		t.History = append(t.History, line)
	}
	j.mu.Lock()
	start(j.rec)
	j.mu.Unlock()
	j.r.setHot(j, true) // the monitor looks for cancel requests every tick
	j.r.commits.post(func(tx *registry.Tx) error {
		t, err := tx.Get(j.id)
		if err != nil {
			return err
		}
		if c := t.CancelRequest; c != nil || registry.Final(t.Status) {
			req := registry.CancelRequest{By: "the registry (the thread had ended)"}
			if c != nil {
				req = *c
			}
			go j.stop(&requestedError{req}) // not on the committer's goroutine
			return nil
		}
		start(t)
		t.History = append(t.History, j.takeLines()...)
		return tx.Put(t, j.tok)
	})
}

// stopChildren stops the threads this run's body spawned that have not
// ended, because the run ended for why.
func (j *run) stopChildren(why error) {
	j.mu.Lock()
	kids := j.kids
	j.kids = nil
	j.mu.Unlock()
	for _, k := range kids {
		_ = k.stop(&parentEndedError{parent: j.id, why: why}) // an ended one says so: fine
	}
}

// interruptGrace bounds abandonGrace when a signal stopped the run, so
// that autonode exits promptly.
const interruptGrace = 500 * time.Millisecond

// runError is the error RunErr reports for a run that ended with status
// because of cause (nil if none) and the body's error bodyErr.
func runError(status string, cause, bodyErr error) error {
	switch status {
	case registry.StatusSucceeded:
		return nil
	case registry.StatusTimedOut, registry.StatusCancelled:
		return cause
	}
	switch {
	case cause != nil && bodyErr != nil:
		return &stoppedError{err: bodyErr, why: cause}
	case cause != nil:
		return cause
	case errors.Is(bodyErr, accel.ErrBudget) && !errors.Is(bodyErr, ErrMemoryLimit):
		return &stoppedError{err: bodyErr, why: ErrMemoryLimit}
	}
	return bodyErr
}

// ttlDuration converts a TTL in seconds, capping what a Duration holds.
func ttlDuration(ttl float64) time.Duration {
	const max = float64(1<<63-1) / float64(time.Second)
	if ttl >= max {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(ttl * float64(time.Second))
}

// cancelledLine is the history line of a run cancelled for cause, before
// it started or while running.
func cancelledLine(cause error, running bool) string {
	if running {
		return stamp("Cancelled while running: %s.", cancelReason(cause))
	}
	return stamp("Cancelled before it started: %s.", cancelReason(cause))
}

// cancelReason says why a run was cancelled, for its history.
func cancelReason(cause error) string {
	switch c := cause.(type) {
	case *spawnerEndedError:
		if c.reason != "" {
			return c.reason
		}
	case *parentEndedError:
		if c.reason != "" {
			return c.reason
		}
	}
	var req *requestedError
	switch {
	case errors.Is(cause, errCancelled):
		return "cancel() was called"
	case errors.As(cause, &req):
		return fmt.Sprintf("requested by %s at %s", req.req.By, req.req.At)
	case errors.Is(cause, errClosed):
		return "the runtime was closed"
	}
	return cause.Error()
}

// ending is how an attempt, or a job that never ran, ended.
type ending struct {
	status  string
	result  json.RawMessage
	arrays  []registry.ResultArray // the result's arrays, stored whole
	errText string                 // the error field: a backtrace for Starlark errors
	message string                 // the error's message, for retry_on and the exit summary
	lines   []string
	started time.Time     // zero when no attempt ran
	ended   time.Time     // when the attempt's body returned (or was given up)
	dur     time.Duration // monotonic: immune to clock steps
	attempt int           // the attempt's number; 0 when no attempt ran
	runErr  error
}

// finish records the job's end: the final status, result and error, the
// history lines, the finish time and duration; it completes the handle
// and forgets the run.
func (j *run) finish(e ending) {
	j.mu.Lock()
	if j.state == stateDone {
		j.mu.Unlock()
		return
	}
	release := j.endLocked()
	j.mu.Unlock()
	release()
	j.record(e)
}

// endLocked marks the job done (j.mu is held) and returns what lets go
// of its spawner and its context; call it once j.mu is released.
func (j *run) endLocked() func() {
	j.state = stateDone
	unwatch := j.unwatch
	return func() {
		unwatch()
		j.cancelBase(nil)
	}
}

// endChange returns the change that records e on a thread's record.
func (j *run) endChange(e ending) func(t *registry.Thread) {
	// Times are read off the wall clock, as the body's own time.now() is,
	// so a clock step during the attempt cannot put the finish before a
	// moment the body saw; it is never before the start either.
	finished := time.Now().Round(0)
	if !e.started.IsZero() {
		start := e.started.Round(0)
		finished = e.ended.Round(0)
		if finished.Before(start) {
			finished = start
		}
	}
	at := formatTime(finished)
	began := ""
	if !e.started.IsZero() {
		// A worker's claim wrote the claim's time: the body began now.
		began = formatTime(e.started)
	}
	ms := float64(e.dur.Microseconds()) / 1000
	return func(t *registry.Thread) {
		if began != "" {
			t.StartedAt = began
		}
		t.Status = e.status
		t.Result = e.result
		_ = t.SetResultArrays(e.arrays) // references the store made: valid
		t.Error = e.errText
		t.FinishedAt = at
		t.Cached = false
		t.CacheKey = j.cacheKey
		if e.attempt > 0 {
			t.DurationMS = ms
			endAttempt(t, e, at, ms)
		}
		t.History = append(t.History, e.lines...)
	}
}

// endAttempt sets the end of attempt e.attempt in t's attempts (adding it
// when its start never reached the registry).
func endAttempt(t *registry.Thread, e ending, at string, ms float64) {
	for i := len(t.Attempts) - 1; i >= 0; i-- {
		if a := &t.Attempts[i]; a.N == e.attempt {
			if !e.started.IsZero() {
				a.StartedAt = t.StartedAt
			}
			a.Status, a.FinishedAt, a.DurationMS = e.status, at, ms
			a.Error = e.errText
			if len(a.Error) > registry.MaxAttemptError {
				a.Error = a.Error[:registry.MaxAttemptError] + "… (truncated)"
			}
			return
		}
	}
}

// record persists the end of a job already marked done. The handle
// completes once the record is durable; the worker does not wait for
// that, so the next run's start groups with this end. A thread that
// another process cancelled while it was queued stays cancelled.
func (j *run) record(e ending) {
	j.runErr = e.runErr
	if e.attempt > 0 {
		j.logNote(e.attempt, "attempt %d %s", e.attempt, e.status)
	}
	j.closeOutputs() // every line is in the store before the end is
	change := j.endChange(e)
	var final *registry.Thread
	end := func(t *registry.Thread) error {
		t.History = append(t.History, j.takeLines()...)
		switch {
		case t.Status != registry.StatusCancelled || t.CancelRequest == nil:
			change(t)
		case e.status != registry.StatusCancelled:
			// Cancelled by a request while it was queued: that stands.
			t.History = append(t.History, stamp("The attempt that had started meanwhile ended %s; the thread stays cancelled.", e.status))
		}
		return nil
	}
	fn := func(tx *registry.Tx) error {
		if j.lease == nil { // one decode of the record, not two
			t, err := tx.Modify(j.id, j.tok, end)
			final = t
			return err
		}
		t, err := tx.Get(j.id)
		if err != nil {
			return err
		}
		end(t)
		if err := j.put(tx, t); err != nil {
			return err
		}
		final = t
		return nil
	}
	j.r.commits.async(fn, func(err error) {
		j.mu.Lock()
		change(j.rec)
		if final == nil || err != nil {
			final = j.rec.Clone()
		}
		j.mu.Unlock()
		j.completed(final, e.status, err)
	})
}

// completed ends a job whose end is recorded (err: it could not be):
// final becomes the handle's record, the cache learns a success, waiting
// dependents are told, and the handle completes.
func (j *run) completed(final *registry.Thread, status string, err error) {
	j.mu.Lock()
	j.final = final
	onEnd := j.onEnd
	dependents := j.dependents
	j.dependents = nil
	j.mu.Unlock()
	if err != nil {
		j.err = fmt.Errorf("thread %s ended (%s) but the registry could not record it: %w", j.id, status, err)
		j.r.warn("%v", j.err)
	}
	if final.Status == registry.StatusSucceeded && err == nil {
		j.r.cache.add(j.cacheKey, j.id)
	}
	j.r.setHot(j, false)
	j.r.noteEnd(final)
	j.r.forget(j)
	close(j.done)
	for _, d := range dependents {
		d.upstreamEnded(j.id, final)
	}
	if onEnd != nil {
		onEnd()
	}
}

// cancelRun stops a pending, waiting or running thread (cancel()).
func (j *run) cancelRun() error { return j.stop(errCancelled) }

// stop ends a job with cause: a running attempt has its context cancelled
// (its body stops at its next instruction); a queued, held, waiting or
// retrying job is taken out and recorded cancelled at once.
func (j *run) stop(cause error) error {
	j.mu.Lock()
	switch j.state {
	case stateDone:
		st := j.rec.Status
		j.mu.Unlock()
		return fmt.Errorf("thread %s has already ended (%s)", j.id, st)
	case stateRunning:
		if j.stopCause == nil {
			j.stopCause = cause
		}
		j.cancel(cause)
		j.mu.Unlock()
		return nil
	}
	if j.stopCause == nil {
		j.stopCause = cause
	}
	waiting := j.state == stateWaiting
	queued := !waiting && j.pool.remove(j)
	held := waiting || !j.submitted.Load()
	if j.stopRetry != nil {
		j.stopRetry()
		j.stopRetry = nil
	}
	retrying := len(j.rec.Attempts) > 0 && j.retried > 0
	if !queued && !held {
		j.mu.Unlock()
		return nil // the pool has just dispatched it: execute sees stopCause
	}
	release := j.endLocked()
	j.mu.Unlock()
	release()
	line := cancelledLine(cause, false)
	switch {
	case waiting:
		line = stamp("Cancelled while it waited for %s: %s.", registry.JoinIDs(j.after), cancelReason(cause))
	case retrying:
		line = stamp("Cancelled before its next attempt: %s.", cancelReason(cause))
	}
	j.record(ending{status: registry.StatusCancelled, errText: cause.Error(), lines: []string{line}, runErr: cause})
	return nil
}
