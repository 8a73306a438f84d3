// Package natsnode runs one embedded NATS server with JetStream, set up
// the way AutoNode's JetStream registry needs it: every write fsynced
// before it is acknowledged (SyncAlways), atomic batch publish large
// enough for AutoNode's transactions, and a server name that stays the
// same across restarts of the same data directory. `autonode serve` and
// the tests of registry/natsstore start their servers with it.
package natsnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults.
const (
	// DefaultClusterName is the cluster name of nodes that form a cluster.
	DefaultClusterName = "autonode"
	// DefaultMaxBatch is the largest atomic batch (messages) a node
	// accepts: one registry transaction is one batch, and a fork of
	// 2,000 children with its checks is about 2,000 messages. A stock
	// nats-server accepts 1,000.
	DefaultMaxBatch = 10000
	// nameFile keeps the node's name inside its data directory.
	nameFile = "autonode-node-name"
)

// ErrConfig reports a configuration that cannot work; the message says
// what is wrong and what is allowed.
var ErrConfig = errors.New("invalid node configuration")

// Config describes one node.
type Config struct {
	// Dir holds the node's JetStream data (created with mode 0700 when
	// missing). Required.
	Dir string
	// Listen is the HOST:PORT clients connect to; port 0 picks a free
	// port. Required.
	Listen string
	// ClusterListen is the HOST:PORT other nodes route to; "" runs a
	// single node.
	ClusterListen string
	// Routes are the other nodes' cluster addresses
	// (nats://HOST:PORT); they need ClusterListen.
	Routes []string
	// Name is the node's server name, unique in the cluster and the same
	// across restarts. "" reads it from Dir, or makes one on the first
	// start and keeps it there.
	Name string
	// ClusterName defaults to DefaultClusterName.
	ClusterName string
	// MaxBatch defaults to DefaultMaxBatch.
	MaxBatch int
	// Log receives the server's log lines; nil discards them.
	Log io.Writer
	// Tune, when set, adjusts the server options last (tests use it to
	// route through proxies).
	Tune func(*server.Options)
}

// Node is a running server.
type Node struct {
	srv  *server.Server
	name string
	dir  string
}

// SplitHostPort parses HOST:PORT the way the node does (port 0..65535),
// for flag validation.
func SplitHostPort(what, hp string) (string, int, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s %q is not HOST:PORT (for example 127.0.0.1:4222): %v", ErrConfig, what, hp, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("%w: %s %q: the port must be a number from 0 to 65535", ErrConfig, what, hp)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, p, nil
}

// ParseRoutes parses route URLs (nats://HOST:PORT); it refuses anything
// else, naming the entry.
func ParseRoutes(routes []string) ([]*url.URL, error) {
	var out []*url.URL
	for _, r := range routes {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "nats" || u.Host == "" || u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("%w: route %q is not nats://HOST:PORT", ErrConfig, r)
		}
		if _, _, err := SplitHostPort("route", u.Host); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// options builds the server options for cfg (validated).
func options(cfg Config) (*server.Options, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: a data directory is required", ErrConfig)
	}
	if fi, err := os.Stat(cfg.Dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%w: data directory %s is a file", ErrConfig, cfg.Dir)
	}
	if cfg.Listen == "" {
		return nil, fmt.Errorf("%w: a client address HOST:PORT is required", ErrConfig)
	}
	host, port, err := SplitHostPort("client address", cfg.Listen)
	if err != nil {
		return nil, err
	}
	routes, err := ParseRoutes(cfg.Routes)
	if err != nil {
		return nil, err
	}
	if len(routes) > 0 && cfg.ClusterListen == "" {
		return nil, fmt.Errorf("%w: routes need a cluster address (--cluster-listen HOST:PORT) that the other nodes route to", ErrConfig)
	}
	if cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("%w: max batch %d is negative", ErrConfig, cfg.MaxBatch)
	}
	o := &server.Options{
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		SyncAlways: true,
		NoSigs:     true,
	}
	if port == 0 {
		o.Port = server.RANDOM_PORT
	}
	o.JetStreamLimits.MaxBatchSize = cfg.MaxBatch
	if o.JetStreamLimits.MaxBatchSize == 0 {
		o.JetStreamLimits.MaxBatchSize = DefaultMaxBatch
	}
	if cfg.ClusterListen != "" {
		chost, cport, err := SplitHostPort("cluster address", cfg.ClusterListen)
		if err != nil {
			return nil, err
		}
		if cport == 0 {
			return nil, fmt.Errorf("%w: cluster address %q needs a fixed port: the other nodes route to it", ErrConfig, cfg.ClusterListen)
		}
		o.Cluster.Host, o.Cluster.Port = chost, cport
		o.Cluster.Name = cfg.ClusterName
		if o.Cluster.Name == "" {
			o.Cluster.Name = DefaultClusterName
		}
		o.Routes = routes
	}
	return o, nil
}

