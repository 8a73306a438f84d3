package natsstore_test

import (
	"testing"

	"github.com/autonode/autonode/registry/natsstore/natstest"
	"github.com/autonode/autonode/registry/registrytest"
)

func TestOutputsOneNode(t *testing.T) {
	t.Parallel()
	n := natstest.RunNode(t)
	registrytest.RunOutputs(t, factory(n.ClientURL()))
}

func TestOutputsCluster(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{})
	registrytest.RunOutputs(t, factory(c.URLs()))
}
