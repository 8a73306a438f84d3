package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
)

// A Worker takes threads from a cluster's work queue and runs them in a
// Runtime of its own: `autonode worker`. For each message it fetches
// (CRITICAL before CORE before BASE, for the device classes it serves)
// it claims the attempt with a compare-and-set on the record (pending →
// running, with its lease), rebuilds the body from the spec the thread
// carries, and runs it as the spawning process would have: TTL, sandbox,
// memory budget, retries, cancel requests (each running thread's record
// is watched, so a cancel reaches it within a second), log lines and the
// result. Every write is fenced by the attempt it claimed: once its lease
// is gone (it stalled past it, and a sweeper recorded the attempt crashed
// and queued the next), nothing it writes for that attempt is accepted,
// so a superseded worker never records a second success. While an
// attempt runs the worker renews its lease and tells JetStream that the
// message is in progress, a third of the lease apart. A failed attempt
// with retries left is queued again for any worker; a crashed one is
// retried by the sweeper that every worker runs.
//
// Execution is at least once: a worker that is cut off, or stalls, after
// its body has run but before its success is recorded leaves an attempt
// that runs again. Sandboxed bodies are pure, so that is safe; an
// unsandboxed body that changes the world must be idempotent.
type Worker struct {
	opts  WorkerOptions
	r     *Runtime
	store *natsstore.Store
	q     *natsstore.Queue
	sw    *natsstore.Sweeper
	id    string // owner text: worker=<name> pid=... host=... start=...
	lease time.Duration
	beat  time.Duration

	specs specCache
	srcMu sync.Mutex
	srcs  map[string][]byte

	mu    sync.Mutex
	held  map[*workLease]struct{}
	freed chan struct{} // a held attempt ended

	stats workerCounters
}

// WorkerOptions configures NewWorker.
type WorkerOptions struct {
	// Runtime configures the runtime the threads run in. Its registry
	// must be on NATS (Store a *natsstore.Store, or NATS set). Remote is
	// ignored; CPUWorkers defaults to Concurrency.
	Runtime Options
	// Name names the worker in records and messages; "" means
	// <host>-<pid>.
	Name string
	// Devices are the device classes it takes threads for: "cpu" and
	// "gpu" (a worker without a GPU runs gpu threads on its CPU, with a
	// history note, as a local run does). nil means both.
	Devices []string
	// Concurrency bounds the threads it runs at once; 0 means the number
	// of cores.
	Concurrency int
	// Lease is how long an attempt stays this worker's without a renewal
	// (it renews a third of that apart); 0 means natsstore.DefaultLease.
	Lease time.Duration
	// SweepEvery is how often its sweeper looks; 0 means a quarter of the
	// lease, between 100ms and 2s.
	SweepEvery time.Duration
	// Log receives the worker's notices (claims refused, fenced writes,
	// sweeps); nil discards them.
	Log io.Writer
}

// WorkerStats counts what a worker did.
type WorkerStats struct {
	Claimed   int64 // attempts it claimed
	Succeeded int64 // attempts that ended succeeded (recorded)
	Ended     int64 // attempts that ended otherwise, or were queued again
	Fenced    int64 // attempts whose end it could not record: the lease was gone
	Obsolete  int64 // messages that named an attempt the record no longer holds
	Swept     int64 // threads its sweeper changed or enqueued
}

type workerCounters struct {
	claimed, succeeded, ended, fenced, obsolete, swept atomic.Int64
}

// workLease is one attempt a worker holds.
type workLease struct {
	w     *Worker
	d     *natsstore.Delivery
	id    registry.ID
	n     int // the attempt
	first int // the job's first attempt
	j     *run
}

