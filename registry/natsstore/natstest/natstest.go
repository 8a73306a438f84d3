// Package natstest starts real JetStream servers for tests, in the test
// process and on loopback: one node, or a cluster whose routes are
// pre-assigned ports (so that it forms in well under a second), optionally
// with every route passing through a Proxy that a test can cut to
// partition a node.
package natstest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/autonode/autonode/registry/natsstore/natsnode"
)

// FreePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	ls := make([]net.Listener, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// RunNode starts one node with its data in a temporary directory and
// stops it when the test ends.
func RunNode(t testing.TB) *natsnode.Node {
	t.Helper()
	n, err := natsnode.Start(natsnode.Config{Dir: filepath.Join(t.TempDir(), "node"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	waitJS(t, n)
	return n
}

func waitJS(t testing.TB, nodes ...*natsnode.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := n.WaitJetStream(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Cluster is a set of nodes routed to each other.
type Cluster struct {
	t       testing.TB
	Nodes   []*natsnode.Node
	cfgs    []natsnode.Config
	Proxies [][]*Proxy // Proxies[i][j]: node i's route to node j (nil on the diagonal, or without proxies)
}

// ClusterOptions configures RunCluster.
type ClusterOptions struct {
	// Proxied routes every route through a Proxy.
	Proxied bool
}

// RunCluster starts an n-node cluster on loopback and waits until its
// JetStream has a leader. Nodes stop when the test ends.
func RunCluster(t testing.TB, n int, o ClusterOptions) *Cluster {
	t.Helper()
	ports := FreePorts(t, 2*n)
	c := &Cluster{t: t, Nodes: make([]*natsnode.Node, n), cfgs: make([]natsnode.Config, n)}
	dir := t.TempDir()
	if o.Proxied {
		c.Proxies = make([][]*Proxy, n)
		for i := range n {
			c.Proxies[i] = make([]*Proxy, n)
			for j := range n {
				if i != j {
					c.Proxies[i][j] = NewProxy(t, fmt.Sprintf("127.0.0.1:%d", ports[n+j]))
				}
			}
		}
	}
	for i := range n {
		var routes []string
		for j := range n {
			switch {
			case i == j:
			case o.Proxied:
				routes = append(routes, "nats://"+c.Proxies[i][j].Addr())
			default:
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+j]))
			}
		}
		c.cfgs[i] = natsnode.Config{
			Dir:           filepath.Join(dir, fmt.Sprintf("n%d", i)),
			Listen:        fmt.Sprintf("127.0.0.1:%d", ports[i]),
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[n+i]),
			Routes:        routes,
			Name:          fmt.Sprintf("n%d", i),
		}
		if o.Proxied {
			c.cfgs[i].Tune = func(so *server.Options) {
				// Other nodes must reach this one only through the
				// proxies: do not gossip its real route address.
				so.Cluster.Advertise = "127.0.0.1:1"
				so.Cluster.PoolSize = -1
			}
		}
	}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			nd, err := natsnode.Start(c.cfgs[i])
			c.Nodes[i] = nd
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.Nodes {
			if nd != nil {
				nd.Shutdown()
			}
		}
	})
	waitJS(t, c.Nodes...)
	return c
}

// URLs is the client URLs of every running node, comma-separated (what
// nats.Connect takes).
func (c *Cluster) URLs() string {
	var u []string
	for _, cfg := range c.cfgs {
		u = append(u, "nats://"+cfg.Listen)
	}
	return strings.Join(u, ",")
}

// URL is node i's client URL.
func (c *Cluster) URL(i int) string { return "nats://" + c.cfgs[i].Listen }

// Stop shuts node i down cleanly (it hands its leaderships over first).
func (c *Cluster) Stop(i int) {
	if c.Nodes[i] != nil {
		c.Nodes[i].Shutdown()
		c.Nodes[i] = nil
	}
}

// Restart starts node i again on its data directory and ports.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Stop(i)
	nd, err := natsnode.Start(c.cfgs[i])
	if err != nil {
		c.t.Fatal(err)
	}
	c.Nodes[i] = nd
}

// StreamLeader returns the index of the node that leads stream in the
// global account, or -1.
func (c *Cluster) StreamLeader(stream string) int {
	for i, nd := range c.Nodes {
		if nd != nil && nd.Server().JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// Partition cuts every route of node i (through the proxies), or heals
// them with cut false.
func (c *Cluster) Partition(i int, cut bool) {
	for j := range c.Nodes {
		if j == i {
			continue
		}
		c.Proxies[i][j].SetCut(cut)
		c.Proxies[j][i].SetCut(cut)
	}
}
