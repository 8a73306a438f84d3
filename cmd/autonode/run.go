package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/runtime"
)

func addRunCommands(root *cobra.Command, e *env) {
	var workers int
	var maxSteps uint64
	var quiet, allowFailed, remote bool
	var allowLoad []string
	var memoryWait time.Duration
	cmd := &cobra.Command{
		Use:     "run FILE.star [ARGS...]",
		GroupID: groupScripts,
		Short:   "Run a Starlark script",
		Long: `Run a Starlark script that spawns, derives and inspects threads. The
script sees every AutoNode builtin (spawn, branch, fork, merge, ...), the
accel, host, json, math and time modules, and its arguments in argv. Its top
level may use the host module (it is your own automation); thread bodies may
only when spawned with sandbox=False.

load() reads modules relative to the loading file, below the script's
directory; --allow-load PATH allows another directory (repeat it for more).
Paths that leave them (.., absolute paths, symbolic links) are refused, and
only regular files up to 1 MiB are read.

A busy CPU never refuses a thread: threads queue for the worker pool. While
memory is short (more than 95% used, or less free than a thread's
metadata.max_memory_mb) a thread waits up to --memory-wait before it starts,
then fails.

With --remote (and --nats) the threads the script spawns are left to
autonode worker processes: each is recorded, its body, arguments and
captured values travelling with it, and published on the registry's work
queue; wait() and the handles follow the record as the workers write it,
and the run ends when they have ended. A body that captures something that
cannot travel (an array, a thread handle) is refused at spawn. Without
--remote a script on a NATS registry runs its threads itself.

SIGINT (Ctrl-C) or SIGTERM cancels every running thread, records it
cancelled and exits with status 130 or 143; a second signal exits at once.
With --remote the cancel is a request in each thread's record, which the
workers honour within a second.

Exit status:
  0  the script finished and every thread it started succeeded (or was
     cached or cancelled)
  1  a script error (printed with its backtrace), or an internal error (a
     bug) failed a call or a thread during the run
  2  a usage error
  3  the script finished, but a thread it started (or ran again) ended
     failed, timed_out, crashed or skipped: one line per such thread on
     standard error (id, name, status, the first line of its error);
     --allow-failed exits 0 instead`,
		Example: `  autonode run scripts/quickstart.star
  AUTONODE_TOKEN=$(autonode token) autonode run sweep.star --lr 0.1
  autonode run --allow-failed --memory-wait 2m scripts/sandbox.star
  autonode run --nats nats://10.0.0.5:4222 --remote scripts/batch.star`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := workersFlag(workers); err != nil {
				return err
			}
			if memoryWait < 0 {
				return usageErrorf("--memory-wait %s: want a duration of 0 or more (0: fail at once)", memoryWait)
			}
			wait := memoryWait
			if wait == 0 {
				wait = -1 // Options: a negative wait fails at once
			}
			if remote && e.natsURL() == "" {
				return usageErrorf("run --remote leaves the threads to autonode worker processes, which serve a registry on NATS: add --nats URL (or set %s)", natsstore.EnvURL)
			}
			file := args[0]
			if fi, err := os.Stat(file); err != nil || fi.IsDir() {
				return usageErrorf("run: %s is not a script file", file)
			}
			ctx, stop, received := interruptible(cmd.Context(), e.stderr)
			defer stop()
			bars := newProgressTerminal(e, quiet)
			stdout := bars.stdout()
			opts := e.runtimeOptions()
			opts.SessionToken, opts.Stdout, opts.Stderr = e.token(), stdout, e.stderr
			opts.CPUWorkers, opts.MaxSteps, opts.TopLevelHost = workers, maxSteps, true
			opts.Argv, opts.Progress = args, bars.report()
			opts.LoadDir, opts.AllowLoad, opts.MemoryWait = filepath.Dir(file), allowLoad, wait
			opts.Remote = remote
			rt, err := runtime.New(opts)
			if err != nil {
				return err
			}
			if runHook != nil {
				runHook(rt)
			}
			internal := builtins.InternalErrors()
			go func() {
				<-ctx.Done()
				if received() == nil {
					return
				}
				// At a signal, exit fast: the cancellations that follow are
				// appended to the journal, which keeps every committed
				// operation, and the next writer folds it into the snapshot;
				// the collector runs less often (the runtime's memory limit
				// still holds it) while the process records them and ends.
				if fs, ok := rt.Store().(*registry.FileStore); ok {
					fs.SkipCompaction()
				}
				if old := debug.SetGCPercent(1000); old > 1000 || old < 0 {
					debug.SetGCPercent(old)
				}
			}()
			_, runErr := rt.ExecFile(ctx, file, nil)
			closeErr := rt.Close()
			if sig := received(); sig != nil {
				fmt.Fprintf(e.stderr, "autonode: interrupted by %s; the threads it stopped are recorded cancelled\n", signalName(sig))
				return &exitError{code: signalExit(sig), err: closeErr}
			}
			unsuccessful := rt.Failed()
			if runErr != nil {
				printScriptError(e, runErr)
				printFailedThreads(e, unsuccessful)
				return failed()
			}
			if n := builtins.InternalErrors() - internal; n > 0 {
				// A bug failed a thread (or a call the script caught):
				// never report the run as a success.
				printFailedThreads(e, unsuccessful)
				fmt.Fprintf(e.stderr, "autonode: %d internal error(s) during the run (a bug in AutoNode; please report it): see the failed threads' errors\n", n)
				return failed()
			}
			if closeErr != nil {
				return closeErr
			}
			if len(unsuccessful) > 0 && !allowFailed {
				printFailedThreads(e, unsuccessful)
				return &exitError{code: exitThreadFailed}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().IntVar(&workers, "workers", 0, "CPU worker threads (default: the number of cores)")
	cmd.Flags().Uint64Var(&maxSteps, "max-steps", 0, "Starlark step budget per thread body and for the top level (default: the runtime's)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar (one is drawn for spawn_batch on a terminal)")
	cmd.Flags().StringArrayVar(&allowLoad, "allow-load", nil, "let load() read modules below `PATH` too (repeatable)")
	cmd.Flags().BoolVar(&remote, "remote", false, "leave the threads to autonode worker processes (needs --nats)")
	cmd.Flags().BoolVar(&allowFailed, "allow-failed", false, "exit 0 even when a thread the script started failed, timed out, crashed or was skipped")
	cmd.Flags().DurationVar(&memoryWait, "memory-wait", runtime.DefaultMemoryWait, "how long a thread waits for memory before it fails (`DURATION`; 0 fails at once)")
	root.AddCommand(cmd)
}

// exitThreadFailed is autonode run's exit status when the script finished
// but a thread it started ended failed, timed_out, crashed or skipped.
const exitThreadFailed = 3

// printFailedThreads prints one line per thread that did not succeed: id,
// name, status and the first line of its error.
func printFailedThreads(e *env, ts []*registry.Thread) {
	for _, t := range ts {
		first, _, _ := strings.Cut(strings.TrimSpace(t.Error), "\n")
		if first == "" {
			first = "(no error text)"
		}
		fmt.Fprintf(e.stderr, "autonode: thread %s %s %s: %s\n", t.ID.Key(), registry.PyRepr(registry.Printable(t.Name)), t.Status, registry.Printable(first))
	}
}

// runHook, when set (by tests), is called with the runtime autonode run
// made, before the script runs.
var runHook func(*runtime.Runtime)

// printScriptError prints a script error with its Starlark backtrace; a
// syntax error shows the source line with a caret under the column. src is
// the source of a snippet (the REPL's statement); for a file it is read
// from the path the error names.
func printScriptError(e *env, err error, src ...string) {
	var ee *starlark.EvalError
	var se syntax.Error
	switch {
	case errors.As(err, &ee):
		fmt.Fprintln(e.stderr, ee.Backtrace())
	case errors.As(err, &se):
		fmt.Fprintf(e.stderr, "%s: %s\n", se.Pos, se.Msg)
		text := ""
		if len(src) > 0 {
			text = src[0]
		} else if data, rerr := os.ReadFile(se.Pos.Filename()); rerr == nil {
			text = string(data)
		}
		if line, caret, ok := sourceCaret(text, se.Pos); ok {
			fmt.Fprintf(e.stderr, "    %s\n    %s\n", line, caret)
		}
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(e.stderr, "autonode: interrupted")
	default:
		fmt.Fprintf(e.stderr, "autonode: %v\n", err)
	}
}

// sourceCaret returns the source line at pos (tabs shown as spaces,
// control characters escaped) and a caret line pointing at its column.
func sourceCaret(src string, pos syntax.Position) (line, caret string, ok bool) {
	lines := strings.Split(src, "\n")
	if pos.Line < 1 || int(pos.Line) > len(lines) {
		return "", "", false
	}
	runes := []rune(strings.TrimRight(lines[pos.Line-1], "\r"))
	col := int(pos.Col) - 1 // Col counts runes from 1
	if col < 0 {
		col = 0
	}
	if col > len(runes) {
		col = len(runes)
	}
	var b, c strings.Builder
	for i, r := range runes {
		w := "    "
		if r != '\t' {
			w = registry.Printable(string(r))
		}
		b.WriteString(w)
		if i < col {
			c.WriteString(strings.Repeat(" ", len([]rune(w))))
		}
	}
	c.WriteString("^")
	return b.String(), c.String(), true
}