// NewWorker opens the registry and the work queue and returns a worker
// ready to Run.
func NewWorker(o WorkerOptions) (*Worker, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = goruntime.NumCPU()
	}
	if o.Lease <= 0 {
		o.Lease = natsstore.DefaultLease
	}
	if o.Lease < 300*time.Millisecond {
		return nil, fmt.Errorf("worker: lease %s: want at least 300ms (it is renewed a third of it apart)", o.Lease)
	}
	if o.Devices == nil {
		o.Devices = natsstore.DeviceClasses
	}
	for _, d := range o.Devices {
		if !slices.Contains(natsstore.DeviceClasses, d) {
			return nil, fmt.Errorf("worker: device class %q: want one of %s", d, strings.Join(natsstore.DeviceClasses, ", "))
		}
	}
	me := owner.Self()
	if o.Name == "" {
		o.Name = fmt.Sprintf("%s-%d", me.Host, me.PID)
	}
	if strings.ContainsAny(o.Name, " \t\n=") {
		return nil, fmt.Errorf("worker: name %q: no spaces or '='", o.Name)
	}
	ro := o.Runtime
	ro.Remote = false
	if ro.CPUWorkers <= 0 {
		ro.CPUWorkers = o.Concurrency
	}
	r, err := New(ro)
	if err != nil {
		return nil, err
	}
	s, ok := r.store.(*natsstore.Store)
	if !ok {
		r.Close()
		return nil, fmt.Errorf("worker: %w (pass --nats URL or set Options.NATS)", ErrRemoteNeedsNATS)
	}
	q, err := s.Queue(natsstore.QueueOptions{Lease: o.Lease})
	if err != nil {
		r.Close()
		return nil, err
	}
	w := &Worker{opts: o, r: r, store: s, q: q, lease: o.Lease, srcs: map[string][]byte{},
		held: map[*workLease]struct{}{}, freed: make(chan struct{}, 1)}
	w.id = workerOwnerPrefix + o.Name + " " + me.String()
	w.beat = min(o.Lease, q.AckWait()) / 3
	w.sw = q.NewSweeper(natsstore.SweeperOptions{By: "worker " + o.Name})
	return w, nil
}

// Name is the worker's name.
func (w *Worker) Name() string { return w.opts.Name }

// ID is the owner text the worker writes into the records it runs.
func (w *Worker) ID() string { return w.id }

// Stats returns what the worker did so far.
func (w *Worker) Stats() WorkerStats {
	c := &w.stats
	return WorkerStats{Claimed: c.claimed.Load(), Succeeded: c.succeeded.Load(), Ended: c.ended.Load(),
		Fenced: c.fenced.Load(), Obsolete: c.obsolete.Load(), Swept: c.swept.Load()}
}

func (w *Worker) logf(format string, args ...any) {
	if w.opts.Log != nil {
		fmt.Fprintf(w.opts.Log, "autonode worker %s: "+format+"\n", append([]any{w.opts.Name}, args...)...)
	}
}

