package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natsnode"
)

// addNATSBench adds `autonode bench nats` to the bench command.
func addNATSBench(root *cobra.Command, e *env) {
	bench := subcommand(root, "bench")
	if bench == nil {
		return
	}
	var ops, rounds int
	cmd := &cobra.Command{
		Use:   "nats",
		Short: "Time the registry on NATS JetStream against the JSON file, in the same run",
		Long: `Start a JetStream node and a 3-node JetStream cluster in this process (on
loopback, data in a temporary directory, every write fsynced as autonode
serve does), then time registry operations on the JSON file (the
reference), the node and the cluster, interleaved: through the package API
(create with an automatic id, rename, branch, fork of 10, delete and
restore, get, list of 100 threads), and through the commands users run
(this binary as a child process: autonode run of a script that spawns,
branches and renames, and autonode list, on the registry the API rows
left: a few thousand threads). It prints one table of medians
(p50, and p90 for the API) with the cluster's ratio to the file and the
target from the JetStream issue: a registry operation's p50 within 5 ms
on the 3-node cluster.

On a single node a transaction of several records costs more than on the
cluster: JetStream stages an atomic batch of a one-replica stream in a
temporary file store.`,
		Example: `  autonode bench nats
  autonode bench nats --ops 500 --rounds 5`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			if ops < 10 || rounds < 1 {
				return usageErrorf("--ops wants at least 10 and --rounds at least 1; got %d and %d", ops, rounds)
			}
			return runNATSBench(e, ops, rounds)
		}),
	}
	cmd.Flags().IntVar(&ops, "ops", 200, "operations of each kind per store and `N`")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "interleaved `ROUNDS` of the CLI rows")
	bench.AddCommand(cmd)
}

// subcommand returns root's command called name, or nil.
func subcommand(root *cobra.Command, name string) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// benchStore is one registry under test.
type benchStore struct {
	name string
	s    registry.Store
	env  []string // how a child process reaches it
}

