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
success, 1 on a script error (printed with its backtrace), 2 on a usage error.`,
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
			opts := e.runtimeOptions()
			opts.SessionToken, opts.Stdout, opts.Stderr = e.token(), stdout, e.stderr
			opts.CPUWorkers, opts.MaxSteps, opts.TopLevelHost = workers, maxSteps, true
			opts.Argv, opts.Progress = args, progressBars(e, quiet)
			rt, err := runtime.New(opts)
			if err != nil {
				return err
			}
			_, runErr := rt.ExecFile(ctx, file, nil)
			closeErr := rt.Close()
			if runErr != nil {
				printScriptError(e, runErr)
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
