package natsstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natstest"
)

// queued creates thread id, pending for the queue at attempt 1, and
// enqueues it.
func queued(t *testing.T, s *natsstore.Store, q *natsstore.Queue, id registry.ID, stage string, prio int64, retry *registry.RetryPolicy) {
	t.Helper()
	th := registry.NewThread(id, stage)
	th.Priority, th.Retry = prio, retry
	natsstore.SetQueue(th, natsstore.QueueState{Attempt: 1, First: 1})
	must(t, s.Update(func(tx *registry.Tx) error { return tx.Create(th, tokA) }))
	j, ok := natsstore.JobOf(th)
	if !ok {
		t.Fatal("no job")
	}
	must(t, q.Enqueue(context.Background(), j))
}

func openQueue(t *testing.T, s *natsstore.Store) *natsstore.Queue {
	t.Helper()
	q, err := s.Queue(natsstore.QueueOptions{Lease: 2 * time.Second})
	must(t, err)
	return q
}

func cpuDevice(*registry.Thread) string { return "cpu" }

// claimOne claims attempt n of id for worker in one transaction.
func claimOne(s *natsstore.Store, id registry.ID, n int, worker string) error {
	return s.Update(func(tx *registry.Tx) error {
		_, err := natsstore.Claim(tx, id, n, worker, 2*time.Second, cpuDevice, time.Now())
		return err
	})
}

// finish records attempt n of id succeeded, fenced by worker's lease.
func finish(s *natsstore.Store, id registry.ID, n int, worker string) error {
	return s.Update(func(tx *registry.Tx) error {
		th, err := tx.Get(id)
		if err != nil {
			return err
		}
		th.Status = registry.StatusSucceeded
		th.Attempts[len(th.Attempts)-1].Status = registry.StatusSucceeded
		natsstore.LeaveQueue(th)
		return tx.PutRun(th, natsstore.Fence(worker, n))
	})
}

func successes(th *registry.Thread) int {
	n := 0
	for _, a := range th.Attempts {
		if a.Status == registry.StatusSucceeded {
			n++
		}
	}
	return n
}

// TestQueueStageOrder: a fetch drains CRITICAL, then CORE, then BASE, and
// within what it took of a stage the higher priority first; each message
// is delivered to one fetch.
func TestQueueStageOrder(t *testing.T) {
	n := natstest.RunNode(t)
	s := openStore(t, n.ClientURL(), newBucket())
	q := openQueue(t, s)
	queued(t, s, q, 1, registry.StageBase, 5, nil)
	queued(t, s, q, 2, registry.StageCore, 1, nil)
	queued(t, s, q, 3, registry.StageCritical, 1, nil)
	queued(t, s, q, 4, registry.StageCore, 9, nil)
	queued(t, s, q, 5, registry.StageBase, 0, nil)
	ds := fetch(t, q, 10, 5)
	var got []registry.ID
	for _, d := range ds {
		got = append(got, d.ID)
		must(t, d.Ack())
	}
	want := []registry.ID{3, 4, 2, 1, 5}
	if len(got) != len(want) {
		t.Fatalf("fetched %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fetched %v, want %v", got, want)
		}
	}
	if again, err := q.Fetch(context.Background(), nil, 10); err != nil || len(again) != 0 {
		t.Errorf("a second fetch got %d message(s) (%v); each is delivered once", len(again), err)
	}
}

// TestClaimIsACompareAndSet: workers in two processes race to claim the
// same attempt; exactly one gets it, the other is told it is not
// claimable, and a message for an attempt the record no longer holds is
// obsolete.
func TestClaimIsACompareAndSet(t *testing.T) {
	n := natstest.RunNode(t)
	bucket := newBucket()
	a, b := openStore(t, n.ClientURL(), bucket), openStore(t, n.ClientURL(), bucket)
	q := openQueue(t, a)
	for round := range 20 {
		id := registry.ID(round + 1)
		queued(t, a, q, id, registry.StageBase, 1, nil)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*natsstore.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = claimOne(s, id, 1, []string{"worker=a", "worker=b"}[i])
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, natsstore.ErrNotClaimable):
				t.Fatalf("round %d: claim: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d workers claimed attempt 1 (errors %v); want exactly one", round, won, errs)
		}
	}
	if err := claimOne(a, 1, 2, "worker=a"); !errors.Is(err, natsstore.ErrNotClaimable) {
		t.Errorf("claim of attempt 2 while the queue holds attempt 1: %v", err)
	}
}

