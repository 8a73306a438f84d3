package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autonode/autonode/registry"
)

// Issue 12, item 7: outcomes reach the shell. Exit 0 when every thread
// succeeded (or was cached or cancelled), 3 when the script finished but a
// thread ended failed, timed_out, crashed or skipped (one stderr line
// each), 1 for a script error, 2 for usage; --allow-failed keeps 0.
func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	vars := []string{envToken + "=" + tokA}
	write := func(name, src string) string {
		os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600)
		return name
	}
	// Each script on a registry of its own, so that ids start at 1.
	run := func(args ...string) result {
		t.Helper()
		reg := filepath.Join(t.TempDir(), registry.DefaultRegistryFile)
		return bin(t, dir, vars, append([]string{"--registry", reg}, args...)...)
	}
	ok := write("ok.star", `
t = spawn(run = lambda: 1, caching = False)
u = spawn(run = lambda: fail("x"), caching = False, retries = 1, retry_delay = 0.0)
print(t.status)
`)
	flaky := write("flaky.star", `
def flaky():
    if current().attempt == 1:
        fail("first")
    return 2
print(spawn(run = flaky, retries = 1, retry_delay = 0.0, caching = False).status)
`)
	bad := write("bad.star", `
def boom():
    fail("disk full\nsecond line")
spawn(id = 5, name = "loader", run = boom, caching = False)
spawn(id = 6, name = "slow", run = lambda: [x for x in range(100000000)], ttl = 0.2, caching = False)
spawn(id = 7, run = lambda: 1, after = [5], caching = False)
print("done")
`)
	cancelled := write("cancelled.star", spinScript+`
h = spawn(run = spin, ttl = 60, wait = False, caching = False)
cancel(h.id)
print(h.wait().status)
`)
	scriptErr := write("err.star", "spawn(run = lambda: fail('x'), caching = False)\nundefined_name()\n")

	r := run("run", flaky)
	if r.code != 0 || r.stderr != "" {
		t.Errorf("a thread that succeeded on its retry: %s", r)
	}
	r = run("run", ok)
	if r.code != 3 || r.stderr != "autonode: thread 2.0 'Thread-2-base' failed: Error in fail: fail: x\n" {
		t.Errorf("a failed thread: want exit 3 and a line for it: %s", r)
	}
	r = run("run", bad)
	wantLines := []string{
		"autonode: thread 5.0 'loader' failed: Error in fail: fail: disk full",
		"autonode: thread 6.0 'slow' timed_out: thread 6.0 exceeded its TTL of 0.2s; stopped",
		"autonode: thread 7.0 'Thread-7-base' skipped: upstream thread 5.0 ('loader') ended failed: Error in fail: fail: disk full",
	}
	if r.code != 3 || r.stdout != "done\n" || strings.TrimSpace(r.stderr) != strings.Join(wantLines, "\n") {
		t.Errorf("failed, timed_out and skipped threads: want exit 3 and\n%s\ngot %s", strings.Join(wantLines, "\n"), r)
	}
	if r := run("run", "--allow-failed", bad); r.code != 0 || r.stderr != "" {
		t.Errorf("--allow-failed: %s", r)
	}
	if r := run("run", cancelled); r.code != 0 || r.stdout != "cancelled\n" {
		t.Errorf("a cancelled thread is no failure: %s", r)
	}
	r = run("run", scriptErr)
	if r.code != 1 || !strings.Contains(r.stderr, "undefined: undefined_name") {
		t.Errorf("a script error: %s", r)
	}
	for _, args := range [][]string{{"run"}, {"run", "--memory-wait", "-1s", ok}, {"run", "--allow-failed=maybe", ok}} {
		if r := bin(t, dir, vars, args...); r.code != 2 {
			t.Errorf("%q: want exit 2: %s", args, r)
		}
	}
	h := bin(t, dir, nil, "run", "--help")
	for _, want := range []string{"  3  the script finished, but a thread it started", "--allow-failed", "--memory-wait DURATION"} {
		if !strings.Contains(h.stdout, want) {
			t.Errorf("run --help does not say %q:\n%s", want, h.stdout)
		}
	}
}

