package natsstore_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonode/autonode/registry/natsstore/natstest"
	"github.com/autonode/autonode/registry/registrytest"
)

// The outputs' tests do not run in parallel with the others: on a small
// machine their load would stretch the fault test's elections.

func TestOutputsOneNode(t *testing.T) {
	n := natstest.RunNode(t)
	registrytest.RunOutputs(t, factory(n.ClientURL()))
}

func TestOutputsCluster(t *testing.T) {
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{})
	registrytest.RunOutputs(t, factory(c.URLs()))
}

// TestResultsAreReadFromTheLeader: the results' object store answers no
// direct gets (which a replica that lags may answer), so a result read
// right after its put is found on a cluster.
func TestResultsAreReadFromTheLeader(t *testing.T) {
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{})
	bucket := newBucket()
	s := openStore(t, c.URLs(), bucket)
	ctx := context.Background()
	npy := registrytest.NPY(t, []float64{1, 2, 3}, false, 3)
	rs := s.Results()
	for i := range 50 {
		ref, err := rs.PutArray(ctx, bytes.NewReader(npy))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.RemoveArray(ctx, ref.SHA256, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.PutArray(ctx, bytes.NewReader(npy)); err != nil {
			t.Fatal(err)
		}
		rc, err := rs.OpenArray(ctx, ref.SHA256)
		if err != nil {
			t.Fatalf("round %d: a result read right after its put: %v", i, err)
		}
		if b, err := io.ReadAll(rc); err != nil || !bytes.Equal(b, npy) {
			t.Fatalf("round %d: %v", i, err)
		}
		rc.Close()
	}
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, "OBJ_AUTONODE_RESULTS_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.AllowDirect || cfg.Replicas != 3 {
		t.Errorf("the results' stream: allow_direct %v, %d replicas", cfg.AllowDirect, cfg.Replicas)
	}
}
