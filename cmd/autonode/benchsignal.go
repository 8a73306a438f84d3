package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/internal/syncbuf"
	"github.com/autonode/autonode/registry"
)

// signalCommand is "autonode bench signal": the exit at SIGTERM of a
// script waiting on a large spawn_batch.
func signalCommand(e *env) *cobra.Command {
	var threads, rounds int
	cmd := &cobra.Command{
		Use:   "signal",
		Short: "Time how long autonode run takes to exit at SIGTERM during a spawn_batch",
		Long: `Run, as a child process (this binary) on a JSON registry in a temporary
directory, a script whose spawn_batch() of --threads threads that spin
until stopped (ttl=1e6) is waiting for them; once every thread is in the
registry, send SIGTERM and time the exit. The exit must be 143 and every
thread recorded cancelled, none left pending or running; the table gives
the median and the slowest round against the target from the limits
issue (exit within 2 s at 80,000 threads), and, interleaved round by
round, the same script with one thread (the reference: start-up of the
signal path and exit, without the recording).`,
		Example: `  autonode bench signal
  autonode bench signal --threads 20000 --rounds 5`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			if threads < 1 || rounds < 1 {
				return usageErrorf("--threads and --rounds want 1 or more")
			}
			return runSignalBench(e, threads, rounds)
		}),
	}
	cmd.Flags().IntVar(&threads, "threads", 80000, "threads in the spawn_batch (`N`)")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "interleaved `ROUNDS`")
	return cmd
}

// signalBenchScript spawn_batch()es argv[1] threads that spin until they
// are stopped, and waits for them.
const signalBenchScript = `
def spin():
    while True:
        pass
print("spawning")
spawn_batch([{"run": spin, "ttl": 1e6, "caching": False} for i in range(int(argv[1]))])
`

func runSignalBench(e *env, threads, rounds int) error {
	dir, err := os.MkdirTemp("", "autonode-bench-signal-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	script := filepath.Join(dir, "batch.star")
	if err := os.WriteFile(script, []byte(signalBenchScript), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "autonode bench signal: SIGTERM during a spawn_batch of %d spinning threads, %d round(s), %s\n", threads, rounds, loadLine())
	sizes := []int{1, threads}
	took := make([][]float64, len(sizes)) // seconds
	for r := range rounds {
		for k, n := range sizes {
			roundDir := filepath.Join(dir, fmt.Sprintf("round%d-%d", r, n))
			d, err := timeSignalExit(self, roundDir, script, n)
			_ = os.RemoveAll(roundDir) // the next round does not share the disk with its files
			if err != nil {
				return fmt.Errorf("round %d, %d thread(s): %w", r+1, n, err)
			}
			took[k] = append(took[k], d.Seconds())
		}
	}
	w := e.stdout
	fmt.Fprintf(w, "%-32s %10s %10s  %s\n", "run", "exit p50", "slowest", "target")
	for k, n := range sizes {
		target := ""
		if k > 0 {
			target = "exit <= 2 s at 80,000 threads"
		}
		p50 := medianF(took[k])
		fmt.Fprintf(w, "%-32s %9.3fs %9.3fs  %s\n", fmt.Sprintf("spawn_batch of %d", n), p50, slices.Max(took[k]), target)
	}
	return nil
}

// timeSignalExit runs the script with n threads in its own registry
// directory, sends SIGTERM once all n are recorded, and returns the time
// to the exit, which must be 143 with every thread recorded cancelled.
func timeSignalExit(self, dir, script string, n int) (time.Duration, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	path := filepath.Join(dir, registry.DefaultRegistryFile)
	c := exec.Command(self, "run", "--quiet", script, strconv.Itoa(n))
	c.Dir = dir
	c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, envToken + "=" + benchToken, "AUTONODE_REGISTRY=" + path}
	stdout, err := c.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr syncbuf.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		return 0, err
	}
	// The output is read to its end and the child waited for on one
	// goroutine: exited says when it has ended, whenever that is.
	first := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		first <- line
		_, _ = io.Copy(io.Discard, r)
		exited <- c.Wait()
	}()
	ended := false
	defer func() {
		if !ended {
			_ = c.Process.Kill()
			<-exited
		}
	}()
	if line := <-first; strings.TrimSpace(line) != "spawning" {
		_ = c.Process.Kill()
		err := <-exited
		ended = true
		return 0, fmt.Errorf("the script printed %q (%v); stderr: %s", line, err, stderr.String())
	}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		have, err := countThreads(path, nil)
		if err == nil && have >= n {
			break
		}
		select {
		case werr := <-exited:
			ended = true
			return 0, fmt.Errorf("autonode run ended (%v) with %d of %d threads in the registry; stderr: %s", werr, have, n, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("after 5 minutes %d of %d threads are in the registry (%v)", have, n, err)
		}
	}
	sent := time.Now()
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	err = <-exited
	ended = true
	took := time.Since(sent)
	if code := c.ProcessState.ExitCode(); code != 143 {
		return 0, fmt.Errorf("exit %d after SIGTERM (%v), want 143; stderr: %s", code, err, stderr.String())
	}
	notCancelled := 0
	total, err := countThreads(path, func(t *registry.Thread) bool {
		if t.Status != registry.StatusCancelled {
			notCancelled++
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case total != n || notCancelled > 0:
		return 0, fmt.Errorf("after the exit: %d threads in the registry (want %d), %d of them not cancelled", total, n, notCancelled)
	}
	return took, nil
}

// countThreads opens the registry read-only and returns its number of
// threads; each is passed to each, when set.
func countThreads(path string, each func(t *registry.Thread) bool) (int, error) {
	s, err := registry.OpenFile(path, &registry.FileOptions{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	n := 0
	err = s.View(func(tx *registry.Tx) error {
		if each == nil {
			n = tx.Len()
			return nil
		}
		return tx.Each(registry.Filter{}, func(t *registry.Thread, err error) error {
			if err != nil {
				return err
			}
			n++
			each(t)
			return nil
		})
	})
	return n, err
}
