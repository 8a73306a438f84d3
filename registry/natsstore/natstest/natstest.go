// Package natstest starts real JetStream servers for tests, in the test
// process and on loopback: one node, or a cluster whose routes are
// pre-assigned ports (so that it forms in well under a second), optionally
// with every route passing through a Proxy that a test can cut to
// partition a node.
package natstest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonode/autonode/registry/natsstore/natsnode"
)

// FreePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := natsnode.FreePorts(n)
	if err != nil {
		t.Fatal(err)
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

// Cluster is a set of nodes routed to each other, in the test process
// or each in a child process (ClusterOptions.Processes).
type Cluster struct {
	t       testing.TB
	specs   []nodeSpec
	Nodes   []*natsnode.Node // in-process nodes (nil while stopped)
	procs   []*exec.Cmd      // child processes (nil while stopped)
	Proxies [][]*Proxy       // Proxies[i][j]: node i's route to node j (nil on the diagonal, or without proxies)
	opts    ClusterOptions
}

// ClusterOptions configures RunCluster.
type ClusterOptions struct {
	// Proxied routes every route through a Proxy, so that Partition can
	// cut a node off.
	Proxied bool
	// Processes runs each node in a child process (the test binary run
	// again: the package's TestMain must call NodeMain first), so that
	// Kill can SIGKILL it.
	Processes bool
}

// nodeSpec is what a node is started with, also in a child process.
type nodeSpec struct {
	Dir, Listen, ClusterListen, Name string
	Routes                           []string
	Proxied                          bool
}

func (sp nodeSpec) config() natsnode.Config {
	cfg := natsnode.Config{Dir: sp.Dir, Listen: sp.Listen, ClusterListen: sp.ClusterListen, Routes: sp.Routes, Name: sp.Name}
	if sp.Proxied {
		cfg.Tune = func(so *server.Options) {
			// Other nodes must reach this one only through the proxies:
			// do not gossip its real route address.
			so.Cluster.Advertise = "127.0.0.1:1"
			so.Cluster.PoolSize = -1
		}
	}
	return cfg
}

// RunCluster starts an n-node cluster on loopback and waits until its
// JetStream has a leader. Nodes stop when the test ends.
func RunCluster(t testing.TB, n int, o ClusterOptions) *Cluster {
	t.Helper()
	ports := FreePorts(t, 2*n)
	c := &Cluster{t: t, Nodes: make([]*natsnode.Node, n), procs: make([]*exec.Cmd, n), specs: make([]nodeSpec, n), opts: o}
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
		c.specs[i] = nodeSpec{
			Dir:           filepath.Join(dir, fmt.Sprintf("n%d", i)),
			Listen:        fmt.Sprintf("127.0.0.1:%d", ports[i]),
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[n+i]),
			Routes:        routes,
			Name:          fmt.Sprintf("n%d", i),
			Proxied:       o.Proxied,
		}
	}
	t.Cleanup(func() {
		for i := range c.specs {
			c.Stop(i)
		}
	})
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- c.start(i) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// start starts node i and waits until its JetStream is ready.
func (c *Cluster) start(i int) error {
	sp := c.specs[i]
	if !c.opts.Processes {
		nd, err := natsnode.Start(sp.config())
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.Nodes[i] = nd
		return nd.WaitJetStream(ctx)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	spec, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(sp.Dir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(sp.Dir, "..", sp.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envNode+"="+string(spec))
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.procs[i] = cmd
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("node %s said %q", sp.Name, line)
		}
		ready <- err
		io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("node %s: %w (its log: %s)", sp.Name, err, logf.Name())
		}
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("node %s not ready within 60s (its log: %s)", sp.Name, logf.Name())
	}
}

// envNode carries a node's spec to a child process.
const envNode = "AUTONODE_NATSTEST_NODE"

// NodeMain runs a cluster node when the process is one that RunCluster
// started (Processes), and never returns then; otherwise it returns at
// once. Call it first in TestMain.
func NodeMain() {
	raw := os.Getenv(envNode)
	if raw == "" {
		return
	}
	var sp nodeSpec
	if err := json.Unmarshal([]byte(raw), &sp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg := sp.config()
	cfg.Log = os.Stderr
	nd, err := natsnode.Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	err = nd.WaitJetStream(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	nd.Shutdown()
	os.Exit(0)
}

// URLs is the client URLs of every node, comma-separated (what
// nats.Connect takes).
func (c *Cluster) URLs() string {
	var u []string
	for i := range c.specs {
		u = append(u, c.URL(i))
	}
	return strings.Join(u, ",")
}

// URL is node i's client URL.
func (c *Cluster) URL(i int) string { return "nats://" + c.specs[i].Listen }

// Name is node i's server name.
func (c *Cluster) Name(i int) string { return c.specs[i].Name }

// Running reports whether node i runs.
func (c *Cluster) Running(i int) bool { return c.Nodes[i] != nil || c.procs[i] != nil }

// Stop shuts node i down cleanly (it hands its leaderships over first).
func (c *Cluster) Stop(i int) {
	if c.Nodes[i] != nil {
		c.Nodes[i].Shutdown()
		c.Nodes[i] = nil
	}
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			p.Process.Kill()
			<-done
		}
		c.procs[i] = nil
	}
}

// Kill ends node i at once: SIGKILL for a child process (no flush, no
// hand-over), a clean stop for an in-process node.
func (c *Cluster) Kill(i int) {
	if p := c.procs[i]; p != nil {
		p.Process.Kill()
		p.Wait()
		c.procs[i] = nil
		return
	}
	c.Stop(i)
}

// Restart starts node i again on its data directory and ports.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Stop(i)
	if err := c.start(i); err != nil {
		c.t.Fatal(err)
	}
}

// StreamLeader returns the index of the node that leads stream, asking
// the cluster, or -1 when none does (or none answers).
func (c *Cluster) StreamLeader(stream string) int {
	nc, err := nats.Connect(c.URLs(), nats.Timeout(time.Second))
	if err != nil {
		return -1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return -1
	}
	info := st.CachedInfo()
	if info.Cluster == nil {
		return -1
	}
	for i, sp := range c.specs {
		if sp.Name == info.Cluster.Leader {
			return i
		}
	}
	return -1
}

// Partition cuts every route of node i (through the proxies), or heals
// them with cut false.
func (c *Cluster) Partition(i int, cut bool) {
	for j := range c.specs {
		if j == i {
			continue
		}
		c.Proxies[i][j].SetCut(cut)
		c.Proxies[j][i].SetCut(cut)
	}
}
