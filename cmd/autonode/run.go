package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
	"golang.org/x/term"

	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/runtime"
)

func addRunCommands(root *cobra.Command, e *env) {
	var workers int
	var maxSteps uint64
	var quiet bool
	cmd := &cobra.Command{
		Use:     "run FILE.star [ARGS...]",
		GroupID: groupScripts,
		Short:   "Run a Starlark script",
		Long: `Run a Starlark script that spawns, derives and inspects threads. The
script sees every AutoNode builtin (spawn, branch, fork, merge, ...), the
accel, host, json, math and time modules, and its arguments in argv. Its top
level may use the host module (it is your own automation); thread bodies may
only when spawned with sandbox=False.

Ctrl-C cancels the script and the threads it waits on. Exit status: 0 on
success, 1 on a script error (printed with its backtrace) or when an
internal error (a bug) failed any call or thread during the run, 2 on a
usage error.`,
		Example: `  autonode run scripts/quickstart.star
  AUTONODE_TOKEN=$(autonode token) autonode run sweep.star --lr 0.1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			if fi, err := os.Stat(file); err != nil || fi.IsDir() {
				return usageErrorf("run: %s is not a script file", file)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			stdout := e.stdout
			rt, err := runtime.New(runtime.Options{
				RegistryPath: e.registryPath(),
				SessionToken: e.token(),
				Stdout:       stdout,
				Stderr:       e.stderr,
				CPUWorkers:   workers,
				MaxSteps:     maxSteps,
				TopLevelHost: true,
				Argv:         args,
				Progress:     progressBars(e, quiet),
			})
			if err != nil {
				return err
			}
			if runHook != nil {
				runHook(rt)
			}
			internal := builtins.InternalErrors()
			_, runErr := rt.ExecFile(ctx, file, nil)
			closeErr := rt.Close()
			if runErr != nil {
				printScriptError(e, runErr)
				return failed()
			}
			if n := builtins.InternalErrors() - internal; n > 0 {
				// A bug failed a thread (or a call the script caught):
				// never report the run as a success.
				fmt.Fprintf(e.stderr, "autonode: %d internal error(s) during the run (a bug in AutoNode; please report it): see the failed threads' errors\n", n)
				return failed()
			}
			return closeErr
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().IntVar(&workers, "workers", 0, "CPU worker threads (default: the number of cores)")
	cmd.Flags().Uint64Var(&maxSteps, "max-steps", 0, "Starlark step budget per thread body and for the top level (default: the runtime's)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar (one is drawn for spawn_batch on a terminal)")
	root.AddCommand(cmd)
}

// runHook, when set (by tests), is called with the runtime autonode run
// made, before the script runs.
var runHook func(*runtime.Runtime)

// progressBars draws a progress bar on standard error for each
// spawn_batch of 20 threads or more, when standard error is a terminal.
func progressBars(e *env, quiet bool) func(label string, done, total int) {
	f, ok := e.stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	var mu sync.Mutex
	var bar *progressbar.ProgressBar
	return func(label string, done, total int) {
		if total < 20 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if done == 0 || bar == nil {
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(label),
				progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(50*time.Millisecond))
		}
		bar.Set(done)
	}
}

// printScriptError prints a script error with its Starlark backtrace.
func printScriptError(e *env, err error) {
	var ee *starlark.EvalError
	var se syntax.Error
	switch {
	case errors.As(err, &ee):
		fmt.Fprintln(e.stderr, ee.Backtrace())
	case errors.As(err, &se):
		fmt.Fprintf(e.stderr, "%s: %s\n", se.Pos, se.Msg)
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(e.stderr, "autonode: interrupted")
	default:
		fmt.Fprintf(e.stderr, "autonode: %v\n", err)
	}
}
