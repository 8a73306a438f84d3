package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natsnode"
)

func addServeCommands(root *cobra.Command, e *env) {
	var cfg natsnode.Config
	var routes string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "serve --dir DIR --listen HOST:PORT [--cluster-listen HOST:PORT --routes nats://HOST:PORT,...]",
		GroupID: groupTools,
		Short:   "Run a NATS JetStream node that holds a shared registry",
		Long: `Run an embedded NATS server with JetStream, for registries shared by
several machines (every other command with --nats URL, or AUTONODE_NATS):
a first cluster without installing anything else. Any standard nats-server
2.12 or later with JetStream works as well.

The node keeps its data in --dir and fsyncs every write before it
acknowledges it (sync_interval: always): with JetStream's default of an
fsync every two minutes, Jepsen's analysis of NATS 2.12.1 lost acknowledged
writes when nodes lost power together. It accepts atomic batches of up to
` + fmt.Sprint(natsnode.DefaultMaxBatch) + ` messages (a stock server: 1,000), so that large forks commit
in one step. Clients connect to --listen.

For a cluster, start three nodes (or five), each with its own --dir, a
--cluster-listen address the others can reach and --routes naming the
others' cluster addresses. A registry created on a cluster keeps 3
replicas and survives the loss of one node. A node keeps its name (in
DIR/autonode-node-name) across restarts.

It runs until SIGINT or SIGTERM, then stops cleanly (a leader first hands
its leaderships over) and exits 0.`,
		Example: `  autonode serve --dir /var/lib/autonode/nats --listen 127.0.0.1:4222
  autonode serve --dir n1 --listen 0.0.0.0:4222 --cluster-listen 10.0.0.1:6222 \
      --routes nats://10.0.0.2:6222,nats://10.0.0.3:6222
  AUTONODE_NATS=nats://10.0.0.1:4222,nats://10.0.0.2:4222 autonode run job.star`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			if cfg.Dir == "" {
				return usageErrorf("serve needs --dir DIR: where the node keeps its data")
			}
			if cfg.Listen == "" {
				return usageErrorf("serve needs --listen HOST:PORT: where clients connect (for example 127.0.0.1:4222)")
			}
			if routes != "" {
				cfg.Routes = strings.Split(routes, ",")
			}
			if !quiet {
				cfg.Log = e.stderr
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			node, err := natsnode.Start(cfg)
			if errors.Is(err, natsnode.ErrConfig) {
				return usageErrorf("serve: %v", err)
			}
			if err != nil {
				return err
			}
			describeNode(e.stdout, node, cfg)
			stopped := make(chan struct{})
			go func() { node.Server().WaitForShutdown(); close(stopped) }()
			select {
			case <-ctx.Done():
				fmt.Fprintf(e.stderr, "autonode serve: stopping node %s\n", node.Name())
				node.Shutdown()
				return nil
			case <-stopped:
				return fmt.Errorf("node %s stopped on its own (its log above says why)", node.Name())
			}
		}),
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "`DIR` for the node's JetStream data (created when missing)")
	f.StringVar(&cfg.Listen, "listen", "", "`HOST:PORT` for clients (port 0 picks a free one)")
	f.StringVar(&cfg.ClusterListen, "cluster-listen", "", "`HOST:PORT` other nodes route to (makes the node part of a cluster)")
	f.StringVar(&routes, "routes", "", "the other nodes' cluster addresses, `nats://HOST:PORT,...`")
	f.StringVar(&cfg.Name, "name", "", "node `NAME`, unique in the cluster (default: made on the first start and kept in DIR)")
	f.StringVar(&cfg.ClusterName, "cluster-name", natsnode.DefaultClusterName, "cluster `NAME`, the same on every node")
	f.BoolVar(&quiet, "quiet", false, "do not copy the server's log to standard error")
	root.AddCommand(cmd)
}

// describeNode prints what the node serves, the client URL first (on a
// line of its own, for scripts: "listening on nats://HOST:PORT").
func describeNode(w io.Writer, node *natsnode.Node, cfg natsnode.Config) {
	fmt.Fprintf(w, "autonode serve: node %s listening on %s\n", node.Name(), node.ClientURL())
	fmt.Fprintf(w, "  data: %s (every write fsynced before it is acknowledged)\n", cfg.Dir)
	if cfg.ClusterListen != "" {
		fmt.Fprintf(w, "  cluster %s: routes on %s to %s\n", cfg.ClusterName, cfg.ClusterListen, strings.Join(cfg.Routes, ", "))
	}
	fmt.Fprintf(w, "  use it with: autonode --nats %s list   (or %s=%s)\n", node.ClientURL(), natsstore.EnvURL, node.ClientURL())
}
