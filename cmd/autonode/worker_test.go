package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autonode/autonode/internal/syncbuf"
	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natstest"
)

// Tests of autonode worker and autonode run --remote through the real
// binary: workers are child processes that the tests SIGKILL and SIGSTOP.

// testLease is the workers' lease in these tests: short, so that an
// expiry is seen within about two seconds.
const testLease = "1500ms"

// proc is a child process of the binary.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	stdout *syncbuf.Buffer
	done   chan struct{}
	err    error
}

// startBin starts the binary with args in dir; the test's end stops it.
func startBin(t *testing.T, dir string, vars []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), stderr: &syncbuf.Buffer{}, stdout: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, vars...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%v printed:\n%s%s", p.cmd.Args[1:], p.stdout, p.stderr)
		}
		select {
		case <-p.done:
			return
		default:
		}
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Signal(syscall.SIGTERM)
		start := time.Now()
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if d := time.Since(start); d > time.Second {
			t.Logf("%v took %v to stop", p.cmd.Args[1:], d)
		}
	})
	return p
}

// startWorker starts `autonode worker` named name.
func startWorker(t *testing.T, dir string, vars []string, name string, args ...string) *proc {
	t.Helper()
	return startBin(t, dir, vars, append([]string{"worker", "--name", name, "--lease", testLease, "--concurrency", "2"}, args...)...)
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("%v still running after %v; stderr:\n%s", p.cmd.Args, limit, p.stderr)
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// registryOf opens a reader of the bucket, once a worker or the script
// has created it.
func registryOf(t *testing.T, url, bucket string) *natsstore.Store {
	t.Helper()
	var s *natsstore.Store
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s, err = natsstore.Open(natsstore.Options{URL: url, Bucket: bucket, ReadOnly: true, MustExist: true, CommitTimeout: 60 * time.Second})
		if err == nil || !errors.Is(err, natsstore.ErrNoRegistry) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// threadsOf reads every thread; on an error (a node down) it returns nil.
func threadsOf(s *natsstore.Store) []*registry.Thread {
	ts, _ := readThreads(s)
	return ts
}

// readThreads reads every thread.
func readThreads(s *natsstore.Store) ([]*registry.Thread, error) {
	var ts []*registry.Thread
	err := s.View(func(tx *registry.Tx) error {
		var err error
		ts, err = tx.List(registry.Filter{})
		return err
	})
	return ts, err
}

// waitRecords polls the registry until ok holds for its threads; when
// it never does, the failure shows the last read's threads or error.
func waitRecords(t *testing.T, s *natsstore.Store, limit time.Duration, what string, ok func([]*registry.Thread) bool) []*registry.Thread {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ts, err := readThreads(s)
		if err == nil && ok(ts) {
			return ts
		}
		if time.Now().After(deadline) {
			last := fmt.Sprintf("error %v", err)
			if err == nil {
				var b strings.Builder
				for _, th := range ts {
					fmt.Fprintf(&b, "\n  %s %s owner %q attempts %+v", th.ID, th.Status, th.Owner, th.Attempts)
				}
				last = fmt.Sprintf("%d threads:%s", len(ts), b.String())
			}
			t.Fatalf("within %v: %s; the last read: %s", limit, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitBodyStarted waits until the executions log of faultScript names a
// body that started. With one worker up, that worker is in the body now
// (it sleeps after writing its line). The log, not the registry, is
// watched: a reader that opens the bucket while the worker and `run
// --remote` are still creating it may see its first records only after
// a short body has ended.
func waitBodyStarted(t *testing.T, execLog string, limit time.Duration, what string) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(5 * time.Millisecond) {
		if data, _ := os.ReadFile(execLog); bytes.Contains(data, []byte("\n")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("within %v: %s (no body wrote to %s)", limit, what, execLog)
		}
	}
}

// faultScript spawns n unsandboxed threads that note each run of their
// body in a file (one line per execution), sleep, and return i*i; each
// may be retried.
const faultScript = `
LOG = argv[1]
N = int(argv[2])
SLEEP = argv[3]
def job(i):
    me = current()
    host.exec(["sh", "-c", "echo %s %d >> %s" % (me.id, me.attempt, LOG)])
    host.exec(["sleep", SLEEP], timeout = 30.0)
    return i * i
hs = [spawn(run = job, args = (i,), sandbox = False, retries = 3, retry_delay = 0.1, ttl = 60, caching = False, wait = False) for i in range(N)]
print(" ".join([h.wait().status for h in hs]))
`

// checkOnce checks that every thread of the run succeeded with exactly
// one succeeded attempt, and returns the attempts that crashed.
func checkOnce(t *testing.T, ts []*registry.Thread, want int) (crashed []registry.Attempt) {
	t.Helper()
	if len(ts) != want {
		t.Errorf("%d threads in the registry, want %d (an acknowledged spawn lost?)", len(ts), want)
	}
	for _, th := range ts {
		ok := 0
		for _, a := range th.Attempts {
			switch a.Status {
			case registry.StatusSucceeded:
				ok++
			case registry.StatusCrashed:
				crashed = append(crashed, a)
			}
		}
		if th.Status != registry.StatusSucceeded || ok != 1 {
			t.Errorf("thread %s: %s with %d succeeded attempt(s) %+v; want succeeded exactly once", th.ID, th.Status, ok, th.Attempts)
		}
	}
	return crashed
}

// executions counts the lines of the executions log.
func executions(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

// TestWorkerKilledMidThread: a worker is SIGKILLed while its threads run.
// Its attempts' leases expire, the other worker's sweeper records them
// crashed and retries them, and every thread ends with exactly one
// succeeded attempt; bodies ran at least once (some twice).
func TestWorkerKilledMidThread(t *testing.T) {
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{})
	dir := t.TempDir()
	vars := natsEnv(c.URLs(), "killed", "AUTONODE_TOKEN="+tokA)
	script, execLog := filepath.Join(dir, "jobs.star"), filepath.Join(dir, "executions")
	if err := os.WriteFile(script, []byte(faultScript), 0o600); err != nil {
		t.Fatal(err)
	}
	// Worker b starts once a is in a body (a runs two at a time, the
	// others wait in the queue): started together, b could take them all
	// while a is still connecting.
	a := startWorker(t, dir, vars, "a")
	const n = 6
	run := startBin(t, dir, vars, "run", "--remote", script, execLog, fmt.Sprint(n), "1")
	waitBodyStarted(t, execLog, 30*time.Second, "worker a runs a thread")
	startWorker(t, dir, vars, "b")
	a.cmd.Process.Kill()
	a.wait(t, 10*time.Second)
	s := registryOf(t, c.URLs(), "killed")
	if code := run.wait(t, 60*time.Second); code != 0 || strings.Count(run.stdout.String(), "succeeded") != n {
		t.Fatalf("autonode run --remote: exit %d\nstdout: %s\nstderr: %s", code, run.stdout, run.stderr)
	}
	ts := threadsOf(s)
	crashed := checkOnce(t, ts, n)
	if len(crashed) == 0 {
		t.Fatalf("no attempt was recorded crashed after the SIGKILL")
	}
	for _, a := range crashed {
		if !strings.Contains(a.Error, "the lease of worker worker=a ") || !strings.HasPrefix(a.Owner, "worker=a ") {
			t.Errorf("crashed attempt %+v: want worker a's expired lease", a)
		}
	}
	runs := executions(t, execLog)
	attempts := 0
	for _, th := range ts {
		attempts += len(th.Attempts)
	}
	if runs < n || runs > attempts {
		t.Errorf("%d executions of bodies for %d threads and %d attempts", runs, n, attempts)
	}
	t.Logf("%d threads, 1 worker SIGKILLed: %d attempts crashed and retried, %d executions of bodies, 0 acknowledged spawns lost, 0 double successes", n, len(crashed), runs)
}

// TestWorkerOutlivingItsLeaseCannotCommit: a worker is stopped (SIGSTOP)
// mid-thread for longer than its lease; another worker's sweeper records
// the attempt crashed and the other worker runs the retry to success.
// When the first worker resumes and its body returns, its success is
// fenced off: the record keeps exactly one success.
func TestWorkerOutlivingItsLeaseCannotCommit(t *testing.T) {
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{})
	dir := t.TempDir()
	vars := natsEnv(c.URLs(), "stalled", "AUTONODE_TOKEN="+tokA)
	script, execLog := filepath.Join(dir, "jobs.star"), filepath.Join(dir, "executions")
	if err := os.WriteFile(script, []byte(faultScript), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startWorker(t, dir, vars, "a")
	run := startBin(t, dir, vars, "run", "--remote", script, execLog, "1", "2")
	waitBodyStarted(t, execLog, 30*time.Second, "worker a runs the thread")
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s := registryOf(t, c.URLs(), "stalled")
	b := startWorker(t, dir, vars, "b")
	if code := run.wait(t, 60*time.Second); code != 0 || strings.TrimSpace(run.stdout.String()) != "succeeded" {
		t.Fatalf("autonode run --remote: exit %d\nstdout: %s\nstderr: %s", code, run.stdout, run.stderr)
	}
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.stderr.String(), "fenced") {
		if time.Now().After(deadline) {
			t.Fatalf("worker a never reported its write fenced; its log:\n%s", a.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, w := range []*proc{a, b} {
		w.cmd.Process.Signal(syscall.SIGTERM)
		if code := w.wait(t, 30*time.Second); code != 0 {
			t.Errorf("worker after SIGTERM: exit %d\n%s", code, w.stderr)
		}
	}
	if !strings.Contains(a.stderr.String(), "1 fenced") {
		t.Errorf("worker a's summary: %s", a.stderr)
	}
	ts := threadsOf(s)
	crashed := checkOnce(t, ts, 1)
	th := ts[0]
	if len(crashed) != 1 || len(th.Attempts) != 2 || !strings.HasPrefix(th.Attempts[1].Owner, "worker=b ") {
		t.Fatalf("attempts %+v: want attempt 1 crashed (worker a) and attempt 2 succeeded (worker b)", th.Attempts)
	}
	if runs := executions(t, execLog); runs != 2 {
		t.Errorf("%d executions of the body, want 2 (worker a's and worker b's)", runs)
	}
}

// TestWorkersSurviveLeaderKill: three workers run a spawn_batch while the
// leader of the registry's stream, and then the leader of the work
// queue's stream, are killed with SIGKILL and restarted. Every thread
// ends with exactly one success; none is lost.
func TestWorkersSurviveLeaderKill(t *testing.T) {
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{Processes: true})
	dir := t.TempDir()
	const bucket = "leaders"
	vars := natsEnv(c.URLs(), bucket, "AUTONODE_TOKEN="+tokA)
	n, rounds := 300, 1
	if soak := os.Getenv("AUTONODE_NATS_SOAK"); soak != "" {
		n, rounds = 2000, 4
	}
	script := filepath.Join(dir, "batch.star")
	if err := os.WriteFile(script, []byte(`
def sq(x):
    return x * x
rs = spawn_batch([{"run": sq, "args": (i,), "caching": False, "retries": 2, "retry_delay": 0.1} for i in range(int(argv[1]))])
print(len([r for r in rs if type(r) == "Thread" and r.status == "succeeded"]))
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		startWorker(t, dir, vars, fmt.Sprintf("w%d", i), "--concurrency", "8")
	}
	start := time.Now()
	run := startBin(t, dir, vars, "run", "--remote", "--quiet", script, fmt.Sprint(n))
	s := registryOf(t, c.URLs(), bucket)
	faults := 0
	var first time.Duration
	defer func() { t.Logf("the first thread was recorded %v after the start", first.Round(time.Millisecond)) }()
	for r := range rounds {
		for _, stream := range []string{"KV_" + bucket, "AUTONODE_Q_" + bucket} {
			waitRecords(t, s, 60*time.Second, "threads succeed before the fault", func(ts []*registry.Thread) bool {
				if r == 0 && stream[0] == 'K' && len(ts) > 0 && first == 0 {
					first = time.Since(start)
				}
				done := 0
				for _, th := range ts {
					if th.Status == registry.StatusSucceeded {
						done++
					}
				}
				return done >= (r+1)*n/(2*rounds+1) || done == n
			})
			i := -1
			for deadline := time.Now().Add(20 * time.Second); i < 0 && time.Now().Before(deadline); {
				if i = c.StreamLeader(stream); i < 0 {
					time.Sleep(100 * time.Millisecond)
				}
			}
			if i < 0 {
				t.Fatalf("no leader of %s", stream)
			}
			t.Logf("%v: SIGKILL node %d, the leader of %s", time.Since(start).Round(time.Millisecond), i, stream)
			c.Kill(i)
			faults++
			time.Sleep(2 * time.Second)
			c.Restart(i)
			t.Logf("%v: node %d restarted", time.Since(start).Round(time.Millisecond), i)
		}
	}
	go func() {
		for {
			select {
			case <-run.done:
				return
			case <-time.After(time.Second):
			}
			done := 0
			for _, th := range threadsOf(s) {
				if th.Status == registry.StatusSucceeded {
					done++
				}
			}
			t.Logf("%v: %d done", time.Since(start).Round(time.Millisecond), done)
		}
	}()
	if code := run.wait(t, 3*time.Minute); code != 0 || strings.TrimSpace(run.stdout.String()) != fmt.Sprint(n) {
		t.Fatalf("autonode run --remote: exit %d\nstdout: %s\nstderr: %s", code, run.stdout, run.stderr)
	}
	t.Logf("%v: the script ended", time.Since(start).Round(time.Millisecond))
	crashed := checkOnce(t, threadsOf(s), n)
	t.Logf("%d threads, %d leader(s) SIGKILLed and restarted: %d attempt(s) crashed and retried, 0 acknowledged spawns lost, 0 double successes", n, faults, len(crashed))
}

// TestScriptsRemote runs every example script twice with --remote and a
// worker, and checks that the registry it leaves lists and summarizes as
// the same runs leave a registry file when the script runs its threads
// itself.
func TestScriptsRemote(t *testing.T) {
	node := startServe(t, "--dir", filepath.Join(t.TempDir(), "node"), "--listen", "127.0.0.1:0")
	scripts, err := filepath.Glob(filepath.Join("..", "..", "scripts", "*.star"))
	if err != nil || len(scripts) < 5 {
		t.Fatalf("scripts: %v %v", scripts, err)
	}
	work := t.TempDir()
	for _, script := range scripts {
		if strings.HasSuffix(script, "_test.star") {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(script), ".star")
		t.Run(name, func(t *testing.T) {
			abs, _ := filepath.Abs(script)
			dir := t.TempDir()
			vars := natsEnv(node.url, "remote-"+name)
			startWorker(t, work, vars, "w-"+name, "--concurrency", "4")
			for run := 1; run <= 2; run++ {
				bin(t, dir, vars, "run", "--remote", abs).want(t, 0)
				bin(t, dir, nil, "run", abs).want(t, 0) // the file registry, in dir
			}
			for _, args := range [][]string{{"list"}, {"summarize", "--json"}, {"list", "--status", "succeeded"}} {
				got := bin(t, dir, vars, args...).want(t, 0).stdout
				want := bin(t, dir, nil, args...).want(t, 0).stdout
				if got != want {
					t.Errorf("%v with --remote:\n%s\nrun here, on the file:\n%s", args, got, want)
				}
			}
			if r := bin(t, dir, vars, "show", "1.0").want(t, 0); !strings.Contains(r.stdout, "owner:        worker=w-"+name) {
				t.Errorf("thread 1.0 did not run on the worker:\n%s", r.stdout)
			}
		})
	}
}

// TestREADMEWorkers runs the code block of README.md's "Workers"
// subsection with bash, with the binary on PATH and the README's port
// replaced by a free one: two workers run scripts/batch.star's threads,
// and stop with exit status 0 on SIGTERM.
func TestREADMEWorkers(t *testing.T) {
	block := readmeBlock(t, "### Workers")
	port := natstest.FreePorts(t, 1)[0]
	block = strings.ReplaceAll(block, "127.0.0.1:4222", fmt.Sprintf("127.0.0.1:%d", port))
	dir := dirWithScripts(t, "batch.star")
	cmd := exec.Command("bash", "-c", "set -e\n"+block+"wait\necho all-stopped\n")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + filepath.Dir(binary) + ":" + os.Getenv("PATH"), "HOME=" + dir}
	out, err := runBlock(t, cmd, 4*time.Minute)
	if err != nil {
		t.Fatalf("the README's block: %v\n%s", err, out)
	}
	for _, want := range []string{"spawned 300, succeeded 300", "owner:        worker=w", "all-stopped"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestCancelAcrossMachines: autonode cancel, from another process, stops
// a thread that runs on a worker within a second or two; list and show
// name the worker while it runs.
func TestCancelAcrossMachines(t *testing.T) {
	node := startServe(t, "--dir", filepath.Join(t.TempDir(), "node"), "--listen", "127.0.0.1:0")
	dir := t.TempDir()
	vars := natsEnv(node.url, "cancel", "AUTONODE_TOKEN="+tokA)
	startWorker(t, dir, vars, "far")
	script := filepath.Join(dir, "spin.star")
	if err := os.WriteFile(script, []byte("def spin():\n    while True:\n        pass\nspawn(id = 1.0, run = spin, ttl = 120, wait = False)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := startBin(t, dir, vars, "run", "--remote", script)
	s := registryOf(t, node.url, "cancel")
	waitRecords(t, s, 30*time.Second, "the worker runs 1.0", func(ts []*registry.Thread) bool {
		return len(ts) == 1 && ts[0].Status == registry.StatusRunning
	})
	if r := bin(t, dir, vars, "list", "--status", "running").want(t, 0); !strings.Contains(r.stdout, "1.0") {
		t.Errorf("list --status running: %s", r)
	}
	if r := bin(t, dir, vars, "show", "1.0").want(t, 0); !strings.Contains(r.stdout, "owner:        worker=far ") {
		t.Errorf("show 1.0: %s", r)
	}
	start := time.Now()
	r := bin(t, dir, vars, "cancel", "--wait", "1.0").want(t, 0)
	took := time.Since(start)
	if !strings.Contains(r.stdout, "cancelled") {
		t.Errorf("cancel --wait: %s", r)
	}
	if code := run.wait(t, 30*time.Second); code != 0 {
		t.Errorf("autonode run --remote after the cancel: exit %d\n%s", code, run.stderr)
	}
	// The body spins until its TTL (120 s): the cancel must stop it long
	// before; the time it took is logged (a shared 2-core machine running
	// the race detector is no place to time a second).
	th := threadsOf(s)[0]
	if th.Status != registry.StatusCancelled || took > 15*time.Second {
		t.Errorf("1.0 is %s %v after autonode cancel (%q)", th.Status, took, th.Error)
	}
	t.Logf("autonode cancel --wait returned %v after it started (process start-up included)", took.Round(time.Millisecond))
}
