package runtime

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autonode/autonode/registry"
)

// TestCrashChild is the child process of TestCrash_KilledProcess: it
// starts a thread that runs until killed and says "ready" once the thread
// is recorded as running.
func TestCrashChild(t *testing.T) {
	path := os.Getenv("AUTONODE_RUNTIME_CRASH_CHILD")
	if path == "" {
		t.Skip("run by TestCrash_KilledProcess")
	}
	rt, err := New(Options{RegistryPath: path, SessionToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ExecFile(context.Background(), "child.star", `
def spin():
    while True:
        pass
spawn(id=1, run=spin, ttl=600, wait=False)
`); err != nil {
		t.Fatal(err)
	}
	for record(t, rt, 1).Status != registry.StatusRunning {
		time.Sleep(5 * time.Millisecond)
	}
	os.Stdout.WriteString("ready\n")
	time.Sleep(time.Minute)
}

// A process killed with SIGKILL while its thread runs leaves the record
// running; the next New marks it crashed.
func TestCrash_KilledProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	path := filepath.Join(t.TempDir(), "thread_registry.json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), "AUTONODE_RUNTIME_CRASH_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the child exited before its thread ran")
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the child never got its thread running")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	rt := newTestRuntime(t, Options{RegistryPath: path})
	r := record(t, rt, 1)
	if r.Status != registry.StatusCrashed || !hasLine(r, "Marked crashed: it was running and the process that owned it (pid=") {
		t.Errorf("after the kill: %s %q", r.Status, history(r))
	}
}
