package natsstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natsnode"
	"github.com/autonode/autonode/registry/natsstore/natstest"
)

const (
	tokA = "token-aaaaaaaaaaaaaaaa"
	tokB = "token-bbbbbbbbbbbbbbbb"
)

func openStore(t *testing.T, url, bucket string) *natsstore.Store {
	t.Helper()
	s, err := natsstore.Open(natsstore.Options{URL: url, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, s registry.Store, ids ...float64) {
	t.Helper()
	must(t, s.Update(func(tx *registry.Tx) error {
		for _, id := range ids {
			if err := tx.Create(registry.NewThread(registry.ID(id), "CORE"), tokA); err != nil {
				return err
			}
		}
		return nil
	}))
}

// twoWriters opens two stores on one bucket, as two processes would.
func twoWriters(t *testing.T) (a, b *natsstore.Store) {
	n := natstest.RunNode(t)
	bucket := newBucket()
	return openStore(t, n.ClientURL(), bucket), openStore(t, n.ClientURL(), bucket)
}

// TestWriteSkewRefused: two reparents that would close a cycle, each
// valid alone, interleave so that the second one's function runs before
// the first commits. Only the read checks of the batch can refuse the
// second: it must run again and then see the cycle.
func TestWriteSkewRefused(t *testing.T) {
	a, b := twoWriters(t)
	create(t, a, 1, 2)
	runs := 0
	err := a.Update(func(tx *registry.Tx) error {
		runs++
		if runs == 1 {
			// Another process reparents 2 under 1 meanwhile.
			must(t, b.Update(func(tx *registry.Tx) error { _, err := tx.Reparent(2, 1, tokA); return err }))
		}
		_, err := tx.Reparent(1, 2, tokA)
		return err
	})
	if !errors.Is(err, registry.ErrCycle) || runs != 2 {
		t.Fatalf("second reparent: err %v after %d runs; want ErrCycle after 2", err, runs)
	}
	if st := a.Stats(); st.Conflicts != 1 {
		t.Errorf("stats %+v, want 1 conflict", st)
	}
}

// TestReadOnlyKeyChecked: a branch reads its source and writes only the
// new thread; a delete of the source committed in between must refuse
// the branch (the source's check fails), not leave a child of a deleted
// thread.
func TestReadOnlyKeyChecked(t *testing.T) {
	a, b := twoWriters(t)
	create(t, a, 1)
	runs := 0
	err := a.Update(func(tx *registry.Tx) error {
		runs++
		if runs == 1 {
			must(t, b.Update(func(tx *registry.Tx) error { _, err := tx.Delete(1, tokA); return err }))
		}
		_, err := tx.Branch(1, 5, nil, tokA)
		return err
	})
	if !errors.Is(err, registry.ErrAccess) || runs != 2 {
		t.Fatalf("branch of a thread deleted meanwhile: err %v after %d runs", err, runs)
	}
	must(t, b.View(func(tx *registry.Tx) error {
		if tx.Exists(5) {
			t.Error("the branch of a deleted thread was committed")
		}
		return nil
	}))
}

// TestPhantomChecked: a transaction that counted the threads must not
// commit when another process created one since.
func TestPhantomChecked(t *testing.T) {
	a, b := twoWriters(t)
	create(t, a, 1)
	runs, counted := 0, 0
	must(t, a.Update(func(tx *registry.Tx) error {
		runs++
		if runs == 1 {
			create(t, b, 7)
		}
		counted = tx.Summarize().Total
		_, err := tx.Rename(1, "seen-"+strings.Repeat("x", counted), tokA)
		return err
	}))
	if runs != 2 || counted != 2 {
		t.Fatalf("runs %d, counted %d: want the function run again on 2 threads", runs, counted)
	}
}

// TestClaimCAS is the claim a worker will make (pending -> running with
// an attempt number): from many processes at once, exactly one wins.
func TestClaimCAS(t *testing.T) {
	n := natstest.RunNode(t)
	bucket := newBucket()
	first := openStore(t, n.ClientURL(), bucket)
	create(t, first, 1)
	const workers = 6
	var wg sync.WaitGroup
	wins := make(chan int, workers)
	for w := range workers {
		s := openStore(t, n.ClientURL(), bucket)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(func(tx *registry.Tx) error {
				th, err := tx.Get(1)
				if err != nil {
					return err
				}
				if th.Status != registry.StatusPending {
					return errors.New("taken")
				}
				if err := tx.Expect(1, th.Version); err != nil {
					return err
				}
				th.Status = registry.StatusRunning
				th.Metadata = map[string]any{"worker": w}
				return tx.Put(th, tokA)
			})
			if err == nil {
				wins <- w
			} else if err.Error() != "taken" {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	var got []int
	for w := range wins {
		got = append(got, w)
	}
	if len(got) != 1 {
		t.Fatalf("winners %v, want exactly one", got)
	}
	must(t, first.View(func(tx *registry.Tx) error {
		th, err := tx.Get(1)
		if err != nil {
			return err
		}
		if th.Status != registry.StatusRunning || th.Metadata["worker"] != json.Number(jsonInt(got[0])) {
			t.Errorf("claimed record: status %q metadata %v, want worker %d", th.Status, th.Metadata, got[0])
		}
		return nil
	}))
}

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestTooLargeRecordRefused(t *testing.T) {
	n := natstest.RunNode(t)
	s := openStore(t, n.ClientURL(), newBucket())
	create(t, s, 1)
	big := strings.Repeat("x", 700<<10)
	err := s.Update(func(tx *registry.Tx) error {
		if _, err := tx.Branch(1, 2, nil, tokA); err != nil {
			return err
		}
		_, _, err := tx.Mutate(1, map[string]any{"metadata": map[string]any{"a": big, "b": big}}, nil, tokA)
		return err
	})
	var tl *natsstore.TooLargeError
	if !errors.Is(err, natsstore.ErrTooLarge) || !errors.Is(err, registry.ErrInvalid) || !errors.As(err, &tl) || tl.Key != "1.0" {
		t.Fatalf("err = %v, want a TooLargeError for thread 1.0", err)
	}
	if !strings.Contains(err.Error(), "max_payload") {
		t.Errorf("message does not say which limit: %v", err)
	}
	must(t, s.View(func(tx *registry.Tx) error {
		if tx.Exists(2) {
			t.Error("part of a refused transaction was committed")
		}
		return nil
	}))
}

func TestBatchTooLarge(t *testing.T) {
	nd, err := natsnode.Start(natsnode.Config{Dir: filepath.Join(t.TempDir(), "n"), Listen: "127.0.0.1:0", MaxBatch: 10})
	must(t, err)
	t.Cleanup(nd.Shutdown)
	s := openStore(t, nd.ClientURL(), "small")
	create(t, s, 1)
	err = s.Update(func(tx *registry.Tx) error {
		ids := make([]registry.ID, 20)
		for i := range ids {
			ids[i] = registry.ID(100 + i)
		}
		_, err := tx.Fork(1, ids, nil, tokA)
		return err
	})
	if !errors.Is(err, natsstore.ErrBatchTooLarge) || !strings.Contains(err.Error(), "max_msgs") {
		t.Fatalf("err = %v, want ErrBatchTooLarge naming the server setting", err)
	}
	must(t, s.View(func(tx *registry.Tx) error {
		if tx.Len() != 1 {
			t.Errorf("%d threads after a refused fork, want 1", tx.Len())
		}
		return nil
	}))
}

func TestReadOnlyAndMustExist(t *testing.T) {
	n := natstest.RunNode(t)
	for _, o := range []natsstore.Options{{ReadOnly: true}, {MustExist: true}} {
		o.URL, o.Bucket = n.ClientURL(), "missing"
		_, err := natsstore.Open(o)
		if !errors.Is(err, natsstore.ErrNoRegistry) || !strings.Contains(err.Error(), "bucket missing on "+n.ClientURL()) {
			t.Errorf("open %+v: %v, want ErrNoRegistry naming the bucket and server", o, err)
		}
	}
	w := openStore(t, n.ClientURL(), "present")
	create(t, w, 1)
	r, err := natsstore.Open(natsstore.Options{URL: n.ClientURL(), Bucket: "present", ReadOnly: true})
	must(t, err)
	defer r.Close()
	if err := r.Update(func(tx *registry.Tx) error { return nil }); !errors.Is(err, registry.ErrReadOnly) {
		t.Errorf("Update on a read-only store: %v", err)
	}
	must(t, r.View(func(tx *registry.Tx) error {
		if !tx.Exists(1) {
			t.Error("read-only store does not see thread 1.0")
		}
		return nil
	}))
	if _, err := natsstore.Open(natsstore.Options{URL: n.ClientURL(), Bucket: "bad.name"}); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("bad bucket name: %v", err)
	}
	if _, err := natsstore.Open(natsstore.Options{URL: "nats://127.0.0.1:1", ConnectWait: 200 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "connect to NATS at nats://127.0.0.1:1") {
		t.Errorf("no server: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.View(func(tx *registry.Tx) error { return nil }); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("View after Close: %v", err)
	}
}

// jsClient is a plain JetStream client of the server at url, as another
// NATS tool would be, with a context for its requests.
func jsClient(t *testing.T, url string) (jetstream.JetStream, context.Context) {
	t.Helper()
	nc, err := nats.Connect(url)
	must(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return js, ctx
}

// TestBucketLayout checks what other NATS tools see: one KV bucket with
// t.* and a.* keys holding the records' JSON, a single replica on a
// single server, atomic batches allowed, and a delete that is one step.
func TestBucketLayout(t *testing.T) {
	n := natstest.RunNode(t)
	s := openStore(t, n.ClientURL(), "layout")
	create(t, s, 1, 2.5)
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Delete(1, tokA); return err }))
	js, ctx := jsClient(t, n.ClientURL())
	kv, err := js.KeyValue(ctx, "layout")
	must(t, err)
	keys, err := kv.Keys(ctx)
	must(t, err)
	want := map[string]bool{"t.2_5": true, "a.1_0": true, "m.max_id": true}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("unexpected key %q in %v", k, keys)
		}
		delete(want, k)
	}
	if len(want) > 0 {
		t.Errorf("keys %v lack %v", keys, want)
	}
	e, err := kv.Get(ctx, "t.2_5")
	must(t, err)
	var th map[string]any
	must(t, json.Unmarshal(e.Value(), &th))
	if th["name"] != "Thread-2-core" {
		t.Errorf("t.2_5 holds %s", e.Value())
	}
	m, err := kv.Get(ctx, "m.max_id")
	must(t, err)
	if string(m.Value()) != "2.5" {
		t.Errorf("m.max_id = %q, want 2.5", m.Value())
	}
	st, err := js.Stream(ctx, "KV_layout")
	must(t, err)
	cfg := st.CachedInfo().Config
	if !cfg.AllowAtomicPublish || cfg.Replicas != 1 || cfg.MaxMsgsPerSubject != 1 {
		t.Errorf("stream config: atomic %v replicas %d history %d", cfg.AllowAtomicPublish, cfg.Replicas, cfg.MaxMsgsPerSubject)
	}
}

// TestExistingBucketGetsAtomic: a bucket made by another tool (nats kv
// add) is used as is, with atomic batches turned on.
func TestExistingBucketGetsAtomic(t *testing.T) {
	n := natstest.RunNode(t)
	js, ctx := jsClient(t, n.ClientURL())
	_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "theirs"})
	must(t, err)
	s := openStore(t, n.ClientURL(), "theirs")
	create(t, s, 1)
	st, err := js.Stream(ctx, "KV_theirs")
	must(t, err)
	if !st.CachedInfo().Config.AllowAtomicPublish {
		t.Error("atomic batches not enabled on an existing bucket")
	}
}

