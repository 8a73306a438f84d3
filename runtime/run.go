package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/registry"
)

// defaultN is the size of the default work's matrices (the seed's).
const defaultN = 512

// abandonGrace is how long a run that reached its TTL (or was cancelled)
// gets to stop before its thread is recorded as ended anyway. A Go kernel
// that ignores its context keeps its worker slot until it returns.
var abandonGrace = 2 * time.Second

type runState int

const (
	statePending runState = iota
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
	why    error // why the parent's context ended
}

func (e *parentEndedError) Error() string {
	return fmt.Sprintf("its parent thread %s ended (%s)", e.parent, e.why)
}

func (e *parentEndedError) Is(target error) bool {
	return target == ErrCancelled || target == ErrInterrupted && errors.Is(e.why, ErrInterrupted)
}

// spawnerEndedError is the cause of a run stopped because the context
// it was spawned with (a script's top level, the embedder's) ended.
type spawnerEndedError struct{ why error }

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
	if p, ok := ctx.Value(runKey{}).(*run); ok {
		return &parentEndedError{parent: p.id, why: why}
	}
	return &spawnerEndedError{why: why}
}

// run is one thread submitted to this runtime, from creation to its end.
// It is the Handle that Spawn returns.
type run struct {
	r        *Runtime
	id       registry.ID
	tok      string // a token that opens the record
	fn       starlark.Callable
	args     starlark.Tuple
	kwargs   []starlark.Tuple
	sandbox  bool
	ttl      float64
	budgetMB float64
	budgetTx string // max_memory_mb as the seed prints it
	device   deviceChoice
	cacheKey string
	pool     *pool
	// base is the run's own context: the spawner's values, cancelled
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
	onEnd     func() // called once the run has ended (batch feeder)

	mu          sync.Mutex
	rec         *registry.Thread // the record as this run last wrote it
	state       runState
	stopCause   error // why stop was called, nil if it was not
	cancel      context.CancelCauseFunc
	ctx         context.Context
	ex          *accel.Exec
	elevated    map[string]bool
	logged      int      // lines added by appendLine
	pending     []string // appended lines not yet in the registry
	flushQueued bool

	done   chan struct{}
	final  *registry.Thread
	err    error // the registry could not record the end
	runErr error // why the run did not succeed (RunErr)
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

// Wait implements Handle. A thread body that waits gives its
// worker slot back while it blocks.
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

func nowRFC3339() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// update applies change to the run's record and queues the same change
// to the stored one, for the committer's next transaction; it does not
// wait. The committer applies one run's changes in order, so a later
// transition (the end of the run) never lands before an earlier one.
func (j *run) update(change func(t *registry.Thread)) {
	j.mu.Lock()
	change(j.rec)
	j.mu.Unlock()
	j.r.commits.post(func(tx *registry.Tx) error {
		t, err := tx.Get(j.id)
		if err != nil {
			return err
		}
		change(t)
		t.History = append(t.History, j.takeLines()...)
		return tx.Put(t, j.tok)
	})
}

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
	return tx.Put(t, j.tok)
}