func runNATSBench(e *env, ops, rounds int) error {
	dir, err := os.MkdirTemp("", "autonode-bench-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	one, err := natsnode.Start(natsnode.Config{Dir: filepath.Join(dir, "one"), Listen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer one.Shutdown()
	cluster, err := natsnode.StartLocal(filepath.Join(dir, "cluster"), 3)
	if err != nil {
		return err
	}
	defer func() {
		for _, n := range cluster {
			n.Shutdown()
		}
	}()
	clusterURL := cluster[0].ClientURL() + "," + cluster[1].ClientURL() + "," + cluster[2].ClientURL()
	regPath := filepath.Join(dir, registry.DefaultRegistryFile)
	fs, err := registry.OpenFile(regPath, nil)
	if err != nil {
		return err
	}
	defer fs.Close()
	stores := []*benchStore{{name: "file", s: fs, env: []string{registry.EnvRegistry + "=" + regPath}}}
	for _, c := range []struct{ name, url string }{{"nats-1", one.ClientURL()}, {"nats-3", clusterURL}} {
		s, err := natsstore.Open(natsstore.Options{URL: c.url, Bucket: "bench"})
		if err != nil {
			return err
		}
		defer s.Close()
		stores = append(stores, &benchStore{name: c.name, s: s, env: []string{natsstore.EnvURL + "=" + c.url, natsstore.EnvBucket + "=bench"}})
	}
	w := e.stdout
	fmt.Fprintf(w, "autonode bench nats: %d operations of each kind per store, %d CLI round(s), %s\n", ops, rounds, loadLine())
	for _, st := range stores {
		if err := st.s.Update(func(tx *registry.Tx) error {
			if err := tx.Create(registry.NewThread(1, "CORE"), benchToken); err != nil {
				return err
			}
			for i := range 100 {
				if err := tx.Create(registry.NewThread(registry.ID(1000+i), "BASE"), benchToken); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	fmt.Fprintf(w, "%-24s %10s %10s %10s %10s %10s %10s %12s  %s\n", "operation", "file p50", "p90", "nats-1 p50", "p90", "nats-3 p50", "p90", "nats-3/file", "target (nats-3)")
	for _, op := range natsBenchOps() {
		lat := make([][]time.Duration, len(stores))
		for i := range ops {
			for k, st := range stores {
				t0 := time.Now()
				if err := op.fn(st.s, i); err != nil {
					return fmt.Errorf("%s on %s: %w", op.name, st.name, err)
				}
				lat[k] = append(lat[k], time.Since(t0))
			}
		}
		benchLine(w, "api "+op.name, lat, true, "p50 <= 5 ms")
	}
	return natsBenchCLI(e, dir, stores, rounds)
}

type natsBenchOp struct {
	name string
	fn   func(s registry.Store, i int) error
}

func natsBenchOps() []natsBenchOp {
	update := func(fn func(tx *registry.Tx, i int) error) func(registry.Store, int) error {
		return func(s registry.Store, i int) error {
			return s.Update(func(tx *registry.Tx) error { return fn(tx, i) })
		}
	}
	return []natsBenchOp{
		{"create (next id)", update(func(tx *registry.Tx, i int) error {
			return tx.Create(registry.NewThread(tx.NextID(), "BASE"), benchToken)
		})},
		{"rename", update(func(tx *registry.Tx, i int) error {
			_, err := tx.Rename(1, fmt.Sprintf("renamed-%d", i), benchToken)
			return err
		})},
		{"branch", update(func(tx *registry.Tx, i int) error {
			_, err := tx.Branch(1, tx.NextID(), nil, benchToken)
			return err
		})},
		{"fork of 10", update(func(tx *registry.Tx, i int) error {
			next := tx.NextID()
			ids := make([]registry.ID, 10)
			for k := range ids {
				ids[k] = next + registry.ID(k)
			}
			_, err := tx.Fork(1, ids, nil, benchToken)
			return err
		})},
		{"delete+restore", func(s registry.Store, i int) error {
			id := registry.ID(1000 + i%100)
			if err := s.Update(func(tx *registry.Tx) error { _, err := tx.Delete(id, benchToken); return err }); err != nil {
				return err
			}
			return s.Update(func(tx *registry.Tx) error { _, err := tx.Restore(id, benchToken); return err })
		}},
		{"get", func(s registry.Store, i int) error {
			return s.View(func(tx *registry.Tx) error { _, err := tx.Get(1); return err })
		}},
		{"list (100+)", func(s registry.Store, i int) error {
			return s.View(func(tx *registry.Tx) error {
				_, err := tx.List(registry.Filter{Stage: "BASE"})
				return err
			})
		}},
	}
}

// natsBenchCLI times commands through this binary as a child process,
// interleaved across the stores.
func natsBenchCLI(e *env, dir string, stores []*benchStore, rounds int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	script := filepath.Join(dir, "bench.star")
	if err := os.WriteFile(script, []byte(`def body():
    return 1
t = spawn(stage = "CORE", run = body)
b = branch(t.id)
rename(b.id, "cli-bench")
`), 0o600); err != nil {
		return err
	}
	n := 0
	if err := stores[0].s.View(func(tx *registry.Tx) error { n = tx.Len(); return nil }); err != nil {
		return err
	}
	cmds := []struct {
		name string
		args []string
	}{{fmt.Sprintf("cli run (%d threads)", n), []string{"run", script}}, {fmt.Sprintf("cli list (%d threads)", n), []string{"list"}}}
	for _, c := range cmds {
		lat := make([][]time.Duration, len(stores))
		for range rounds * 5 {
			for k, st := range stores {
				cmd := exec.Command(self, c.args...)
				cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, envToken + "=" + benchToken}, st.env...)
				cmd.Dir = dir
				t0 := time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("%s on %s: %v\n%s", c.name, st.name, err, out)
				}
				lat[k] = append(lat[k], time.Since(t0))
			}
		}
		benchLine(e.stdout, c.name, lat, false, "")
	}
	return nil
}

// benchLine prints one row: p50 (and p90) per store, the cluster's ratio
// to the file, the target.
func benchLine(w interface{ Write([]byte) (int, error) }, name string, lat [][]time.Duration, p90 bool, target string) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	cells := []any{name}
	for _, l := range lat {
		s := slices.Clone(l)
		slices.Sort(s)
		cells = append(cells, ms(s[len(s)/2]))
		if p90 {
			cells = append(cells, ms(s[len(s)*9/10]))
		} else {
			cells = append(cells, "")
		}
	}
	ref, c3 := p50(lat[0]), p50(lat[2])
	cells = append(cells, fmt.Sprintf("%.1fx", float64(c3)/float64(ref)), target)
	fmt.Fprintf(w, "%-24s %10s %10s %10s %10s %10s %10s %12s  %s\n", cells...)
}

// p50 is the median of d.
func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
