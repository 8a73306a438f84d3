package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
)

// Threads left to workers (Options.Remote). spawn(), spawn_batch() and
// run() validate and create the record as usual, with the body's spec
// (transport.go) and a queue marker in its run state and no owner; once
// the record is committed the attempt is published on the work queue
// (registry/natsstore), and the handle waits on the record, which this
// process's copy of the registry follows as workers write it. Waiting
// threads (after=) are released by the workers' sweeper. The record is
// the truth: a message lost between the commit and the publish is
// published again by the sweeper.

// ErrRemoteNeedsNATS: Options.Remote asks for workers, which only a
// registry on NATS JetStream has.
var ErrRemoteNeedsNATS = errors.New("threads can be left to workers only on a NATS JetStream registry")

// workerOwnerPrefix starts the owner text of a thread a worker runs: its
// liveness is its lease, which the workers' sweeper watches, not its pid.
const workerOwnerPrefix = "worker="

// remoteState is what a runtime that leaves its threads to workers holds.
type remoteState struct {
	store *natsstore.Store
	queue *natsstore.Queue

	mu       sync.Mutex
	uploaded map[string]bool // source digests stored in the cluster

	enq *enqueuer
}

// remotePlan is the part of a spawn's plan that travels.
type remotePlan struct {
	spec    json.RawMessage
	sources map[string][]byte
}

// openRemote sets up Options.Remote: the registry must be a NATS store,
// whose work queue it opens.
func (r *Runtime) openRemote() error {
	s, ok := r.store.(*natsstore.Store)
	if !ok {
		return fmt.Errorf("runtime: Options.Remote: %w (run with --nats URL or set Options.NATS)", ErrRemoteNeedsNATS)
	}
	q, err := s.Queue(natsstore.QueueOptions{})
	if err != nil {
		return err
	}
	r.remote = &remoteState{store: s, queue: q, uploaded: map[string]bool{}, enq: newEnqueuer(q, r.warn)}
	return nil
}

// closeRemote stops the enqueuer once every thread is published.
func (r *Runtime) closeRemote() {
	if r.remote != nil {
		r.remote.enq.close()
	}
}

// planRemote encodes the body of a spawn that is meant for workers: a
// top-level spawn of a runtime with Options.Remote. A body, argument or
// captured value that cannot travel refuses the spawn.
func (r *Runtime) planRemote(p *plan, gr *globalsReader) error {
	if r.remote == nil || p.parent != nil || p.req.DryRun {
		return nil
	}
	spec, sources, err := r.encodeBody(p.req, gr)
	if err != nil {
		return fmt.Errorf("%s: %w (threads of `autonode run --remote` run on workers; spawn it from a run without --remote to keep it here)", p.fn, err)
	}
	p.remote = &remotePlan{spec: raw(spec), sources: sources}
	return r.upload(p.remote.sources)
}

// upload stores the sources a spec names, once each.
func (r *Runtime) upload(sources map[string][]byte) error {
	rs := r.remote
	for digest, src := range sources {
		rs.mu.Lock()
		done := rs.uploaded[digest]
		rs.mu.Unlock()
		if done {
			continue
		}
		got, err := rs.store.PutSource(context.Background(), src)
		if err != nil {
			return fmt.Errorf("store the script's source for the workers: %w", err)
		}
		if got != digest {
			return fmt.Errorf("store the script's source: digest %s, want %s", got, digest)
		}
		rs.mu.Lock()
		rs.uploaded[digest] = true
		rs.mu.Unlock()
	}
	return nil
}

// markRemote, in the transaction that creates (or runs again) j's thread
// t, leaves a thread meant for workers to the queue: its body spec and
// queue marker, no owner. A thread that is not meant for workers leaves
// any queue it was in.
func (r *Runtime) markRemote(p *plan, j *run, t *registry.Thread) {
	if p.remote == nil || registry.Final(t.Status) {
		natsstore.LeaveQueue(t)
		delete(t.RunExtra, bodyField)
		return
	}
	j.remote = true
	t.Owner = ""
	n := len(t.Attempts) + 1
	natsstore.SetQueue(t, natsstore.QueueState{Attempt: n, First: n})
	natsstore.ClearLease(t)
	if t.RunExtra == nil {
		t.RunExtra = map[string]json.RawMessage{}
	}
	t.RunExtra[bodyField] = p.remote.spec
	t.History = append(t.History, stamp("Left to workers: attempt %d is queued for %s threads at stage %s.", n, natsstore.DeviceClass(t.Device), t.Stage))
}