// TestClusterReplicas: a bucket created on a cluster has three replicas.
func TestClusterReplicas(t *testing.T) {
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{})
	s := openStore(t, c.URL(1), "replicated")
	create(t, s, 1)
	js, ctx := jsClient(t, c.URL(2))
	st, err := js.Stream(ctx, "KV_replicated")
	must(t, err)
	info := st.CachedInfo()
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Errorf("replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	// A store connected to another node sees the thread.
	other := openStore(t, c.URL(0), "replicated")
	must(t, other.View(func(tx *registry.Tx) error {
		if !tx.Exists(1) {
			t.Error("thread 1.0 missing on another node")
		}
		return nil
	}))
}

func TestURLCredentialsNotShown(t *testing.T) {
	_, err := natsstore.Open(natsstore.Options{URL: "nats://alice:s3cret@127.0.0.1:1,nats://tok3n@127.0.0.1:2", ConnectWait: 100 * time.Millisecond})
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "tok3n") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error %v: want the servers named without their credentials", err)
	}
}

// TestClusterConcurrentFirstOpen: several processes open one new bucket
// and its work queue on a cluster at the same moment, each through a
// different node (workers and `run --remote` starting together). Each
// either creates them or finds them; none fails because a peer did not
// serve a stream yet or left a racing create unanswered, and every one
// of them can write.
func TestClusterConcurrentFirstOpen(t *testing.T) {
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{})
	for round := range 3 {
		bucket := newBucket()
		const opens = 6
		stores := make([]*natsstore.Store, opens)
		errs := make([]error, opens)
		var wg sync.WaitGroup
		for i := range opens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := natsstore.Open(natsstore.Options{URL: c.URL(i % 3), Bucket: bucket})
				if err == nil {
					stores[i] = s
					_, err = s.Queue(natsstore.QueueOptions{})
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, s := range stores {
			if s != nil {
				t.Cleanup(func() { s.Close() })
			}
			if errs[i] != nil {
				t.Fatalf("round %d: open %d of %d through node %d: %v", round, i, opens, i%3, errs[i])
			}
		}
		for i, s := range stores {
			create(t, s, float64(i+1))
		}
		must(t, stores[0].View(func(tx *registry.Tx) error {
			for i := range opens {
				if !tx.Exists(registry.ID(float64(i + 1))) {
					t.Errorf("round %d: thread %d missing", round, i+1)
				}
			}
			return nil
		}))
	}
}
