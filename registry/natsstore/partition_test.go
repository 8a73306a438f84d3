package natsstore_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natstest"
)

// TestDeposedLeaderServesNoStaleRead cuts the stream's leader off behind
// the route proxies. The other two nodes elect a new leader and
// acknowledge a rename. A client that can reach only the old leader,
// which still believes it leads for seconds, must never read the name
// from before the rename: its reads fail until the partition heals, then
// see the new name.
func TestDeposedLeaderServesNoStaleRead(t *testing.T) {
	if os.Getenv(envSoak) == "" {
		t.Skip("a 30 s partition test: set " + envSoak + " (TestLinearizableUnderFaults covers stale reads by default)")
	}
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{Proxied: true})
	w := openStore(t, c.URLs(), "stale")
	create(t, w, 1)
	l := c.StreamLeader("KV_stale")
	if l < 0 {
		t.Fatal("no stream leader")
	}
	r, err := natsstore.Open(natsstore.Options{URL: c.URL(l), Bucket: "stale", Timeout: time.Second, CommitTimeout: 2 * time.Second})
	must(t, err)
	defer r.Close()
	name := func(s registry.Store) (string, error) {
		var n string
		err := s.View(func(tx *registry.Tx) error {
			th, err := tx.Get(1)
			if err == nil {
				n = th.Name
			}
			return err
		})
		return n, err
	}
	if n, err := name(r); err != nil || n != "Thread-1-core" {
		t.Fatalf("read before the partition: %q %v", n, err)
	}
	other := (l + 1) % 3
	w2, err := natsstore.Open(natsstore.Options{URL: c.URL(other), Bucket: "stale", Timeout: 2 * time.Second, CommitTimeout: 40 * time.Second})
	must(t, err)
	defer w2.Close()
	c.Partition(l, true)
	t0 := time.Now()
	must(t, w2.Update(func(tx *registry.Tx) error { _, err := tx.Rename(1, "after", tokA); return err }))
	t.Logf("the majority acknowledged the rename %v after the partition", time.Since(t0).Round(time.Millisecond))
	for i := range 3 {
		n, err := name(r)
		if err == nil && n != "after" {
			t.Fatalf("read %d through the deposed leader saw %q, acknowledged since: %q", i, n, "after")
		}
		if err != nil && !errors.Is(err, natsstore.ErrUnavailable) {
			t.Errorf("read %d: %v, want ErrUnavailable", i, err)
		}
	}
	c.Partition(l, false)
	deadline := time.Now().Add(40 * time.Second)
	for {
		n, err := name(r)
		if err == nil {
			if n != "after" {
				t.Fatalf("after healing: %q", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads still fail 40s after healing: %v", err)
		}
	}
}