// TestLeaseExpiryFencesTheOldWorker: worker A claims attempt 1 and goes
// silent; the sweeper (on a fake clock) finds its lease expired, records
// the attempt crashed and queues attempt 2, which worker B claims and
// finishes. A's late success is fenced off: one success is recorded.
func TestLeaseExpiryFencesTheOldWorker(t *testing.T) {
	n := natstest.RunNode(t)
	s := openStore(t, n.ClientURL(), newBucket())
	q := openQueue(t, s)
	queued(t, s, q, 1, registry.StageCore, 1, &registry.RetryPolicy{Retries: 2, Delay: 0, Backoff: 1, MaxDelay: 1})
	ds := fetch(t, q, 1, 1)
	if len(ds) != 1 {
		t.Fatalf("fetched %d", len(ds))
	}
	must(t, claimOne(s, 1, 1, "worker=a"))
	now := time.Now()
	sw := q.NewSweeper(natsstore.SweeperOptions{Now: func() time.Time { return now }, By: "test"})
	sweep := func() natsstore.SweepReport {
		t.Helper()
		rep, err := sw.Sweep(context.Background())
		must(t, err)
		return rep
	}
	sweep() // first sight of the lease
	now = now.Add(2 * time.Second)
	if rep := sweep(); rep.Expired != 0 {
		t.Fatalf("expired before the TTL and its grace: %+v", rep)
	}
	// A heartbeat (the lease renewed) starts the count again.
	must(t, s.Update(func(tx *registry.Tx) error {
		th, err := tx.Get(1)
		if err != nil {
			return err
		}
		l, _ := natsstore.LeaseOf(th)
		l.Beat++
		natsstore.SetLease(th, l)
		return tx.PutRun(th, natsstore.Fence("worker=a", 1))
	}))
	waitPeek(t, s, 1, func(th *registry.Thread) bool { l, _ := natsstore.LeaseOf(th); return l.Beat == 1 })
	now = now.Add(2 * time.Second)
	if rep := sweep(); rep.Expired != 0 {
		t.Fatalf("expired although the lease was renewed: %+v", rep)
	}
	now = now.Add(3 * time.Second)
	if rep := sweep(); rep.Expired != 1 || rep.Retried != 1 {
		t.Fatalf("sweep after the TTL: %+v", rep)
	}
	th := peek(t, s, 1)
	qs, _ := natsstore.QueueOf(th)
	if th.Status != registry.StatusPending || qs.Attempt != 2 || th.Attempts[0].Status != registry.StatusCrashed {
		t.Fatalf("after the expiry: status %s, queue %+v, attempts %+v", th.Status, qs, th.Attempts)
	}
	// The message of attempt 2 is there; worker B takes it.
	must(t, ds[0].Ack())
	ds2 := fetch(t, q, 5, 1)
	if len(ds2) != 1 || ds2[0].Attempt != 2 {
		t.Fatalf("fetched %+v, want attempt 2", ds2)
	}
	must(t, claimOne(s, 1, 2, "worker=b"))
	must(t, finish(s, 1, 2, "worker=b"))
	if err := finish(s, 1, 1, "worker=a"); !errors.Is(err, natsstore.ErrFenced) {
		t.Fatalf("the superseded worker's success: %v, want ErrFenced", err)
	}
	if th := peek(t, s, 1); th.Status != registry.StatusSucceeded || successes(th) != 1 || len(th.Attempts) != 2 {
		t.Fatalf("final: %s with attempts %+v; want one success", th.Status, th.Attempts)
	}
}

// TestSweeperEnds: an expired lease without retries left ends crashed, one
// with a cancel request ends cancelled, and both leave the queue.
func TestSweeperEnds(t *testing.T) {
	n := natstest.RunNode(t)
	s := openStore(t, n.ClientURL(), newBucket())
	q := openQueue(t, s)
	queued(t, s, q, 1, registry.StageBase, 1, nil)
	queued(t, s, q, 2, registry.StageBase, 1, &registry.RetryPolicy{Retries: 3, Delay: 1, Backoff: 1, MaxDelay: 1})
	must(t, claimOne(s, 1, 1, "worker=a"))
	must(t, claimOne(s, 2, 1, "worker=a"))
	must(t, s.Update(func(tx *registry.Tx) error {
		_, _, err := tx.RequestCancel(2, tokA, "a test", func(string) bool { return true })
		return err
	}))
	waitPeek(t, s, 2, func(th *registry.Thread) bool { return th.CancelRequest != nil })
	now := time.Now()
	sw := q.NewSweeper(natsstore.SweeperOptions{Now: func() time.Time { return now }})
	if _, err := sw.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second)
	rep, err := sw.Sweep(context.Background())
	must(t, err)
	if rep.Expired != 2 || rep.Crashed != 1 || rep.Cancelled != 1 {
		t.Fatalf("sweep: %+v", rep)
	}
	for id, want := range map[registry.ID]string{1: registry.StatusCrashed, 2: registry.StatusCancelled} {
		th := peek(t, s, id)
		if _, inQueue := natsstore.QueueOf(th); th.Status != want || inQueue {
			t.Errorf("thread %s: %s (queue marker kept: %v), want %s", id, th.Status, inQueue, want)
		}
	}
	if rep, err := sw.Sweep(context.Background()); err != nil || rep.Total() != 0 {
		t.Errorf("a sweep after they ended: %+v %v", rep, err)
	}
}