// Issue 12, item 5: autonode cancel stops a while-True body that another
// process runs: the record says cancelled within 2 s of the request, and
// the history names who asked.
func TestCancelTwoProcesses(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "s.star"), []byte(spinScript+`
print("started")
t = spawn(id = 1.5, run = spin, ttl = 120, caching = False)
print(t.status)
`), 0o600)
	r := start(t, dir, "run", "s.star")
	r.waitLine(t, "started")
	reg := filepath.Join(dir, registry.DefaultRegistryFile)
	deadline := time.Now().Add(20 * time.Second)
	for status(t, reg, 1.5) != registry.StatusRunning {
		if time.Now().After(deadline) {
			t.Fatalf("never running:\n%s", r.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	asked := time.Now()
	c := bin(t, dir, []string{envToken + "=" + tokA}, "cancel", "1.5")
	if c.code != 0 || !strings.Contains(c.stdout, "Cancel requested for thread 1.5") {
		t.Fatalf("autonode cancel: %s", c)
	}
	for status(t, reg, 1.5) != registry.StatusCancelled {
		if time.Since(asked) > 10*time.Second {
			t.Fatalf("not cancelled after 10 s:\n%s", r.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(asked)
	t.Logf("cancelled %v after autonode cancel started", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("took %v, want at most 2 s", took)
	}
	r.wait(t, 10*time.Second)
	if r.code != 0 || !strings.Contains(r.output(), "cancelled") {
		t.Errorf("the owner: exit %d\n%s", r.code, r.output())
	}
	th := get(t, reg, 1.5)
	if !strings.Contains(th.Error, "requested by autonode cancel (pid=") || th.LatestAttempt().Status != registry.StatusCancelled {
		t.Errorf("record: %q %+v", th.Error, th.LatestAttempt())
	}
	// Ended threads, missing ids and wrong tokens are refused (exit 1).
	if c := bin(t, dir, []string{envToken + "=" + tokA}, "cancel", "1.5"); c.code != 1 || !strings.Contains(c.stderr, "not pending or running") {
		t.Errorf("cancel of an ended thread: %s", c)
	}
	if c := bin(t, dir, []string{envToken + "=" + tokB}, "cancel", "1.5"); c.code != 1 || !strings.Contains(c.stderr, "no such thread or wrong token") {
		t.Errorf("cancel with a wrong token: %s", c)
	}
	if c := bin(t, dir, nil, "cancel"); c.code != 2 {
		t.Errorf("cancel without ids: %s", c)
	}
}

// A pending or waiting thread of another process is cancelled at once, by
// the request; --wait waits for a running one to end.
func TestCancelWaitingAndWait(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "s.star"), []byte(spinScript+`
print("started")
a = spawn(id = 1, run = spin, ttl = 120, wait = False, caching = False)
b = spawn(id = 2, run = spin, after = [a], wait = False, caching = False)
print(wait([a, b])[1].status)
`), 0o600)
	r := start(t, dir, "run", "s.star")
	r.waitLine(t, "started")
	reg := filepath.Join(dir, registry.DefaultRegistryFile)
	for status(t, reg, 1) != registry.StatusRunning || status(t, reg, 2) != registry.StatusWaiting {
		time.Sleep(20 * time.Millisecond)
	}
	vars := []string{envToken + "=" + tokA}
	if c := bin(t, dir, vars, "cancel", "2"); c.code != 0 || !strings.Contains(c.stdout, "Cancelled thread 2.0") || status(t, reg, 2) != registry.StatusCancelled {
		t.Errorf("cancel of a waiting thread: %s (status %s)", c, status(t, reg, 2))
	}
	if c := bin(t, dir, vars, "cancel", "--wait", "1"); c.code != 0 || !strings.Contains(c.stdout, "Thread 1.0: cancelled") {
		t.Errorf("cancel --wait: %s", c)
	}
	r.wait(t, 10*time.Second)
	if r.code != 0 || !strings.Contains(r.output(), "\ncancelled\n") {
		t.Errorf("the owner: exit %d\n%s", r.code, r.output())
	}
}

// Issue 12, item 8: readers show a thread whose process was killed as
// crashed (owner pid N gone) at once, without a writer marking it.
func TestReadersSeeDeadOwners(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "s.star"), []byte(spinScript+`
print("started")
spawn(id = 1, run = spin, ttl = 120, caching = False)
`), 0o600)
	r := start(t, dir, "run", "s.star")
	r.waitLine(t, "started")
	reg := filepath.Join(dir, registry.DefaultRegistryFile)
	for status(t, reg, 1) != registry.StatusRunning {
		time.Sleep(20 * time.Millisecond)
	}
	pid := r.cmd.Process.Pid
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.wait(t, 10*time.Second)
	before := snapshot(t, reg)
	gone := fmt.Sprintf("crashed (owner pid %d gone)", pid)
	if l := bin(t, dir, nil, "list"); l.code != 0 || !strings.Contains(l.stdout, gone) {
		t.Errorf("list: %s", l)
	}
	if l := bin(t, dir, nil, "list", "--status", "crashed"); !strings.Contains(l.stdout, gone) {
		t.Errorf("list --status crashed: %s", l)
	}
	if l := bin(t, dir, nil, "list", "--status", "running"); !strings.Contains(l.stderr, "No threads match.") || l.stdout != "" {
		t.Errorf("list --status running: %s", l)
	}
	if s := bin(t, dir, nil, "show", "1"); !strings.Contains(s.stdout, "status:       "+gone+"\n") {
		t.Errorf("show: %s", s)
	}
	if j := bin(t, dir, nil, "list", "--json"); !strings.Contains(j.stdout, `"status":"crashed"`) || !strings.Contains(j.stdout, fmt.Sprintf("owner pid %d gone (the record says running)", pid)) {
		t.Errorf("list --json: %s", j)
	}
	sameFiles(t, before, snapshot(t, reg)) // readers wrote nothing
}

// Issue 12, item 6: with two CPU-burning processes beside it, a script's
// 50 threads all run and succeed: a busy CPU queues, never refuses.
func TestBusyCPUNeverRefuses(t *testing.T) {
	var burners []*exec.Cmd
	for i := 0; i < 2; i++ {
		b := exec.Command("sh", "-c", "while :; do :; done")
		if err := b.Start(); err != nil {
			t.Skip("cannot start a CPU burner:", err)
		}
		burners = append(burners, b)
	}
	t.Cleanup(func() {
		for _, b := range burners {
			b.Process.Kill()
			b.Wait()
		}
	})
	time.Sleep(1500 * time.Millisecond) // the CPU is busy when the script starts
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "s.star"), []byte(`
def work(i):
    s = 0
    for x in range(2000):
        s += x * x
    return s + i
hs = [spawn(run = work, args = (i,), caching = False, wait = False) for i in range(40)]
hs += [spawn(metadata = {"max_memory_mb": 64}, caching = False, wait = False) for i in range(10)]
done = [h.wait() for h in hs]
print(len([t for t in done if t.status == "succeeded"]))
`), 0o600)
	r := bin(t, dir, []string{envToken + "=" + tokA}, "run", "s.star")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "50" {
		t.Errorf("50 threads on a busy CPU: %s", r)
	}
}

