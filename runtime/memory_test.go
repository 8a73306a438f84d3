package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/internal/memlimit"
	"github.com/autonode/autonode/registry"
)

// memoryChildEnv makes TestMemoryChild run: the tests below start the
// test binary again under a memory limit with it set.
const memoryChildEnv = "AUTONODE_MEMORY_CHILD"

// childLimit is the memory limit the child runs under: 2 GiB, as the
// issue's attack had it.
const childLimit = 2 << 30

// dictBudgetMB is the budget of the dict that grows an entry at a time
// (smaller under -race, where measuring it is slower).
var dictBudgetMB = map[bool]int{false: 30, true: 10}[raceEnabled]

const memoryScript = `
def double_list():
    x = [0]
    for i in range(64):
        x = x + x
    return len(x)

def double_string():
    s = "ab"
    for i in range(64):
        s = s + s
    return len(s)

def grow_dict():
    d = {}
    for i in range(1000000000):
        d[i] = [i, str(i)]
    return len(d)

def shared():
    # Shared values count once: this holds about 1 MB, not 2**64 lists.
    x = [0]
    for i in range(64):
        x = [x, x, list(range(1000))]
    return 1

def fits():
    x = list(range(1000000))   # about 16 MB, under its budget
    return len(x)

def calm(n):
    t = 0
    for i in range(n):
        t += i
    return t
`

// TestMemoryChild runs in a child process under a 2 GiB limit (RLIMIT_AS
// or a cgroup) set up by its parent test: bodies that grow without bound
// fail with ErrMemoryLimit, and the process and its other threads live on.
func TestMemoryChild(t *testing.T) {
	if os.Getenv(memoryChildEnv) == "" {
		t.Skip("run in a child process under a memory limit by TestMemory_RLIMIT_AS and TestMemory_Cgroup")
	}
	lim := memlimit.Get()
	t.Logf("memory limit: %s", lim)
	if lim.Bytes <= 0 || lim.Bytes > childLimit {
		t.Fatalf("memlimit.Get() = %s, want at most %d bytes", lim, childLimit)
	}
	if strings.HasPrefix(lim.Source, "cgroup") {
		// The overload check counts the cgroup's memory, not the host's.
		hold := make([]byte, 600<<20)
		for i := range hold {
			hold[i] = 1
		}
		memPct, _, err := machineSampler()()
		t.Logf("memory in use with 600 MiB held: %.1f%%", memPct)
		if err != nil || memPct < 25 {
			t.Errorf("machineSampler: memory %.1f%% (%v), want the cgroup's share (at least 25%%)", memPct, err)
		}
		goruntime.KeepAlive(hold)
		goruntime.GC()
	}
	rt := newTestRuntime(t, Options{CPUWorkers: 4})
	g := execScript(t, rt, memoryScript)
	fn := func(name string) starlark.Callable { return g[name].(starlark.Callable) }
	ctx := context.Background()

	calmReq := request(1)
	calmReq.Run, calmReq.Args, calmReq.Wait, calmReq.TTL = fn("calm"), starlark.Tuple{starlark.MakeInt(3_000_000)}, false, 120
	calm, err := rt.Spawn(ctx, calmReq)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		name string
		mb   int
	}{{"double_list", 100}, {"double_string", 100}, {"grow_dict", dictBudgetMB}} {
		name := c.name
		req := request(float64(10 + i))
		req.Run, req.TTL, req.Caching = fn(name), 120, false
		req.Metadata = map[string]any{"max_memory_mb": c.mb}
		start := time.Now()
		h, err := rt.Spawn(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := h.Wait(ctx)
		runErr := RunErr(h)
		t.Logf("%s: %s in %v: %v", name, rec.Status, time.Since(start).Round(time.Millisecond), runErr)
		if rec.Status != registry.StatusFailed || !strings.Contains(rec.Error, "memory limit exceeded: thread "+rec.ID.String()+" holds at least") {
			t.Errorf("%s: %s %q, want failed with a memory limit error", name, rec.Status, rec.Error)
		}
		if !errors.Is(runErr, ErrMemoryLimit) {
			t.Errorf("%s: RunErr = %v, want one matching ErrMemoryLimit", name, runErr)
		}
		var ee *starlark.EvalError
		if !errors.As(runErr, &ee) {
			t.Errorf("%s: RunErr = %T, want it to carry the *starlark.EvalError", name, runErr)
		}
	}
	for i, c := range []struct{ name, result string }{{"fits", "1000000"}, {"shared", "1"}} {
		req := request(float64(20 + i))
		req.Run, req.Caching, req.Metadata = fn(c.name), false, map[string]any{"max_memory_mb": 100}
		if h, err := rt.Spawn(ctx, req); err != nil {
			t.Fatal(err)
		} else if rec, _ := h.Wait(ctx); rec.Status != registry.StatusSucceeded || string(rec.Result) != c.result {
			t.Errorf("%s, within its budget: %s %s %s", c.name, rec.Status, rec.Result, rec.Error)
		}
	}

	// The top level is bounded too: by a sixth of what the process has
	// left. (Under -race every allocation also takes shadow memory that
	// the cap does not foresee: a doubling needs several times what it
	// holds, and the cgroup may kill the process first.)
	start := time.Now()
	if raceEnabled {
		t.Log("top-level doubling: not run under -race")
	} else {
		_, err = rt.ExecFile(ctx, "top.star", "x = [0]\nfor i in range(64):\n    x = x + x\n")
		t.Logf("top level: %v: %v", time.Since(start).Round(time.Millisecond), err)
		if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "a sixth of the") {
			t.Errorf("top-level doubling: %v", err)
		}
	}

	// The other thread lived on, and the process still works.
	start = time.Now()
	rec, _ := calm.Wait(ctx)
	t.Logf("calm: waited %v more", time.Since(start).Round(time.Millisecond))
	if rec.Status != registry.StatusSucceeded || string(rec.Result) != strconv.Itoa(3_000_000*(3_000_000-1)/2) {
		t.Errorf("the calm thread: %s %s %s", rec.Status, rec.Result, rec.Error)
	}
	execScript(t, rt, `t = spawn(id=30)`+"\n"+`if t.status != "succeeded": fail(t.error)`)
	goruntime.GC()
	fmt.Println("MEMORY-CHILD-OK")
}