// TestSweeperPublishesWhatWasLost: a pending thread without a message (its
// spawner died between the commit and the publish) is enqueued again once
// it has been pending for a while; one that has its message is not.
func TestSweeperPublishesWhatWasLost(t *testing.T) {
	n := natstest.RunNode(t)
	s := openStore(t, n.ClientURL(), newBucket())
	q := openQueue(t, s)
	queued(t, s, q, 1, registry.StageBase, 1, nil) // with its message
	lost := registry.NewThread(2, registry.StageCore)
	natsstore.SetQueue(lost, natsstore.QueueState{Attempt: 1, First: 1})
	must(t, s.Update(func(tx *registry.Tx) error { return tx.Create(lost, tokA) }))
	waitPeek(t, s, 2, func(*registry.Thread) bool { return true })
	now := time.Now()
	sw := q.NewSweeper(natsstore.SweeperOptions{Now: func() time.Time { return now }, PendingAfter: time.Second})
	if rep, err := sw.Sweep(context.Background()); err != nil || rep.Enqueued != 0 {
		t.Fatalf("first sweep: %+v %v", rep, err)
	}
	now = now.Add(2 * time.Second)
	rep, err := sw.Sweep(context.Background())
	must(t, err)
	if rep.Enqueued != 1 {
		t.Fatalf("sweep: %+v, want the one thread without a message enqueued", rep)
	}
	// The order holds within one Fetch: a consumer may not offer the
	// message the sweep just published at once, so what a Fetch took
	// without it goes back (Nak) and is taken again with it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, err := q.Fetch(context.Background(), nil, 10)
		must(t, err)
		if len(ds) >= 2 || time.Now().After(deadline) {
			if len(ds) != 2 || ds[0].ID != 2 || ds[1].ID != 1 {
				t.Fatalf("fetched %d messages (%+v); want 2.0 (CORE) and 1.0 (BASE), once each", len(ds), ds)
			}
			return
		}
		for _, d := range ds {
			must(t, d.Nak(0))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSweeperReleasesWaiting: a waiting thread is queued once its
// dependencies succeeded, and skipped when one failed for good.
func TestSweeperReleasesWaiting(t *testing.T) {
	n := natstest.RunNode(t)
	s := openStore(t, n.ClientURL(), newBucket())
	q := openQueue(t, s)
	must(t, s.Update(func(tx *registry.Tx) error {
		up := registry.NewThread(1, registry.StageBase)
		up.Status = registry.StatusRunning
		bad := registry.NewThread(2, registry.StageBase)
		bad.Status, bad.Error = registry.StatusFailed, "Traceback\nError: boom"
		for _, th := range []*registry.Thread{up, bad} {
			if err := tx.Create(th, tokA); err != nil {
				return err
			}
		}
		for id, after := range map[registry.ID]registry.ID{3: 1, 4: 2} {
			w := registry.NewThread(id, registry.StageBase)
			w.Status, w.After = registry.StatusWaiting, []registry.ID{after}
			natsstore.SetQueue(w, natsstore.QueueState{Attempt: 1, First: 1})
			if err := tx.Create(w, tokA); err != nil {
				return err
			}
		}
		return nil
	}))
	waitPeek(t, s, 4, func(*registry.Thread) bool { return true })
	sw := q.NewSweeper(natsstore.SweeperOptions{})
	rep, err := sw.Sweep(context.Background())
	must(t, err)
	if rep.Skipped != 1 || rep.Released != 0 {
		t.Fatalf("sweep with 1.0 running: %+v", rep)
	}
	if th := peek(t, s, 4); th.Status != registry.StatusSkipped {
		t.Errorf("4.0 waits for a failed thread: %s, want skipped", th.Status)
	}
	must(t, s.Update(func(tx *registry.Tx) error {
		th, err := tx.Get(1)
		if err != nil {
			return err
		}
		th.Status = registry.StatusSucceeded
		return tx.Put(th, tokA)
	}))
	waitPeek(t, s, 1, func(th *registry.Thread) bool { return th.Status == registry.StatusSucceeded })
	rep, err = sw.Sweep(context.Background())
	must(t, err)
	if rep.Released != 1 {
		t.Fatalf("sweep with 1.0 succeeded: %+v", rep)
	}
	ds := fetch(t, q, 10, 1)
	if len(ds) != 1 || ds[0].ID != 3 {
		t.Fatalf("fetched %+v, want 3.0", ds)
	}
}

// fetch fetches up to max messages, waiting up to 5s for at least want
// (a message just stored may reach a consumer a moment later).
func fetch(t *testing.T, q *natsstore.Queue, max, want int) []*natsstore.Delivery {
	t.Helper()
	var all []*natsstore.Delivery
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, err := q.Fetch(context.Background(), nil, max-len(all))
		must(t, err)
		all = append(all, ds...)
		if len(all) >= want || time.Now().After(deadline) {
			return all
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// peek reads thread id from s's copy.
func peek(t *testing.T, s *natsstore.Store, id registry.ID) *registry.Thread {
	t.Helper()
	var th *registry.Thread
	must(t, s.View(func(tx *registry.Tx) error {
		var err error
		th, err = tx.Get(id)
		return err
	}))
	return th
}

// waitPeek waits until s's copy shows thread id as ok says.
func waitPeek(t *testing.T, s *natsstore.Store, id registry.ID, ok func(*registry.Thread) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if th, found, err := s.Peek(id); err == nil && found && ok(th) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("thread %s never reached the state the test waits for", id)
}