// execute runs the thread on the goroutine the pool started for it.
func (j *run) execute() {
	r := j.r
	j.mu.Lock()
	if j.state != statePending {
		j.mu.Unlock()
		j.pool.done()
		return
	}
	base, cancel := context.WithCancelCause(j.base)
	stopClose := context.AfterFunc(r.ctx, func() { cancel(errClosed) })
	ctx, cancelTTL := context.WithTimeoutCause(base, ttlDuration(j.ttl), &ttlError{j.id, j.ttl})
	ctx = context.WithValue(ctx, runKey{}, j)
	j.ctx, j.cancel, j.state = ctx, cancel, stateRunning
	if j.stopCause != nil {
		cancel(j.stopCause)
	}
	unwatch := j.unwatch
	budget, _ := accel.NewBudgetMB(j.budgetMB)
	j.ex = accel.New(accel.Options{Device: j.device.dev, Budget: budget})
	j.mu.Unlock()
	defer func() {
		cancel(errRunEnded) // first: the children it left running end with it
		cancelTTL()
		stopClose()
		unwatch()
		j.cancelBase(nil)
	}()

	if ctx.Err() != nil { // stopped, timed out or closed while it was queued
		j.ex.Close()
		cause := context.Cause(ctx)
		status := classify(cause, nil)
		line := cancelledLine(ctx, false)
		if status == registry.StatusTimedOut {
			line = stamp("Timed out before it started: %s.", cause)
		}
		j.finish(status, nil, cause.Error(), []string{line}, 0, runError(status, cause, nil))
		j.pool.done()
		return
	}
	if !j.sandbox && r.opts.ForbidUnsandboxed {
		j.ex.Close()
		err := fmt.Errorf("thread %s is unsandboxed: %w", j.id, ErrUnsandboxedForbidden)
		j.finish(registry.StatusFailed, nil, err.Error(), []string{stamp("Refused to run: %s.", err)}, 0, err)
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
	start := time.Now()
	startLine := stamp("Running %s on %s (%s).", what, runLabel(j.device), mode)
	devName := j.device.dev.Name()
	// The start is queued, not waited for: the worker's slot is not idle
	// during an fsync, and starts and ends of many runs share commits.
	j.update(func(t *registry.Thread) {
		t.Status = registry.StatusRunning
		t.StartedAt = nowRFC3339()
		t.Owner = r.owner
		t.DeviceUsed = devName
		t.History = append(t.History, startLine)
	})

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
	dur := time.Since(start)

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
	rerr := runError(status, cause, out.err)
	switch status {
	case registry.StatusSucceeded:
		lines := append(out.notes, stamp("%s computation complete.", label))
		j.finish(status, out.result, "", lines, dur, nil)
	case registry.StatusTimedOut:
		msg := cause.Error() + "; stopped"
		j.finish(status, nil, msg, []string{stamp("Timed out: %s.", msg)}, dur, rerr)
	case registry.StatusCancelled:
		j.finish(status, nil, cause.Error(), []string{cancelledLine(ctx, true)}, dur, rerr)
	default:
		msg, detail := errorText(out.err)
		j.finish(status, nil, detail, []string{stamp("%s computation failed %s", label, sentence(msg))}, dur, rerr)
	}
	if abandoned {
		go func() {
			<-results
			j.ex.Close()
			j.pool.done()
		}()
		return
	}
	j.ex.Close()
	j.pool.done()
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

func cancelledLine(ctx context.Context, running bool) string {
	why := "cancel() was called"
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errCancelled):
	case errors.Is(cause, errClosed):
		why = "the runtime was closed"
	default:
		why = cause.Error()
	}
	if running {
		return stamp("Cancelled while running: %s.", why)
	}
	return stamp("Cancelled before it started: %s.", why)
}

// sentence ends msg with a period, as the seed's history lines do.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// errorText returns an error's message and the text to store in the
// record's error field (the backtrace for Starlark errors).
func errorText(err error) (msg, detail string) {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return ee.Msg, ee.Backtrace()
	}
	return err.Error(), err.Error()
}

// outcome is what a body produced.
type outcome struct {
	result json.RawMessage
	notes  []string // history lines to add before the completion line
	err    error
}

// body runs the thread's work: its Starlark function, or the default
// work. cancel cancels ctx, the run's context (the guard stops the body
// with it when a limit is reached).
func (j *run) body(ctx context.Context, cancel context.CancelCauseFunc) (out outcome) {
	defer func() {
		if p := recover(); p != nil {
			out = outcome{err: builtins.Panicked("", p)} // counted: autonode run fails
		}
	}()
	if j.fn == nil {
		return j.defaultWork(ctx)
	}
	th, done := j.r.newBodyThread(j, ctx, cancel)
	v, err := starlark.Call(th, j.fn, j.args, j.kwargs)
	done()
	if err != nil {
		return outcome{err: err}
	}
	res, err := encodeResult(v)
	if err != nil {
		return outcome{err: fmt.Errorf("result of %s: %w", j.fn.Name(), err)}
	}
	return outcome{result: res}
}

// encodeResult converts a body's return value to the JSON stored as the
// thread's result; None stores nothing.
func encodeResult(v starlark.Value) (json.RawMessage, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	g, err := builtins.FromStarlark(v)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := writeJSON(&b, g, 0); err != nil {
		return nil, err
	}
	raw := json.RawMessage(b.Bytes())
	if len(raw) > registry.MaxRecordBytes/2 {
		return nil, fmt.Errorf("the result is %d bytes as JSON; at most %d are allowed", len(raw), registry.MaxRecordBytes/2)
	}
	return raw, nil
}

// defaultWork is the seed's CPU work, done for real: a 512×512 float64
// matrix product, checked first against the memory budget (3·n²·8 bytes).
func (j *run) defaultWork(ctx context.Context) outcome {
	n := defaultN
	need := int64(3 * n * n * 8)
	if err := j.ex.Budget().Check(need); err != nil {
		return outcome{err: &seedError{fmt.Sprintf("Thread %s exceeds memory budget. Needs %.2fMB, allowed %sMB", j.id, float64(need)/(1<<20), j.budgetTx), err}}
	}
	start := time.Now()
	a, err := j.ex.Rand(accel.Float64, 1, n, n)
	if err != nil {
		return outcome{err: err}
	}
	b, err := j.ex.Rand(accel.Float64, 2, n, n)
	if err != nil {
		return outcome{err: err}
	}
	c, err := j.ex.Matmul(ctx, a, b)
	if err != nil {
		return outcome{err: err}
	}
	sum, err := j.ex.Sum(ctx, c)
	if err != nil {
		return outcome{err: err}
	}
	secs := time.Since(start).Seconds()
	gflops := 0.0
	if secs > 0 {
		gflops = 2 * float64(n) * float64(n) * float64(n) / secs / 1e9
	}
	res := map[string]any{
		"kernel": "matmul", "n": n, "dtype": "float64", "device": j.ex.Device().Name(),
		"checksum": sum, "seconds": round(secs, 6), "gflops": round(gflops, 3),
	}
	var raw bytes.Buffer
	if err := writeJSON(&raw, res, 0); err != nil {
		return outcome{err: err}
	}
	note := stamp("Matmul %dx%d float64: checksum %s, %.3f GFLOP/s (%.1f ms).", n, n, registry.PyFloat(sum), gflops, secs*1000)
	return outcome{result: raw.Bytes(), notes: []string{note}}
}