// Run takes and runs threads until ctx ends; then it takes no more, waits
// for the attempts it holds to end (their TTLs bound the wait), and
// closes its runtime. Cancel drain to stop waiting: the attempts still
// running are left to their leases (the sweeper retries them).
func (w *Worker) Run(ctx, drain context.Context) error {
	if drain == nil {
		drain = context.Background()
	}
	wake, unsub, err := w.q.Wake()
	if err != nil {
		w.r.Close()
		return err
	}
	defer unsub()
	bg, stopBg := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.heartbeats(bg) }()
	go func() { defer wg.Done(); w.sweeps(bg) }()
	failures := 0
	for ctx.Err() == nil {
		free := 2*w.opts.Concurrency - w.heldCount()
		if free <= 0 {
			select {
			case <-w.freed:
			case <-ctx.Done():
			}
			continue
		}
		ds, err := w.q.Fetch(ctx, w.opts.Devices, min(free, 256))
		if err != nil {
			if failures++; failures == 1 || failures%20 == 0 {
				w.logf("fetch: %v (trying again)", err)
			}
			pause(ctx, 500*time.Millisecond)
			continue
		}
		failures = 0
		if len(ds) == 0 {
			select {
			case <-wake:
			case <-w.freed:
			case <-time.After(250 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		w.take(ds)
	}
	// Drain: the attempts held run to their end.
	for w.heldCount() > 0 {
		select {
		case <-w.freed:
		case <-time.After(100 * time.Millisecond):
		case <-drain.Done():
			w.logf("stopped with %d attempt(s) running: their leases expire and the sweeper retries them", w.heldCount())
			stopBg()
			wg.Wait()
			return nil // Close would wait for them
		}
	}
	stopBg()
	wg.Wait()
	return w.r.Close()
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func (w *Worker) heldCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.held)
}

// take claims the attempts that ds name, in one transaction, and starts
// the ones it got.
func (w *Worker) take(ds []*natsstore.Delivery) {
	var claim []*natsstore.Delivery
	for _, d := range ds {
		if d.Delay > 0 && d.Delivered == 1 {
			_ = d.Nak(d.Delay) // a retry's delay: the server holds it back
			continue
		}
		claim = append(claim, d)
	}
	if len(claim) == 0 {
		return
	}
	device := func(t *registry.Thread) string { return chooseDevice(t.Device).dev.Name() }
	now := time.Now()
	got := make([]*registry.Thread, len(claim))
	errs := make([]error, len(claim))
	err := w.store.Update(func(tx *registry.Tx) error {
		for i, d := range claim {
			got[i], errs[i] = natsstore.Claim(tx, d.ID, d.Attempt, w.id, w.lease, device, now)
		}
		return nil
	})
	if err != nil {
		// The commit's fate may be unknown: adopt the claims the registry
		// holds for this worker, put the other messages back.
		w.logf("claim %d attempt(s): %v", len(claim), err)
		_ = w.store.View(func(tx *registry.Tx) error {
			for i, d := range claim {
				got[i], errs[i] = nil, err
				t, gerr := tx.Get(d.ID)
				if gerr != nil {
					continue
				}
				if l, ok := natsstore.LeaseOf(t); ok && l.Worker == w.id && l.Attempt == d.Attempt && t.Status == registry.StatusRunning {
					got[i], errs[i] = t, nil
				}
			}
			return nil
		})
	}
	for i, d := range claim {
		switch {
		case errs[i] == nil:
			w.stats.claimed.Add(1)
			w.start(d, got[i])
		case errors.Is(errs[i], natsstore.ErrNotClaimable):
			w.stats.obsolete.Add(1)
			_ = d.Term()
		default:
			_ = d.Nak(time.Second)
		}
	}
}

// start runs a claimed attempt.
func (w *Worker) start(d *natsstore.Delivery, t *registry.Thread) {
	q, _ := natsstore.QueueOf(t)
	l := &workLease{w: w, d: d, id: t.ID, n: d.Attempt, first: q.First}
	if l.first <= 0 || l.first > l.n {
		l.first = l.n
	}
	w.mu.Lock()
	w.held[l] = struct{}{}
	w.mu.Unlock()
	fn, args, kwargs, retryOn, err := w.rebuild(t)
	j := w.r.leasedRun(t, l)
	if err := w.r.enter("worker"); err != nil {
		w.release(l)
		_ = d.Nak(time.Second)
		return
	}
	w.mu.Lock() // heartbeats reads it
	l.j = j
	w.mu.Unlock()
	j.onEnd = func() { w.ended(l) }
	w.r.mu.Lock()
	w.r.runs[j.id] = j
	w.r.mu.Unlock()
	w.r.monitor.start()
	if err != nil {
		why := fmt.Errorf("the body could not be rebuilt on worker %s: %w", w.opts.Name, err)
		j.finish(ending{status: registry.StatusFailed, errText: why.Error(), message: why.Error(), attempt: l.n,
			started: time.Now(), lines: []string{stamp("Not started: %s.", why)}, runErr: why})
		return
	}
	j.fn, j.args, j.kwargs, j.retryOn = fn, args, kwargs, retryOn
	j.submitted.Store(true)
	j.pool.submit(j)
}

// rebuild returns the body, arguments and retry_on that t carries.
func (w *Worker) rebuild(t *registry.Thread) (fn starlark.Callable, args starlark.Tuple, kwargs []starlark.Tuple, retryOn starlark.Callable, err error) {
	enc, ok := t.RunExtra[bodyField]
	if !ok {
		return nil, nil, nil, nil, nil // the default work
	}
	var spec bodySpec
	if err := json.Unmarshal(enc, &spec); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("its body spec: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return w.r.decodeBody(ctx, &spec, w.source, &w.specs)
}

// source returns a source by digest, from the cluster, once.
func (w *Worker) source(ctx context.Context, digest string) ([]byte, error) {
	w.srcMu.Lock()
	src, ok := w.srcs[digest]
	w.srcMu.Unlock()
	if ok {
		return src, nil
	}
	src, err := w.store.Source(ctx, digest)
	if err != nil {
		return nil, err
	}
	w.srcMu.Lock()
	if len(w.srcs) >= 256 {
		w.srcs = map[string][]byte{}
	}
	w.srcs[digest] = src
	w.srcMu.Unlock()
	return src, nil
}

// ended is called once an attempt has ended and its end is recorded (or
// was refused): the message is acknowledged (or, when this worker no
// longer held the attempt, terminated: the record is someone else's).
func (w *Worker) ended(l *workLease) {
	j := l.j
	switch {
	case j.err != nil && errors.Is(j.err, natsstore.ErrFenced):
		w.stats.fenced.Add(1)
		w.logf("thread %s attempt %d: %v", l.id, l.n, j.err)
		_ = l.d.Term()
	case j.err != nil:
		// Not recorded (the registry was unavailable): the lease runs
		// out and the sweeper takes it from there.
		w.stats.ended.Add(1)
		w.logf("thread %s attempt %d: %v", l.id, l.n, j.err)
		_ = l.d.Term()
	default:
		if j.final != nil && j.final.Status == registry.StatusSucceeded {
			w.stats.succeeded.Add(1)
		} else {
			w.stats.ended.Add(1)
		}
		_ = l.d.Ack()
	}
	w.release(l)
}

func (w *Worker) release(l *workLease) {
	w.mu.Lock()
	delete(w.held, l)
	w.mu.Unlock()
	select {
	case w.freed <- struct{}{}:
	default:
	}
}

// heartbeats keeps the held attempts: every beat it tells JetStream their
// messages are in progress and renews their leases (one registry commit
// for all of them). An attempt whose renewal is fenced is stopped: it is
// no longer this worker's.
func (w *Worker) heartbeats(ctx context.Context) {
	t := time.NewTicker(w.beat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		type held struct {
			l *workLease
			j *run // nil while its body is being rebuilt
		}
		w.mu.Lock()
		ls := make([]held, 0, len(w.held))
		for l := range w.held {
			ls = append(ls, held{l, l.j})
		}
		w.mu.Unlock()
		for _, h := range ls {
			_ = h.l.d.InProgress()
			if h.j != nil {
				h.l.renew(h.j)
			}
		}
	}
}

// renew posts the renewal of l's lease (with the new log lines of j, its
// run).
func (l *workLease) renew(j *run) {
	j.r.commits.async(func(tx *registry.Tx) error {
		t, err := tx.Get(l.id)
		if err != nil {
			return err
		}
		lease, _ := natsstore.LeaseOf(t)
		lease.Beat++
		natsstore.SetLease(t, lease)
		t.History = append(t.History, j.takeLines()...)
		return tx.PutRun(t, natsstore.Fence(l.w.id, l.n))
	}, func(err error) {
		if errors.Is(err, natsstore.ErrFenced) {
			_ = j.stop(&leaseLostError{err: err})
		}
	})
}

// leaseLostError is the cause of a run stopped because its worker no
// longer holds its attempt.
type leaseLostError struct{ err error }

func (e *leaseLostError) Error() string {
	return "the lease on this attempt was lost: " + e.err.Error()
}

func (e *leaseLostError) Is(target error) bool { return target == ErrCancelled }

// sweeps runs the sweeper.
func (w *Worker) sweeps(ctx context.Context) {
	every := w.opts.SweepEvery
	if every <= 0 {
		every = min(max(w.lease/4, 100*time.Millisecond), 2*time.Second)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := w.sw.Sweep(ctx)
		if n := rep.Total(); n > 0 {
			w.stats.swept.Add(int64(n))
			w.logf("sweep: %d lease(s) expired (%d retried, %d crashed, %d cancelled), %d pending thread(s) enqueued again, %d released, %d skipped",
				rep.Expired, rep.Retried, rep.Crashed, rep.Cancelled, rep.Enqueued, rep.Released, rep.Skipped)
		}
		if err != nil && ctx.Err() == nil {
			if failures++; failures == 1 || failures%20 == 0 {
				w.logf("sweep: %v", err)
			}
		} else {
			failures = 0
		}
	}
}

// leasedRun makes the run of an attempt a worker claimed: the fields come
// from the record, the body from its spec (set by the caller).
func (r *Runtime) leasedRun(t *registry.Thread, l *workLease) *run {
	budgetMB, budgetTx, err := memoryBudget(t.Metadata)
	if err != nil {
		budgetMB, budgetTx = registry.DefaultMaxMemoryMB, fmt.Sprint(registry.DefaultMaxMemoryMB)
	}
	_, asked := t.Metadata["max_memory_mb"]
	j := &run{
		r: r, id: t.ID, sandbox: t.Sandbox, ttl: t.TTL, budgetMB: budgetMB, budgetTx: budgetTx, memoryAsked: asked,
		device: chooseDevice(t.Device), cacheKey: t.CacheKey, rank: stageRank(t.Stage), priority: t.Priority,
		seq: r.seq.Add(1), heapIdx: -1, done: make(chan struct{}), unwatch: func() bool { return false },
		lease: l, rec: t.Clone(), retried: l.n - l.first,
	}
	if t.Retry != nil {
		j.retry = *t.Retry
	}
	j.spawner = context.Background()
	j.base, j.cancelBase = context.WithCancelCause(context.Background())
	j.tree = &spawnTree{root: t.ID}
	j.pool = r.cpuPool
	if j.device.gpu {
		j.pool = r.gpuPool
	}
	return j
}

// attemptNumber is the number of the attempt execute is about to run.
func (j *run) attemptNumber() int {
	if j.lease != nil {
		return j.lease.n
	}
	return len(j.rec.Attempts) + 1
}

// put writes t, the thread's record as this run changed it: with the
// run's token, or, for an attempt a worker holds, as its run state fenced
// by its lease (a final status takes the thread out of the queue).
func (j *run) put(tx *registry.Tx, t *registry.Thread) error {
	l := j.lease
	if l == nil {
		return tx.Put(t, j.tok)
	}
	if registry.Final(t.Status) {
		natsstore.LeaveQueue(t)
	}
	return tx.PutRun(t, natsstore.Fence(l.w.id, l.n))
}

// beginLeased records the start of a worker's attempt: the claim wrote
// it to the registry already, so the start line goes with the next write
// (a renewal or the end).
func (j *run) beginLeased(line string) {
	j.mu.Lock()
	j.rec.History = append(j.rec.History, line)
	j.pending = append(j.pending, line)
	j.mu.Unlock()
	j.r.setHot(j, true) // the monitor looks for cancel requests every tick
}

// requeue records the end of a worker's attempt e and queues the next
// attempt, after delay, for any worker; the run ends here.
func (l *workLease) requeue(j *run, e ending, delay time.Duration) {
	k := j.retried + 1
	e.lines = append(e.lines, stamp("Attempt %d %s; retry %d of %d in %s, queued for any worker.", e.attempt, e.status, k, j.retry.Retries, delay.Round(time.Millisecond)))
	change := j.endChange(e)
	again := func(t *registry.Thread) {
		change(t)
		t.Status, t.Result, t.Owner = registry.StatusPending, nil, ""
		natsstore.ClearLease(t)
		natsstore.SetQueue(t, natsstore.QueueState{Attempt: l.n + 1, First: l.first, Delay: delay.Seconds()})
	}
	var job natsstore.Job
	j.r.commits.async(func(tx *registry.Tx) error {
		t, err := tx.Get(j.id)
		if err != nil {
			return err
		}
		t.History = append(t.History, j.takeLines()...)
		again(t)
		job, _ = natsstore.JobOf(t)
		return tx.PutRun(t, natsstore.Fence(l.w.id, l.n))
	}, func(err error) {
		if err == nil {
			if qerr := l.w.q.Enqueue(context.Background(), job); qerr != nil {
				l.w.logf("thread %s: queue attempt %d: %v (the sweeper queues it again)", j.id, l.n+1, qerr)
			}
		}
		j.mu.Lock()
		again(j.rec)
		final := j.rec.Clone()
		release := j.endLocked()
		j.mu.Unlock()
		release()
		j.runErr = e.runErr
		j.completed(final, registry.StatusPending, err)
	})
}
