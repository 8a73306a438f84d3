package natsstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natstest"
	"github.com/autonode/autonode/registry/registrytest"
)

var bucketSeq atomic.Int64

// newBucket names a fresh bucket, so that each test has its own registry
// on a shared server.
func newBucket() string { return fmt.Sprintf("reg%d", bucketSeq.Add(1)) }

// factory opens stores on url, each test on a new bucket.
func factory(url string) registrytest.Factory {
	open := func(t *testing.T, bucket string) *natsstore.Store {
		s, err := natsstore.Open(natsstore.Options{URL: url, Bucket: bucket})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return registrytest.Factory{
		New: func(t *testing.T) registry.Store { return open(t, newBucket()) },
		Reopen: func(t *testing.T, s registry.Store) registry.Store {
			ns := s.(*natsstore.Store)
			if err := ns.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, ns.Bucket())
		},
	}
}

func TestConformanceOneNode(t *testing.T) {
	t.Parallel()
	n := natstest.RunNode(t)
	registrytest.Run(t, factory(n.ClientURL()))
}

func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{})
	registrytest.Run(t, factory(c.URLs()))
}