// runMemoryChild runs TestMemoryChild with the given shell prologue
// (which sets up the limit, then execs the test binary) and checks that it
// passed.
func runMemoryChild(t *testing.T, prologue, wantSource string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", prologue+` && exec "$0" "$@"`, os.Args[0],
		"-test.run", "^TestMemoryChild$", "-test.v", "-test.count=1", "-test.timeout=180s")
	cmd.Env = append(os.Environ(), memoryChildEnv+"=1", "GOMEMLIMIT=off")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("child ran %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil || !strings.Contains(string(out), "MEMORY-CHILD-OK") {
		t.Fatalf("child under a memory limit: %v", err)
	}
	if !strings.Contains(string(out), wantSource) {
		t.Errorf("the child did not see its limit as %s", wantSource)
	}
}

func TestMemory_RLIMIT_AS(t *testing.T) {
	if goruntime.GOOS != "linux" {
		t.Skip("RLIMIT_AS and /proc/self/statm: linux only")
	}
	if raceEnabled {
		t.Skip("under RLIMIT_AS the race detector cannot map its shadow memory (TestMemory_Cgroup covers -race)")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	runMemoryChild(t, fmt.Sprintf("ulimit -v %d", childLimit>>10), "RLIMIT_AS")
}

func TestMemory_Cgroup(t *testing.T) {
	if goruntime.GOOS != "linux" {
		t.Skip("cgroups: linux only")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	dir, limitFile, source := makeCgroup(t)
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.Itoa(childLimit)), 0o644); err != nil {
		t.Skipf("cannot set %s in %s: %v", limitFile, dir, err)
	}
	runMemoryChild(t, fmt.Sprintf("echo $$ > %s", filepath.Join(dir, "cgroup.procs")), source)
}

// makeCgroup creates a memory cgroup for the test (v2 below the test's
// own cgroup, else v1 at the memory controller's root) and removes it
// when the test ends; it skips the test when it cannot.
func makeCgroup(t *testing.T) (dir, limitFile, source string) {
	name := fmt.Sprintf("autonode-test-%d", os.Getpid())
	type try struct{ parent, file, source string }
	var tries []try
	if data, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				tries = append(tries, try{filepath.Join("/sys/fs/cgroup", p), "memory.max", "cgroup memory.max"})
			}
		}
	}
	tries = append(tries, try{"/sys/fs/cgroup/memory", "memory.limit_in_bytes", "cgroup memory.limit_in_bytes"})
	var why []string
	for _, c := range tries {
		if _, err := os.Stat(filepath.Join(c.parent, c.file)); err != nil && c.file == "memory.limit_in_bytes" {
			why = append(why, fmt.Sprintf("%s: no cgroup v1 memory controller", c.parent))
			continue
		}
		d := filepath.Join(c.parent, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			why = append(why, err.Error())
			continue
		}
		if _, err := os.Stat(filepath.Join(d, c.file)); err != nil {
			os.Remove(d)
			why = append(why, fmt.Sprintf("%s: no %s (memory controller not enabled)", d, c.file))
			continue
		}
		t.Cleanup(func() {
			// The child has exited; its cgroup is empty.
			for i := 0; i < 50 && os.Remove(d) != nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		})
		return d, c.file, c.source
	}
	t.Skipf("cannot create a memory cgroup here (run as root on linux with cgroups mounted): %s", strings.Join(why, "; "))
	return "", "", ""
}

// lineWriter sends what is printed, line by line.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		select {
		case w <- l:
		default:
		}
	}
	return len(p), nil
}

// When the process comes close to its limit, every Starlark thread
// measures itself at once, and one holding more than a sixth of what is
// left stops, even if it has allocated nothing since.
func TestMemory_Emergency(t *testing.T) {
	var left atomic.Int64
	left.Store(1 << 30)
	oldLimit, oldLeft := watch.limitOf, watch.leftOf
	watch.limitOf = func() memlimit.Limit { return memlimit.Limit{Bytes: 1 << 30, Source: "a test limit"} }
	watch.leftOf = func(memlimit.Limit) (int64, bool) { return left.Load(), true }
	t.Cleanup(func() { watch.limitOf, watch.leftOf = oldLimit, oldLeft }) // after Close
	out := make(lineWriter, 16)
	rt := newTestRuntime(t, Options{Stdout: out})
	errc := make(chan error, 1)
	go func() {
		_, err := rt.ExecFile(context.Background(), "hog.star", "x = list(range(1300000))\nprint('ready')\nwhile True:\n    pass\n")
		errc <- err
	}()
	select {
	case <-out:
	case err := <-errc:
		t.Fatalf("the script ended before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	left.Store(30 << 20) // the process is now within 10% of its limit
	select {
	case err := <-errc:
		want := "the top level of hog.star holds at least"
		if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "more than a sixth of the 30.00MiB this process has left of its 1.00GiB (a test limit)") {
			t.Errorf("%v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the emergency did not stop the thread")
	}
}
