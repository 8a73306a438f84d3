package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// envToken names the environment variable that holds the session token.
const envToken = "AUTONODE_TOKEN"

// env is what one invocation of the CLI works with: its streams, its
// environment, and the values of the global flags.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	registryFlag   string
	tokenFlag      string
	natsFlag       string
	natsBucketFlag string
}

// exitError carries an exit code through cobra. A nil err means the
// command already said what went wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a usage error (exit status 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// failed reports that the command failed after printing its own messages
// (exit status 1).
func failed() error { return &exitError{code: exitFailure} }

// run executes the CLI with args (without the program name) and returns
// the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(args, &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv})
}

// runEnv is run with an explicit environment. A panic (a bug) is reported
// with its stack as a failure rather than crashing mid-output.
func runEnv(args []string, e *env) (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(e.stderr, "autonode: internal error: %v (please report this bug)\n%s", p, debug.Stack())
			code = exitFailure
		}
	}()
	root := newRootCmd(e)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	code = exitUsage // cobra's own errors: unknown command or flag
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	msg := err.Error()
	fmt.Fprintf(e.stderr, "autonode: %s\n", msg)
	if code == exitUsage && !strings.Contains(msg, "--help") && cmd != nil {
		fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// newRootCmd builds the command tree. Each file adds its family of
// commands with an addXxxCommands function.
func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "autonode",
		Short: "AutoNode: token-protected compute threads and their durable registry",
		Long: `AutoNode runs named, token-protected compute threads and records every
thread and lineage operation in a JSON registry (thread_registry.json, with
deleted threads archived in deleted_threads.json beside it) that survives
crashes and concurrent processes. A registry written by the Python seed loads
unchanged.

The registry is ./thread_registry.json unless --registry or
AUTONODE_REGISTRY names another file, or --nats (AUTONODE_NATS) names the
NATS JetStream server that holds it (see autonode serve). Commands that
change a thread need its token: --token, or AUTONODE_TOKEN. Threads from a seed registry have no token
until claimed (autonode claim).

Exit status: 0 on success, 1 on failure, 2 on a usage error. autonode run
also exits 3 when its script finished but a thread it started ended failed,
timed_out, crashed or skipped (see autonode run --help).`,
		Example: `  autonode list --stage CORE
  autonode show 1.0
  export AUTONODE_TOKEN=$(autonode token)
  autonode claim 1.0 2.0
  autonode delete 2.0 && autonode restore 2.0
  autonode query '@values.#(stage=="CORE")#.id'
  autonode lineage 10.0 --format mermaid
  autonode --registry /data/thread_registry.json fsck
  autonode --nats nats://10.0.0.5:4222 list`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          nil, // cobra reports unknown commands
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(e.stderr)
			_ = cmd.Help()
			return usageErrorf("no command given; pick one of the commands above")
		},
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.CompletionOptions.DisableDefaultCmd = true // ours refuses unknown shells
	root.Version = versionLine()
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetHelpCommand(newHelpCmd(root))
	// The root runs only to say that a command is missing: do not offer
	// "autonode [flags]" as a usage line.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "Usage:{{if .Runnable}}", "Usage:{{if and .Runnable .HasParent}}", 1))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&e.registryFlag, "registry", "", "registry file `PATH` (default $"+registry.EnvRegistry+", else ./"+registry.DefaultRegistryFile+"); the archive is "+registry.DefaultArchiveFile+" beside it")
	pf.StringVar(&e.natsFlag, "nats", "", "keep the registry in NATS JetStream at `URL` (nats://HOST:PORT, comma-separated for a cluster; default $"+natsstore.EnvURL+") instead of the file")
	pf.StringVar(&e.natsBucketFlag, "nats-bucket", "", "JetStream KV `BUCKET` of the registry with --nats (default $"+natsstore.EnvBucket+", else "+natsstore.DefaultBucket+")")
	pf.StringVar(&e.tokenFlag, "token", "", "`TOKEN` that opens the threads to change (default $"+envToken+")")
	root.AddGroup(&cobra.Group{ID: groupThreads, Title: "Thread commands:"},
		&cobra.Group{ID: groupMaint, Title: "Registry maintenance:"},
		&cobra.Group{ID: groupScripts, Title: "Scripts:"},
		&cobra.Group{ID: groupTools, Title: "Tools:"})

	addListCommands(root, e)
	addDeleteCommands(root, e)
	addCancelCommands(root, e)
	addSummarizeCommands(root, e)
	addQueryCommands(root, e)
	addLineageCommands(root, e)
	addMaintCommands(root, e)
	addTokenCommands(root, e)
	addBenchCommands(root, e)
	addRegistryBench(root, e)
	addNATSBench(root, e)
	addGraphCommands(root, e)
	addRunCommands(root, e)
	addReplCommands(root, e)
	addDocCommands(root, e)
	addInfoCommands(root, e)
	addUICommands(root, e)
	addCompletionCommand(root, e)
	addCheckCommands(root, e)
	addTestCommands(root, e)
	addServeCommands(root, e)
	addWorkerCommands(root, e)
	addResultCommands(root, e)
	addLogsCommands(root, e)
	addMetricsCommands(root, e)
	addDiffCommands(root, e)
	return root
}

// Command group ids for the root help.
const (
	groupThreads = "threads"
	groupMaint   = "maint"
	groupTools   = "tools"
	groupScripts = "scripts"
)

// registryPath is the registry file this invocation works on.
func (e *env) registryPath() string {
	if e.registryFlag != "" {
		return e.registryFlag
	}
	if p := e.getenv(registry.EnvRegistry); p != "" {
		return p
	}
	return registry.DefaultRegistryFile
}

// token is the caller's token: --token, else $AUTONODE_TOKEN.
func (e *env) token() string {
	if e.tokenFlag != "" {
		return e.tokenFlag
	}
	return e.getenv(envToken)
}

// readHint points to fsck when a read failed on a damaged record.
func readHint(err error) error {
	if errors.Is(err, registry.ErrInvalid) && !strings.Contains(err.Error(), "autonode fsck") {
		return fmt.Errorf("%w; `autonode fsck` lists every damaged record and `autonode recover` keeps the ones that parse", err)
	}
	return err
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// parseIDArg parses a thread id given on the command line; a malformed one
// is a usage error.
func parseIDArg(s string) (registry.ID, error) {
	id, err := registry.ParseID(s)
	if err != nil {
		return 0, &exitError{code: exitUsage, err: err}
	}
	return id, nil
}

// parseIDArgs parses every id before anything is done.
func parseIDArgs(args []string) ([]registry.ID, error) {
	ids := make([]registry.ID, len(args))
	for i, a := range args {
		id, err := parseIDArg(a)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// exactArgs wants n positional arguments, described by what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s; got %d argument(s)", cmd.Name(), what, len(args))
		}
		return nil
	}
}

// minArgs wants at least one positional argument, described by what.
func minArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("%s takes %s; got none", cmd.Name(), what)
		}
		return nil
	}
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments; got %q", cmd.Name(), args)
	}
	return nil
}

// accessHint adds what to do to an access error when no token was given.
func (e *env) accessHint(err error) error {
	if errors.Is(err, registry.ErrAccess) && e.token() == "" {
		return fmt.Errorf("%w (no token given: pass --token or set %s)", err, envToken)
	}
	return err
}

// clean makes text from the registry safe for a terminal.
func clean(s string) string { return registry.Printable(s) }

// act adapts a command body: an error that is not already an exitError is
// a failure (exit status 1); cobra's own errors stay usage errors.
func act(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		if err == nil {
			return nil
		}
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return &exitError{code: exitFailure, err: err}
	}
}