// seedError is an error with the seed's wording and a cause errors.Is
// can find.
type seedError struct {
	msg   string
	cause error
}

func (e *seedError) Error() string { return e.msg }
func (e *seedError) Unwrap() error { return e.cause }

func round(f float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	return float64(int64(f*p+0.5)) / p
}

// finish records the run's end: the final status, result and error, the
// history lines, the finish time and duration; runErr is what RunErr
// will report. It completes the handle and forgets the run.
func (j *run) finish(status string, result json.RawMessage, errText string, lines []string, dur time.Duration, runErr error) {
	j.mu.Lock()
	if j.state == stateDone {
		j.mu.Unlock()
		return
	}
	j.state = stateDone
	j.mu.Unlock()
	j.record(status, result, errText, lines, dur, runErr)
}

// record persists the end of a run already marked done.
func (j *run) record(status string, result json.RawMessage, errText string, hist []string, dur time.Duration, runErr error) {
	j.runErr = runErr
	finished := nowRFC3339()
	ms := float64(dur.Microseconds()) / 1000
	change := func(t *registry.Thread) {
		t.Status = status
		t.Result = result
		t.Error = errText
		t.FinishedAt = finished
		t.DurationMS = ms
		t.Cached = false
		t.CacheKey = j.cacheKey
		t.History = append(t.History, hist...)
	}
	var final *registry.Thread
	fn := func(tx *registry.Tx) error {
		t, err := tx.Get(j.id)
		if err != nil {
			return err
		}
		t.History = append(t.History, j.takeLines()...)
		change(t)
		if err := tx.Put(t, j.tok); err != nil {
			return err
		}
		final = t
		return nil
	}
	// The handle completes once the record is durable; the worker does
	// not wait for that, so the next run's start groups with this end.
	j.r.commits.async(fn, func(err error) {
		j.mu.Lock()
		change(j.rec)
		if final == nil || err != nil {
			final = j.rec.Clone()
		}
		j.final = final
		onEnd := j.onEnd
		j.mu.Unlock()
		if err != nil {
			j.err = fmt.Errorf("thread %s ended (%s) but the registry could not record it: %w", j.id, status, err)
			j.r.warn("%v", j.err)
		}
		if status == registry.StatusSucceeded && err == nil {
			j.r.cache.add(j.cacheKey, j.id)
		}
		j.r.forget(j)
		close(j.done)
		if onEnd != nil {
			onEnd()
		}
	})
}

// cancelRun stops a pending or running thread (cancel()).
func (j *run) cancelRun() error { return j.stop(errCancelled) }

// stop ends a pending or running thread with cause: a running one has
// its context cancelled (its body stops at its next instruction); a
// queued one is taken out of the queue and recorded cancelled at once.
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
	queued := j.pool.remove(j)
	held := !j.submitted.Load()
	if queued || held {
		j.state = stateDone
	}
	unwatch := j.unwatch
	j.mu.Unlock()
	if queued || held {
		unwatch()
		j.cancelBase(nil)
		line := stamp("Cancelled before it started: cancel() was called.")
		if cause != errCancelled {
			line = stamp("Cancelled before it started: %s.", cause)
		}
		j.record(registry.StatusCancelled, nil, cause.Error(), []string{line}, 0, cause)
	}
	// Otherwise the pool has just dispatched it: execute sees stopCause.
	return nil
}

// writeJSON encodes a JSON-compatible Go value with sorted keys, writing
// floats as Python does (1000.0, 1e-05) so that a float result reads back
// as a float.
func writeJSON(b *bytes.Buffer, v any, depth int) error {
	if depth > registry.MaxDepth {
		return fmt.Errorf("nested deeper than %d levels", registry.MaxDepth)
	}
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%v has no JSON form", x)
		}
		b.WriteString(registry.PyFloat(x))
	case float32:
		return writeJSON(b, float64(x), depth)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := slices.Sorted(maps.Keys(x))
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, k, depth+1); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := writeJSON(b, x[k], depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	return nil
}
