package natsstore_test

import (
	"testing"

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
