package natsstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/autonode/autonode/registry"
)

// Sweeper looks after the threads a work queue holds, on behalf of every
// worker: it marks the attempts whose lease expired crashed (cancelled,
// when a cancel was requested) and retries them by the thread's retry
// policy, enqueues pending threads that have no message (their spawner
// died between the commit and the publish, or a message was lost), and
// releases waiting threads whose after= dependencies succeeded (skipping
// them when one failed for good). Every worker runs one; each change is a
// compare-and-set on the record that checks what the sweeper saw, so two
// sweepers that act on the same thread at once change it once.
//
// Leases expire by observation, not by comparing clocks: a sweeper counts
// a lease expired when it has seen the same lease (worker, attempt and
// heartbeat count) for longer than the lease's TTL, on its own monotonic
// clock. Machines' clocks never need to agree, and a sweeper that has just
// started waits a whole TTL before it declares anything expired.
type Sweeper struct {
	q    *Queue
	opts SweeperOptions
	seen map[string]observed // by registry key
}

// SweeperOptions configures NewSweeper.
type SweeperOptions struct {
	// Grace is added to a lease's TTL before it counts as expired; 0
	// means a quarter of the TTL.
	Grace time.Duration
	// PendingAfter is how long a pending thread stays unchanged before
	// the sweeper checks that the queue has a message for it; 0 means
	// 5s.
	PendingAfter time.Duration
	// By names the sweeper in the history lines it writes ("worker ...").
	By string
	// Now is the clock (monotonic readings); nil means time.Now.
	Now func() time.Time
}

// observed is what a sweeper last saw of a thread, and since when.
type observed struct {
	tag   string
	since time.Time
	rec   *registry.Record // the mirror's record it was read from
	t     *registry.Thread
}

// SweepReport counts what one Sweep did.
type SweepReport struct {
	Expired   int // leases found expired (each attempt recorded crashed)
	Retried   int // of those, threads queued for another attempt
	Crashed   int // of those, threads that ended crashed (no retries left)
	Cancelled int // of those, threads that ended cancelled (a request was pending)
	Enqueued  int // pending threads without a message, enqueued again
	Released  int // waiting threads whose dependencies succeeded
	Skipped   int // waiting threads whose dependency failed for good
}

// Total is the number of threads the sweep changed or enqueued.
func (r SweepReport) Total() int { return r.Expired + r.Enqueued + r.Released + r.Skipped }

