package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/runtime"
)

func addWorkerCommands(root *cobra.Command, e *env) {
	var devices, name string
	var concurrency int
	var lease time.Duration
	var quiet, sandboxedOnly bool
	var maxSteps uint64
	cmd := &cobra.Command{
		Use:     "worker --nats URL [--devices cpu,gpu] [--concurrency N]",
		GroupID: groupScripts,
		Short:   "Run the threads that scripts left to workers (autonode run --remote)",
		Long: `Take threads from the work queue of the registry on NATS JetStream (--nats
URL, or AUTONODE_NATS) and run them: CRITICAL before CORE before BASE (within
a stage, higher priority first among the threads fetched together: JetStream
keeps no priority, so it is approximate), at most --concurrency at a time.
Run one worker on each machine that should do the work; scripts leave their
threads to the workers with autonode run --remote.

Each thread's body travels with it (its source, the values it captured, its
arguments), so the worker needs no copy of the script. The worker claims each
attempt with a compare-and-set on the thread's record (pending -> running,
with a lease it renews every third of --lease while the thread runs) and
every later write of that attempt is fenced by it: once a lease has expired,
the sweeper every worker runs records the attempt crashed and retries it by
the thread's retry policy, and nothing the old holder writes for it is
accepted. A thread is run at least once, not exactly once: sandboxed bodies
are pure, so that is safe; an unsandboxed body must be idempotent. Cancel
requests (autonode cancel, cancel() anywhere) stop a running thread within a
second. Bodies print to this command's standard output.

SIGINT or SIGTERM stops taking threads and waits for the running ones to end
(their TTLs bound the wait); a second signal exits at once, leaving them to
their leases.`,
		Example: `  autonode worker --nats nats://10.0.0.5:4222
  autonode worker --nats nats://n1:4222,nats://n2:4222 --devices gpu --concurrency 1
  autonode run --nats nats://10.0.0.5:4222 --remote sweep.star`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			b := e.backend()
			if b.nats == "" {
				return usageErrorf("worker needs --nats URL (or %s): the registry and work queue it serves", natsstore.EnvURL)
			}
			if concurrency < 0 {
				return usageErrorf("--concurrency %d: want 1 or more (0: the number of cores)", concurrency)
			}
			if lease < 300*time.Millisecond {
				return usageErrorf("--lease %s: want at least 300ms", lease)
			}
			var classes []string
			for _, d := range strings.Split(devices, ",") {
				d = strings.TrimSpace(d)
				if d == "" {
					continue
				}
				if d != "cpu" && d != "gpu" {
					return usageErrorf("--devices %q: %q is not a device class; want cpu, gpu or cpu,gpu", devices, d)
				}
				classes = append(classes, d)
			}
			if len(classes) == 0 {
				return usageErrorf("--devices %q: name cpu, gpu or both", devices)
			}
			opts := e.runtimeOptions()
			opts.SessionToken, opts.Stdout, opts.Stderr = e.token(), e.stdout, e.stderr
			opts.MaxSteps, opts.ForbidUnsandboxed = maxSteps, sandboxedOnly
			log := e.stderr
			if quiet {
				log = nil
			}
			w, err := runtime.NewWorker(runtime.WorkerOptions{Runtime: opts, Name: name, Devices: classes,
				Concurrency: concurrency, Lease: lease, Log: log})
			if err != nil {
				return hint(err)
			}
			if !quiet {
				fmt.Fprintf(e.stderr, "autonode worker %s: taking %s threads from %s (lease %s)\n", w.Name(), strings.Join(classes, " and "), e.registryName(), lease)
			}
			ctx, drain, received := workerSignals(cmd.Context(), e)
			err = w.Run(ctx, drain)
			st := w.Stats()
			if !quiet {
				fmt.Fprintf(e.stderr, "autonode worker %s: stopped: %d claimed, %d succeeded, %d ended otherwise, %d fenced, %d obsolete messages, %d swept\n",
					w.Name(), st.Claimed, st.Succeeded, st.Ended, st.Fenced, st.Obsolete, st.Swept)
			}
			if err != nil {
				return hint(err)
			}
			if s := received(); s != nil && drain.Err() != nil {
				return &exitError{code: signalExit(s)}
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&devices, "devices", "cpu,gpu", "device classes to take threads for: `cpu,gpu`, cpu or gpu (a machine without a GPU runs gpu threads on its CPU)")
	cmd.Flags().IntVar(&concurrency, "concurrency", 0, "threads to run at once (default: the number of cores)")
	cmd.Flags().DurationVar(&lease, "lease", natsstore.DefaultLease, "how long an attempt stays this worker's without a renewal (`DURATION`)")
	cmd.Flags().StringVar(&name, "name", "", "the worker's name in records (default HOST-PID)")
	cmd.Flags().Uint64Var(&maxSteps, "max-steps", 0, "Starlark step budget per thread body (default: none)")
	cmd.Flags().BoolVar(&sandboxedOnly, "sandboxed-only", false, "refuse to run unsandboxed threads (they fail with the reason)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "print nothing of the worker's own (bodies still print)")
	root.AddCommand(cmd)
	addWorkersBench(root, e)
}

// workerSignals: the first SIGINT or SIGTERM ends ctx (take no more
// threads), the second ends drain (stop waiting for the running ones).
func workerSignals(parent context.Context, e *env) (ctx, drain context.Context, received func() os.Signal) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	ctx, stop := context.WithCancel(parent)
	drain, stopDrain := context.WithCancel(context.Background())
	var first os.Signal
	got := make(chan struct{})
	go func() {
		s := <-ch
		first = s
		close(got)
		fmt.Fprintf(e.stderr, "autonode worker: %s: taking no more threads; waiting for the running ones (%s again stops at once)\n", signalName(s), signalName(s))
		stop()
		<-ch
		stopDrain()
	}()
	return ctx, drain, func() os.Signal {
		select {
		case <-got:
			return first
		default:
			return nil
		}
	}
}
