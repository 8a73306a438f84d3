package natsstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/autonode/autonode/registry"
)

// Members of a thread's run state (under "autonode" in its record, kept
// in registry.Thread.RunExtra) that say a work queue holds the thread.
const (
	// QueueField marks a thread whose runs are left to workers: a
	// QueueState. It is there while the thread is pending, waiting or
	// running for the queue, and removed when the thread ends.
	QueueField = "queue"
	// LeaseField is the lease of the worker running the thread's current
	// attempt: a Lease.
	LeaseField = "lease"
)

// ErrFenced: a worker tried to record something for an attempt it no
// longer holds: its lease expired and the attempt was recorded crashed
// (and perhaps retried by another worker), the thread was cancelled, or
// the record was changed under it. Nothing was written.
var ErrFenced = errors.New("fenced: this worker no longer holds the thread's attempt")

// QueueState is a thread's queue marker.
type QueueState struct {
	// Attempt is the attempt the queue holds, or will hold: the number
	// of the thread's next (or current) attempt.
	Attempt int `json:"attempt"`
	// First is the first attempt of the job (spawn, or run() again):
	// retries are counted from it.
	First int `json:"first"`
	// Delay is how long, in seconds, the attempt waits before it starts
	// (a retry's delay).
	Delay float64 `json:"delay,omitempty"`
}

// Lease is the claim of one worker on one attempt. It is renewed by the
// worker (Beat grows) while the attempt runs; a sweeper that sees the same
// Beat for longer than TTL counts it expired.
type Lease struct {
	Worker  string `json:"worker"`
	Attempt int    `json:"attempt"`
	TTLms   int64  `json:"ttl_ms"`
	Beat    int64  `json:"beat"`
}

// TTL is the lease's duration.
func (l *Lease) TTL() time.Duration { return time.Duration(l.TTLms) * time.Millisecond }

// QueueOf returns t's queue marker.
func QueueOf(t *registry.Thread) (QueueState, bool) {
	var q QueueState
	return q, runMember(t, QueueField, &q)
}

// LeaseOf returns the lease on t's current attempt.
func LeaseOf(t *registry.Thread) (Lease, bool) {
	var l Lease
	return l, runMember(t, LeaseField, &l)
}

func runMember(t *registry.Thread, name string, v any) bool {
	raw, ok := t.RunExtra[name]
	return ok && json.Unmarshal(raw, v) == nil
}

// SetQueue puts the queue marker q on t.
func SetQueue(t *registry.Thread, q QueueState) { setRunMember(t, QueueField, q) }

// SetLease puts lease l on t.
func SetLease(t *registry.Thread, l Lease) { setRunMember(t, LeaseField, l) }

// ClearLease removes t's lease.
func ClearLease(t *registry.Thread) { delete(t.RunExtra, LeaseField) }

// LeaveQueue removes t's queue marker and lease: the queue no longer
// holds the thread (it ended, or runs in a process of its own).
func LeaveQueue(t *registry.Thread) {
	delete(t.RunExtra, QueueField)
	delete(t.RunExtra, LeaseField)
}

func setRunMember(t *registry.Thread, name string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs: cannot fail
	}
	if t.RunExtra == nil {
		t.RunExtra = map[string]json.RawMessage{}
	}
	t.RunExtra[name] = raw
}

// Fence returns the check (registry.Tx.PutRun) that lets worker record
// attempt n of a thread only while it holds that attempt's lease and the
// thread is running.
func Fence(worker string, n int) func(stored *registry.Thread) error {
	return func(stored *registry.Thread) error {
		l, ok := LeaseOf(stored)
		switch {
		case !ok:
			return fmt.Errorf("thread %s: %w (attempt %d: the record holds no lease; it is %s)", stored.ID, ErrFenced, n, stored.EffectiveStatus())
		case l.Worker != worker || l.Attempt != n:
			return fmt.Errorf("thread %s: %w (attempt %d: the lease is now on attempt %d of %s)", stored.ID, ErrFenced, n, l.Attempt, l.Worker)
		case stored.Status != registry.StatusRunning:
			return fmt.Errorf("thread %s: %w (attempt %d: the thread is %s)", stored.ID, ErrFenced, n, stored.EffectiveStatus())
		}
		return nil
	}
}

// ErrNotClaimable: a queued message names an attempt the record does not
// hold for the queue any more (it ran, was cancelled, was claimed by
// another worker, or left the queue). The message is obsolete.
var ErrNotClaimable = errors.New("the thread is not waiting in the queue for this attempt")

// Claim is the compare-and-set that gives worker attempt n of thread id
// (pending → running): it checks, in tx, that the record is pending for
// the queue with attempt n and no cancel request, then records the
// attempt's start (status running, the attempt with its start time,
// owner and the device that device names for it), and a lease of ttl.
// The commit of tx makes it atomic: two workers cannot both claim the
// same attempt.
func Claim(tx *registry.Tx, id registry.ID, n int, worker string, ttl time.Duration, device func(*registry.Thread) string, now time.Time) (*registry.Thread, error) {
	t, err := tx.Get(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotClaimable, err)
	}
	q, ok := QueueOf(t)
	switch {
	case !ok:
		return nil, fmt.Errorf("thread %s: %w (it is %s and not in the queue)", id, ErrNotClaimable, t.EffectiveStatus())
	case q.Attempt != n:
		return nil, fmt.Errorf("thread %s: %w (the queue holds attempt %d, not %d)", id, ErrNotClaimable, q.Attempt, n)
	case t.Status != registry.StatusPending:
		return nil, fmt.Errorf("thread %s: %w (it is %s)", id, ErrNotClaimable, t.EffectiveStatus())
	case t.CancelRequest != nil:
		return nil, fmt.Errorf("thread %s: %w (a cancel was requested)", id, ErrNotClaimable)
	}
	at := now.UTC().Format(time.RFC3339Nano)
	t.Status, t.Result, t.Error = registry.StatusRunning, nil, ""
	t.StartedAt, t.FinishedAt, t.DurationMS = at, "", 0
	dev := device(t)
	t.Owner, t.DeviceUsed = worker, dev
	t.Attempts = append(t.Attempts, registry.Attempt{N: n, Status: registry.StatusRunning, StartedAt: at, Owner: worker, DeviceUsed: dev})
	SetLease(t, Lease{Worker: worker, Attempt: n, TTLms: ttl.Milliseconds()})
	t.AddHistory("Claimed by worker %s (attempt %d; lease %s, renewed while it runs).", strings.TrimPrefix(worker, "worker="), n, ttl)
	if err := tx.PutRun(t, nil); err != nil {
		return nil, err
	}
	return t, nil
}