// NewSweeper returns a sweeper of the queue.
func (q *Queue) NewSweeper(o SweeperOptions) *Sweeper {
	if o.PendingAfter <= 0 {
		o.PendingAfter = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.By == "" {
		o.By = "a sweeper"
	}
	return &Sweeper{q: q, opts: o, seen: map[string]observed{}}
}

// errStale aborts a sweeper's change: the record is not what it saw.
var errStale = errors.New("the record changed since the sweeper looked")

// Sweep makes one pass over the threads the queue holds. It is not safe
// for concurrent use (one goroutine sweeps).
func (sw *Sweeper) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	keys := sw.q.s.m.feed.queuedKeys()
	now := sw.opts.Now()
	live := make(map[string]bool, len(keys))
	var errs []error
	var aged []*registry.Thread // pending long enough to look for its message
	for _, key := range keys {
		if ctx.Err() != nil {
			break
		}
		sw.q.s.m.mu.RLock()
		rec := sw.q.s.m.threads[key]
		sw.q.s.m.mu.RUnlock()
		if rec == nil {
			continue
		}
		o, seen := sw.seen[key]
		t := o.t
		if !seen || o.rec != rec { // changed since the last sweep: read it
			t = new(registry.Thread)
			if t.UnmarshalJSON(rec.Raw) != nil {
				continue
			}
		}
		if _, ok := QueueOf(t); !ok || registry.Final(t.Status) {
			continue
		}
		live[key] = true
		tag := tagOf(t)
		if !seen || o.tag != tag {
			o = observed{tag: tag, since: now}
		}
		o.rec, o.t = rec, t
		sw.seen[key] = o
		lease, leased := LeaseOf(t)
		age := now.Sub(o.since)
		var err error
		switch t.Status {
		case registry.StatusRunning:
			ttl := sw.q.ackWait
			if leased && lease.TTLms > 0 {
				ttl = lease.TTL()
			}
			grace := sw.opts.Grace
			if grace <= 0 {
				grace = ttl / 4
			}
			if age <= ttl+grace {
				continue
			}
			err = sw.expire(ctx, t.ID, tag, age, &rep)
		case registry.StatusPending:
			if age <= sw.opts.PendingAfter {
				continue
			}
			aged = append(aged, t)
			o.since = now // look again a while later
			sw.seen[key] = o
		case registry.StatusWaiting:
			err = sw.release(ctx, t, &rep)
		}
		if err != nil && !errors.Is(err, errStale) {
			errs = append(errs, err)
		}
	}
	for k := range sw.seen {
		if !live[k] {
			delete(sw.seen, k)
		}
	}
	if len(aged) > 0 && ctx.Err() == nil {
		if err := sw.requeue(ctx, aged, &rep); err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// tagOf is what a sweeper compares to tell whether a thread moved on: a
// running one's lease (its holder, attempt and heartbeats), the version
// of any other.
func tagOf(t *registry.Thread) string {
	if t.Status != registry.StatusRunning {
		return t.Status + "/" + strconv.FormatInt(t.Version, 10)
	}
	if l, ok := LeaseOf(t); ok {
		return fmt.Sprintf("running/%s/%d/%d", l.Worker, l.Attempt, l.Beat)
	}
	return "running/none"
}

// matches is the check of a sweeper's change: the record still has tag.
func matches(tag string) func(*registry.Thread) error {
	return func(stored *registry.Thread) error {
		if tagOf(stored) != tag {
			return errStale
		}
		return nil
	}
}

// expire ends the attempt of thread id whose lease expired: crashed, and
// then cancelled (a cancel was requested), pending for a retry (retries
// left), or crashed for good.
func (sw *Sweeper) expire(ctx context.Context, id registry.ID, tag string, age time.Duration, rep *SweepReport) error {
	var retry *Job
	var outcome string
	err := sw.q.s.Update(func(tx *registry.Tx) error {
		retry, outcome = nil, ""
		t, err := tx.Get(id)
		if err != nil {
			return errStale
		}
		if err := matches(tag)(t); err != nil {
			return err
		}
		qs, _ := QueueOf(t)
		lease, leased := LeaseOf(t)
		n, holder := lease.Attempt, lease.Worker
		if !leased {
			n, holder = len(t.Attempts), t.Owner
		}
		at := time.Now().UTC().Format(time.RFC3339Nano)
		why := fmt.Sprintf("crashed: the lease of worker %s on attempt %d expired (no heartbeat for %s)", holder, n, age.Round(time.Millisecond))
		for i := len(t.Attempts) - 1; i >= 0; i-- {
			if a := &t.Attempts[i]; a.N == n && !registry.Final(a.Status) {
				a.Status, a.Error, a.FinishedAt = registry.StatusCrashed, why, at
				break
			}
		}
		used := n - qs.First
		switch {
		case t.CancelRequest != nil:
			t.Status, t.Error, t.FinishedAt = registry.StatusCancelled, "cancelled: requested by "+t.CancelRequest.By, at
			t.AddHistory("Cancelled: the lease of worker %s on attempt %d expired and cancel was requested by %s (seen by %s).", holder, n, t.CancelRequest.By, sw.opts.By)
			LeaveQueue(t)
			outcome = registry.StatusCancelled
		case t.Retry != nil && used < t.Retry.Retries:
			d := t.Retry.DelayBefore(used+1) * (1 + 0.1*(2*rand.Float64()-1))
			delay := time.Duration(max(d, 0) * float64(time.Second))
			t.Status, t.Result, t.Owner = registry.StatusPending, nil, ""
			t.Error, t.FinishedAt = why, at
			ClearLease(t)
			SetQueue(t, QueueState{Attempt: n + 1, First: qs.First, Delay: delay.Seconds()})
			t.AddHistory("Attempt %d %s (seen by %s); retry %d of %d in %s.", n, why, sw.opts.By, used+1, t.Retry.Retries, delay.Round(time.Millisecond))
			j, _ := JobOf(t)
			retry = &j
			outcome = "retried"
		default:
			t.Status, t.Error, t.FinishedAt = registry.StatusCrashed, why, at
			t.AddHistory("Marked crashed: the lease of worker %s on attempt %d expired (no heartbeat for %s; seen by %s).", holder, n, age.Round(time.Millisecond), sw.opts.By)
			LeaveQueue(t)
			outcome = registry.StatusCrashed
		}
		return tx.PutRun(t, matches(tag))
	})
	if err != nil {
		return err
	}
	rep.Expired++
	switch outcome {
	case registry.StatusCancelled:
		rep.Cancelled++
	case registry.StatusCrashed:
		rep.Crashed++
	default:
		rep.Retried++
	}
	if retry != nil {
		return sw.q.Enqueue(ctx, *retry)
	}
	return nil
}

// requeue enqueues the pending threads ts again that the queue holds no
// message for.
func (sw *Sweeper) requeue(ctx context.Context, ts []*registry.Thread, rep *SweepReport) error {
	holding, err := sw.q.Holding(ctx)
	if err != nil {
		return err
	}
	var jobs []Job
	for _, t := range ts {
		j, _ := JobOf(t)
		j.Delay = 0 // it has waited long enough
		if subj, err := sw.q.subject(j); err == nil && holding[subj] == 0 {
			jobs = append(jobs, j)
		}
	}
	if err := sw.q.Enqueue(ctx, jobs...); err != nil {
		return err
	}
	rep.Enqueued += len(jobs)
	return nil
}

// release looks at the dependencies of waiting thread t: once all have
// succeeded (or were served from the cache) it becomes pending and is
// enqueued; when one ended otherwise (or is gone) it is skipped.
func (sw *Sweeper) release(ctx context.Context, t *registry.Thread, rep *SweepReport) error {
	var why string
deps:
	for _, a := range t.After {
		u, ok, err := sw.q.s.Peek(a)
		switch {
		case err != nil:
			return err
		case !ok:
			why = fmt.Sprintf("upstream thread %s is gone (deleted while this one waited for it)", a)
			break deps
		case u.Status == registry.StatusSucceeded || u.Status == registry.StatusCached:
			continue
		case !registry.Final(u.Status):
			return nil // still to run
		default:
			why = fmt.Sprintf("upstream thread %s (%s) ended %s", a, registry.PyRepr(u.Name), u.Status)
			if first := registry.ErrorSummary(u.Error); first != "" {
				why += ": " + first
			}
			break deps
		}
	}
	tag := tagOf(t)
	var job *Job
	err := sw.q.s.Update(func(tx *registry.Tx) error {
		job = nil
		s, err := tx.Get(t.ID)
		if err != nil {
			return errStale
		}
		if why != "" {
			s.Status, s.Error, s.FinishedAt = registry.StatusSkipped, why, time.Now().UTC().Format(time.RFC3339Nano)
			s.AddHistory("Skipped, not run: %s.", why)
			LeaveQueue(s)
		} else {
			s.Status = registry.StatusPending
			s.AddHistory("Dependencies met: %s succeeded.", registry.JoinIDs(t.After))
			j, _ := JobOf(s)
			job = &j
		}
		return tx.PutRun(s, matches(tag))
	})
	if err != nil {
		return err
	}
	if job == nil {
		rep.Skipped++
		return nil
	}
	rep.Released++
	return sw.q.Enqueue(ctx, *job)
}