// queuedError refuses a new attempt of a thread a work queue holds.
func (r *Runtime) queuedError(fn string, t *registry.Thread) error {
	if _, ok := natsstore.QueueOf(t); !ok || registry.Final(t.Status) {
		return nil
	}
	return fmt.Errorf("%s: thread %s is %s for the workers; wait for it, or cancel it (autonode cancel %s), before running it again", fn, t.ID, t.Status, t.ID)
}

// launchRemote takes over a created run meant for workers: a pending one
// is published on the queue (a waiting one is released by the sweeper),
// and the handle completes when the record ends. It reports false for a
// run that is not meant for workers.
func (r *Runtime) launchRemote(j *run) bool {
	if !j.remote {
		return false
	}
	j.mu.Lock()
	j.state = stateRunning // in the workers' hands: no local pool runs it
	t := j.rec.Clone()
	j.mu.Unlock()
	if job, ok := natsstore.JobOf(t); ok && t.Status == registry.StatusPending {
		r.remote.enq.add(job)
	}
	stop := context.AfterFunc(j.spawner, func() { r.cancelRemote(j) })
	go func() {
		final, err := r.remote.store.WaitEnded(context.Background(), j.id)
		stop()
		if err != nil {
			final = j.snapshot()
			final.Status, final.Error = registry.StatusCancelled, err.Error()
		}
		j.mu.Lock()
		j.rec = final.Clone()
		release := j.endLocked()
		j.mu.Unlock()
		release()
		if final.Status != registry.StatusSucceeded && final.Status != registry.StatusCached {
			j.runErr = errors.New(registry.ErrorSummary(final.Error))
		}
		j.completed(final, final.Status, nil)
	}()
	return true
}

// cancelRemote asks the workers to cancel j's thread: its spawner's
// context ended (the script was interrupted).
func (r *Runtime) cancelRemote(j *run) {
	by := "the spawner (" + r.owner + "), which was stopped: " + spawnerCause(j.spawner).Error()
	err := r.store.Update(func(tx *registry.Tx) error {
		_, _, err := tx.RequestCancel(j.id, j.tok, by, r.alive)
		return err
	})
	if err != nil && !errors.Is(err, registry.ErrNotActive) {
		r.warn("cancel thread %s on the workers: %v", j.id, err)
	}
}

// alive reports whether the process that wrote owner text s may still
// run. A worker's thread counts as alive here: its lease, which the
// workers' sweeper watches, says when it is not.
func (r *Runtime) alive(s string) bool {
	if strings.HasPrefix(s, workerOwnerPrefix) {
		return true
	}
	return owner.Alive(s)
}

// enqueuer publishes the attempts of created threads on the work queue
// in the background, many at once, so that a spawn_batch of thousands
// is not a round trip per thread.
type enqueuer struct {
	q    *natsstore.Queue
	warn func(string, ...any)

	mu     sync.Mutex
	jobs   []natsstore.Job
	wake   chan struct{}
	closed bool
	done   chan struct{}
}

func newEnqueuer(q *natsstore.Queue, warn func(string, ...any)) *enqueuer {
	e := &enqueuer{q: q, warn: warn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go e.loop()
	return e
}

func (e *enqueuer) add(j natsstore.Job) {
	e.mu.Lock()
	e.jobs = append(e.jobs, j)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *enqueuer) loop() {
	defer close(e.done)
	for {
		e.mu.Lock()
		jobs, closed := e.jobs, e.closed
		e.jobs = nil
		e.mu.Unlock()
		if len(jobs) > 0 {
			if err := e.q.Enqueue(context.Background(), jobs...); err != nil {
				// The records are pending: the workers' sweeper publishes
				// them again.
				e.warn("publish %d thread(s) on the work queue: %v (the workers' sweeper publishes them again within seconds)", len(jobs), err)
			}
			continue
		}
		if closed {
			return
		}
		<-e.wake
	}
}

// close publishes what is left and stops.
func (e *enqueuer) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	<-e.done
}