// Issue 12, item 8: 1,000 threads in 4 processes on one registry: every
// attempt's finished_at is at or after its started_at, and the record's
// times are its latest attempt's.
func TestTimesAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "s.star"), []byte(`
def work(i):
    return i * i
res = spawn_batch([{"run": work, "args": (i,), "caching": False} for i in range(250)])
print(len([r for r in res if type(r) == "Thread" and r.status == "succeeded"]))
`), 0o600)
	var wg sync.WaitGroup
	results := make([]result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = bin(t, dir, []string{envToken + "=" + tokA}, "run", "s.star")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 || strings.TrimSpace(r.stdout) != "250" {
			t.Errorf("process %d: %s", i, r)
		}
	}
	ts := records(t, dir)
	if len(ts) != 1000 {
		t.Fatalf("%d threads, want 1000", len(ts))
	}
	bad := 0
	for _, th := range ts {
		a := th.LatestAttempt()
		if a == nil || len(th.Attempts) != 1 || a.StartedAt != th.StartedAt || a.FinishedAt != th.FinishedAt {
			t.Fatalf("thread %s: attempts %+v, record %s .. %s", th.ID, th.Attempts, th.StartedAt, th.FinishedAt)
		}
		s, err1 := time.Parse(time.RFC3339Nano, a.StartedAt)
		f, err2 := time.Parse(time.RFC3339Nano, a.FinishedAt)
		if err1 != nil || err2 != nil || f.Before(s) {
			bad++
			if bad < 5 {
				t.Errorf("thread %s: started %s, finished %s", th.ID, a.StartedAt, a.FinishedAt)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of 1000 threads finished before they started", bad)
	}
}

// status reads one thread's status from the registry at reg ("" when it
// does not exist yet).
func status(t *testing.T, reg string, id float64) string {
	t.Helper()
	s, err := registry.OpenFile(reg, &registry.FileOptions{ReadOnly: true})
	if err != nil {
		return ""
	}
	defer s.Close()
	st := ""
	s.View(func(tx *registry.Tx) error {
		if th, err := tx.Get(registry.ID(id)); err == nil {
			st = th.Status
		}
		return nil
	})
	return st
}

func get(t *testing.T, reg string, id float64) *registry.Thread {
	t.Helper()
	s, err := registry.OpenFile(reg, &registry.FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var th *registry.Thread
	if err := s.View(func(tx *registry.Tx) error {
		var err error
		th, err = tx.Get(registry.ID(id))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return th
}

// Issue 12, item 2: the README's tour and every script in scripts/ run
// twice in a row on one registry, through the binary. Scripts that fail
// threads on purpose (to show the sandbox and the memory budget) exit 3
// and say which threads; every other one exits 0.
func TestToursAndScriptsTwice(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## A tour of the Starlark API")
	if !ok {
		t.Fatal("README.md has no tour")
	}
	_, block, _ := strings.Cut(section, "```python\n")
	block, _, _ = strings.Cut(block, "```")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tour.star"), []byte(block), 0o600)
	vars := []string{envToken + "=" + tokA}
	for run := 1; run <= 2; run++ {
		// The second run reuses the results of the first (caching=True).
		status := map[int]string{1: "succeeded", 2: "cached"}[run]
		r := bin(t, dir, vars, "run", "tour.star")
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, status+" cpu matmul") {
			t.Fatalf("tour, run %d: %s", run, r)
		}
		if !strings.Contains(r.stdout, `2 ["failed", "succeeded"] `+status+` 3`) {
			t.Errorf("tour, run %d: the jobs line: %s", run, r.stdout)
		}
	}
	scripts, _ := filepath.Glob(filepath.Join("..", "..", "scripts", "*.star"))
	onPurpose := map[string]int{} // scripts that end with failed threads (none do)
	ran := 0
	for _, s := range scripts {
		name := filepath.Base(s)
		if strings.HasSuffix(name, "_test.star") {
			continue
		}
		ran++
		abs, _ := filepath.Abs(s)
		reg := filepath.Join(t.TempDir(), registry.DefaultRegistryFile)
		for run := 1; run <= 2; run++ {
			r := bin(t, dir, vars, "--registry", reg, "run", abs)
			want := 0
			if onPurpose[name] > 0 {
				want = 3
			}
			if r.code != want {
				t.Errorf("%s, run %d: want exit %d: %s", name, run, want, r)
				continue
			}
			if lines := strings.Count(r.stderr, "autonode: thread "); lines != onPurpose[name] {
				t.Errorf("%s, run %d: %d failed-thread lines, want %d:\n%s", name, run, lines, onPurpose[name], r.stderr)
			}
		}
	}
	if ran < 5 {
		t.Errorf("ran %d scripts", ran)
	}
}