// Start validates cfg, starts the node and waits until it accepts
// clients. A cluster node's JetStream becomes usable once a majority of
// the nodes have met (WaitJetStream).
func Start(cfg Config) (*Node, error) {
	o, err := options(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	name := cfg.Name
	if name == "" {
		if name, err = nodeName(cfg.Dir); err != nil {
			return nil, err
		}
	}
	o.ServerName = name
	if cfg.Tune != nil {
		cfg.Tune(o)
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	lg := &logger{w: cfg.Log, name: name}
	if lg.w == nil {
		lg.w = io.Discard
	}
	srv.SetLoggerV2(lg, false, false, false)
	go srv.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		if msg := lg.fatal(); msg != "" {
			srv.Shutdown()
			return nil, fmt.Errorf("node %s did not start: %s", name, msg)
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			return nil, fmt.Errorf("node %s did not start listening on %s within 30s", name, cfg.Listen)
		}
	}
	return &Node{srv: srv, name: name, dir: cfg.Dir}, nil
}

// nodeName reads the node's name from dir, or makes one and keeps it.
func nodeName(dir string) (string, error) {
	p := filepath.Join(dir, nameFile)
	if b, err := os.ReadFile(p); err == nil {
		if n := strings.TrimSpace(string(b)); n != "" {
			return n, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node name: %w", err)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, host)
	if host == "" {
		host = "node"
	}
	n := host + "-" + hex.EncodeToString(rnd[:])
	if err := os.WriteFile(p, []byte(n+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep node name: %w", err)
	}
	return n, nil
}

// Name is the node's server name.
func (n *Node) Name() string { return n.name }

// Dir is the node's data directory.
func (n *Node) Dir() string { return n.dir }

// Server is the embedded server.
func (n *Node) Server() *server.Server { return n.srv }

// ClientURL is the address clients connect to (nats://HOST:PORT, with the
// port picked when Listen asked for port 0).
func (n *Node) ClientURL() string {
	a, ok := n.srv.Addr().(*net.TCPAddr)
	if !ok {
		return n.srv.ClientURL()
	}
	host := n.srv.ClientURL()
	if u, err := url.Parse(host); err == nil {
		h, _, _ := net.SplitHostPort(u.Host)
		if h == "0.0.0.0" || h == "::" || h == "" {
			h = "127.0.0.1"
		}
		return "nats://" + net.JoinHostPort(h, strconv.Itoa(a.Port))
	}
	return host
}

// WaitJetStream waits until the node can serve JetStream requests (a
// cluster node: a meta leader was elected).
func (n *Node) WaitJetStream(ctx context.Context) error {
	for {
		if n.srv.JetStreamEnabled() && (!n.srv.JetStreamIsClustered() || n.srv.JetStreamIsCurrent()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: JetStream not ready: %w (a cluster needs a majority of its nodes running)", n.name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Shutdown stops the node cleanly (it hands its stream leaderships to
// other nodes first) and waits until it has stopped.
func (n *Node) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// logger writes the server's log lines to w and keeps the first fatal
// one (the server cannot listen, cannot open its store), which Start
// reports.
type logger struct {
	w    io.Writer
	name string

	mu    sync.Mutex
	first string
}

func (l *logger) log(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s [%s] %s: %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), l.name, level, fmt.Sprintf(format, v...))
}

func (l *logger) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

func (l *logger) Noticef(format string, v ...any) { l.log("INF", format, v...) }
func (l *logger) Warnf(format string, v ...any)   { l.log("WRN", format, v...) }
func (l *logger) Fatalf(format string, v ...any) {
	l.log("FTL", format, v...)
	l.mu.Lock()
	if l.first == "" {
		l.first = fmt.Sprintf(format, v...)
	}
	l.mu.Unlock()
}
func (l *logger) Errorf(format string, v ...any) { l.log("ERR", format, v...) }
func (l *logger) Debugf(format string, v ...any) { l.log("DBG", format, v...) }
func (l *logger) Tracef(format string, v ...any) { l.log("TRC", format, v...) }

// FreePorts returns n TCP ports on 127.0.0.1 that were free a moment ago
// (a cluster's route ports must be known before its nodes start).
func FreePorts(n int) ([]int, error) {
	ports := make([]int, n)
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// StartLocal starts an n-node cluster on loopback in this process, node i
// keeping its data in dir/n<i>, and waits until its JetStream is ready:
// for benchmarks and trials. Shut every node down when done.
func StartLocal(dir string, n int) ([]*Node, error) {
	ports, err := FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	nodes := make([]*Node, n)
	errs := make(chan error, n)
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+j]))
			}
		}
		cfg := Config{
			Dir:           filepath.Join(dir, fmt.Sprintf("n%d", i)),
			Listen:        fmt.Sprintf("127.0.0.1:%d", ports[i]),
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[n+i]),
			Routes:        routes,
			Name:          fmt.Sprintf("n%d", i),
		}
		go func() {
			nd, err := Start(cfg)
			nodes[i] = nd
			errs <- err
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, nd := range nodes {
			if first = nd.WaitJetStream(ctx); first != nil {
				break
			}
		}
	}
	if first != nil {
		for _, nd := range nodes {
			if nd != nil {
				nd.Shutdown()
			}
		}
		return nil, first
	}
	return nodes, nil
}
