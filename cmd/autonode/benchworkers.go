package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natsnode"
)

// addWorkersBench adds `autonode bench workers` to the bench command.
func addWorkersBench(root *cobra.Command, e *env) {
	bench := subcommand(root, "bench")
	if bench == nil {
		return
	}
	var threads, workers, rounds, concurrency int
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "Time a spawn_batch through autonode worker processes against the same run on the JSON file",
		Long: `Start a 3-node JetStream cluster in this process (on loopback, data in a
temporary directory, every write fsynced, as autonode serve does) and
--workers autonode worker processes (this binary), then time, interleaved
round by round, a script that spawn_batch()es --threads trivial threads
and waits for them: run with autonode run --remote on the cluster (the
workers run the threads), and with autonode run on a JSON registry file
(the reference: the script's own process runs them). Each run is a child
process; the table gives the medians of the threads per second the script
measured (from spawn_batch to the last result) and of the whole command's
wall time (start-up included), with the workers' ratio to the file and the
target from the JetStream issue: 1,000 threads/s through 3 workers on a
3-node cluster.`,
		Example: `  autonode bench workers
  autonode bench workers --threads 5000 --rounds 5`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			if threads < 1 || workers < 1 || rounds < 1 || concurrency < 1 {
				return usageErrorf("--threads, --workers, --rounds and --concurrency want 1 or more")
			}
			return runWorkersBench(e, threads, workers, rounds, concurrency)
		}),
	}
	cmd.Flags().IntVar(&threads, "threads", 2000, "threads in the spawn_batch (`N`)")
	cmd.Flags().IntVar(&workers, "workers", 3, "autonode worker processes (`N`)")
	cmd.Flags().IntVar(&concurrency, "concurrency", 64, "threads each worker runs at once (`N`)")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "interleaved `ROUNDS`")
	bench.AddCommand(cmd)
}

// workersBenchScript spawns argv[1] trivial threads and prints the
// threads per second from spawn_batch to the last result.
const workersBenchScript = `
def trivial(i):
    return i
tok = token()
t0 = time.now()
rs = spawn_batch([{"run": trivial, "args": (i,), "token": tok, "caching": False} for i in range(int(argv[1]))])
ok = len([r for r in rs if type(r) == "Thread" and r.status == "succeeded"])
secs = (time.now() - t0) / time.second
if ok != len(rs):
    fail("%d of %d threads succeeded" % (ok, len(rs)))
print("threads/s %f" % (ok / secs))
`

func runWorkersBench(e *env, threads, workers, rounds, concurrency int) error {
	dir, err := os.MkdirTemp("", "autonode-bench-workers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cluster, err := natsnode.StartLocal(filepath.Join(dir, "cluster"), 3)
	if err != nil {
		return err
	}
	defer func() {
		for _, n := range cluster {
			n.Shutdown()
		}
	}()
	urls := cluster[0].ClientURL() + "," + cluster[1].ClientURL() + "," + cluster[2].ClientURL()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	script := filepath.Join(dir, "batch.star")
	if err := os.WriteFile(script, []byte(workersBenchScript), 0o600); err != nil {
		return err
	}
	natsVars := []string{natsstore.EnvURL + "=" + urls, natsstore.EnvBucket + "=bench"}
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, envToken + "=" + benchToken}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}()
	for i := range workers {
		p := exec.Command(self, "worker", "--quiet", "--name", fmt.Sprintf("bench-%d", i), "--concurrency", strconv.Itoa(concurrency))
		p.Env, p.Dir = append(append([]string{}, base...), natsVars...), dir
		if err := p.Start(); err != nil {
			return err
		}
		procs = append(procs, p)
	}
	fmt.Fprintf(e.stdout, "autonode bench workers: spawn_batch of %d trivial threads, %d worker process(es) x %d, a 3-node cluster, %d round(s), %s\n", threads, workers, concurrency, rounds, loadLine())
	runs := []struct {
		name string
		args []string
		vars []string
	}{
		{"file (the script runs them)", []string{"run", "--quiet", script, strconv.Itoa(threads)}, []string{"AUTONODE_REGISTRY=" + filepath.Join(dir, "thread_registry.json")}},
		{fmt.Sprintf("--remote, %d workers", workers), []string{"run", "--remote", "--quiet", script, strconv.Itoa(threads)}, natsVars},
	}
	rates := make([][]float64, len(runs))
	walls := make([][]float64, len(runs))
	for r := 0; r <= rounds; r++ { // round 0 warms up (bucket, streams, workers' start)
		for k, run := range runs {
			c := exec.Command(self, run.args...)
			c.Env, c.Dir = append(append([]string{}, base...), run.vars...), dir
			t0 := time.Now()
			out, err := c.CombinedOutput()
			wall := time.Since(t0).Seconds()
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", run.name, err, out)
			}
			rate, ok := strings.CutPrefix(strings.TrimSpace(lastLine(string(out))), "threads/s ")
			f, perr := strconv.ParseFloat(rate, 64)
			if !ok || perr != nil {
				return fmt.Errorf("%s printed %q", run.name, out)
			}
			if r > 0 {
				rates[k], walls[k] = append(rates[k], f), append(walls[k], wall)
			}
		}
	}
	w := e.stdout
	fmt.Fprintf(w, "%-28s %14s %14s %12s  %s\n", "run", "threads/s p50", "wall p50", "vs file", "target")
	ref := medianF(rates[0])
	for k, run := range runs {
		target := ""
		if k > 0 {
			target = "threads/s >= 1000 (3 workers, 3 nodes)"
		}
		fmt.Fprintf(w, "%-28s %14.0f %13.2fs %11.2fx  %s\n", run.name, medianF(rates[k]), medianF(walls[k]), medianF(rates[k])/ref, target)
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
