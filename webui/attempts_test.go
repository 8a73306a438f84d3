package webui_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/webui"
)

// jobsScript makes, through the real engine, a thread that fails twice
// and succeeds on its second retry, a thread that fails for good, and a
// thread that runs after it and so is skipped.
const jobsScript = `
tok = token()

def flaky():
    n = current().attempt
    if n < 3:
        fail("attempt %d: connection reset by peer" % n)
    return {"rows": 1000}

def broken():
    fail("disk full")

def step():
    return "done"

f = spawn(run = flaky, name = "fetch-flaky", retries = 2, retry_delay = 0.01, backoff = 1.5, caching = False, token = tok)
b = spawn(run = broken, name = "broken-upstream", caching = False, token = tok)
s = spawn(run = step, name = "skipped-step", after = [b], caching = False, token = tok)
`

// jobs is a registry of threads that are jobs (jobsRegistry).
type jobs struct {
	reg string
	ids map[string]string // thread keys by name
	// orphan is the process that owns the running thread "orphan"; kill
	// it and the thread reads as crashed.
	orphan *exec.Cmd
}

// Threads that jobsRegistry writes itself, beside the engine's.
const (
	waitingID = registry.ID(10)
	cancelID  = registry.ID(11)
	orphanID  = registry.ID(12)
	// cancelBy is who asked to cancel thread cancelID.
	cancelBy = "autonode cancel (pid=4242 host=ci)"
)

// jobsRegistry runs jobsScript, then adds what a registry holds while
// jobs run in other processes: a thread waiting for fetch-flaky (queued
// by this live process), a running thread with a cancel request, and a
// running thread owned by a child process (a real one, alive until the
// test kills it).
func jobsRegistry(t *testing.T) *jobs {
	t.Helper()
	dir := t.TempDir()
	reg := filepath.Join(dir, registry.DefaultRegistryFile)
	script := filepath.Join(dir, "jobs.star")
	if err := os.WriteFile(script, []byte(jobsScript), 0o600); err != nil {
		t.Fatal(err)
	}
	runScript(t, reg, script)

	child := exec.Command("sleep", "120")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	})
	p, err := process.NewProcess(int32(child.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	start, err := p.CreateTime()
	if err != nil {
		t.Fatal(err)
	}
	orphanOwner := owner.ID{Host: owner.Self().Host, PID: child.Process.Pid, Start: start}.String()
	if !owner.Alive(orphanOwner) {
		t.Fatalf("the child process %s does not read as alive", orphanOwner)
	}

	j := &jobs{reg: reg, ids: map[string]string{}, orphan: child}
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	self := owner.Self().String()
	started := time.Now().UTC().Add(-3 * time.Second).Format(time.RFC3339Nano)
	err = s.Update(func(tx *registry.Tx) error {
		for _, id := range tx.IDs() {
			th, err := tx.Get(id)
			if err != nil {
				return err
			}
			j.ids[th.Name] = id.Key()
		}
		fetch, err := registry.ParseID(j.ids["fetch-flaky"])
		if err != nil {
			return err
		}
		w := registry.NewThread(waitingID, registry.StageCore)
		w.Name, w.Status, w.Owner, w.After = "waits-for-fetch", registry.StatusWaiting, self, []registry.ID{fetch}
		w.AddHistory("Runs after %s succeeds.", fetch)
		if err := tx.Create(w, testToken); err != nil {
			return err
		}
		for _, th := range []*registry.Thread{registry.NewThread(cancelID, ""), registry.NewThread(orphanID, "")} {
			th.Status, th.StartedAt, th.DeviceUsed = registry.StatusRunning, started, "cpu"
			th.Owner, th.Name = self, "long-run"
			if th.ID == orphanID {
				th.Owner, th.Name = orphanOwner, "orphan"
			}
			th.Attempts = []registry.Attempt{{N: 1, Status: registry.StatusRunning, StartedAt: started, DeviceUsed: "cpu", Owner: th.Owner}}
			if err := tx.Create(th, testToken); err != nil {
				return err
			}
		}
		_, outcome, err := tx.RequestCancel(cancelID, testToken, cancelBy, func(string) bool { return true })
		if err == nil && outcome != registry.CancelRequested {
			t.Errorf("cancel of a running thread: outcome %v", outcome)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	j.ids["waits-for-fetch"], j.ids["long-run"], j.ids["orphan"] = waitingID.Key(), cancelID.Key(), orphanID.Key()
	for _, name := range []string{"fetch-flaky", "broken-upstream", "skipped-step"} {
		if j.ids[name] == "" {
			t.Fatalf("the script made no thread %s: %v", name, j.ids)
		}
	}
	return j
}

// killOrphan kills the process that owns thread "orphan" and waits for it.
func (j *jobs) killOrphan(t *testing.T) {
	t.Helper()
	if err := j.orphan.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = j.orphan.Wait()
}

type attemptPage struct {
	Thread struct {
		ID, Name, Status, Error, Owner string
		OwnerGone                      string   `json:"owner_gone"`
		RecordedStatus                 string   `json:"recorded_status"`
		After                          []string `json:"after"`
		Attempts                       []struct {
			N              int
			Status, Error  string
			ErrorSummary   string  `json:"error_summary"`
			StartedAt      string  `json:"started_at"`
			FinishedAt     string  `json:"finished_at"`
			DurationMS     float64 `json:"duration_ms"`
			DeviceUsed     string  `json:"device_used"`
			Owner          string
			RecordedStatus string `json:"recorded_status"`
		}
		Retry *struct {
			Retries        int
			Delay, Backoff float64
			MaxDelay       float64 `json:"max_delay"`
			Delays         []float64
		}
		CancelRequest *struct{ At, By string } `json:"cancel_request"`
	}
	After, Dependents []struct {
		ID, Name, Status string
		Missing, Deleted bool
	}
}

// TestThreadPageAttemptsAndDependencies: the thread page's JSON carries
// the attempts of a retried thread, its retry policy, the threads a
// thread runs after (with their statuses) and those that run after it, a
// pending cancel request, and, for a thread whose owner process is gone,
// the crashed status with what the record says; each only when present.
func TestThreadPageAttemptsAndDependencies(t *testing.T) {
	j := jobsRegistry(t)
	j.killOrphan(t) // before the view reads the registry: orphan reads as crashed
	_, ts := newServer(t, j.reg, webui.Options{})

	var f attemptPage
	getJSON(t, ts, "/api/threads/"+j.ids["fetch-flaky"], 200, &f)
	as := f.Thread.Attempts
	if f.Thread.Status != "succeeded" || len(as) != 3 {
		t.Fatalf("fetch-flaky: status %s, %d attempts, want succeeded after 3", f.Thread.Status, len(as))
	}
	for i, want := range []string{"failed", "failed", "succeeded"} {
		a := as[i]
		if a.N != i+1 || a.Status != want || a.DeviceUsed != "cpu" || a.Owner == "" || a.StartedAt == "" || a.FinishedAt < a.StartedAt {
			t.Errorf("attempt %d: %+v, want n %d %s on cpu with times and owner", i, a, i+1, want)
		}
		if want == "failed" {
			summary := fmt.Sprintf("Error in fail: fail: attempt %d: connection reset by peer", i+1)
			if a.ErrorSummary != summary || !strings.HasPrefix(a.Error, "Traceback") || !strings.HasSuffix(a.Error, summary) {
				t.Errorf("attempt %d: error %q, summary %q, want a backtrace ending %q", a.N, a.Error, a.ErrorSummary, summary)
			}
		} else if a.Error != "" || a.ErrorSummary != "" {
			t.Errorf("the successful attempt has an error: %+v", a)
		}
	}
	if r := f.Thread.Retry; r == nil || r.Retries != 2 || r.Delay != 0.01 || r.Backoff != 1.5 || r.MaxDelay != 60 || len(r.Delays) != 2 || r.Delays[0] != 0.01 || r.Delays[1] != 0.015 {
		t.Errorf("retry policy of fetch-flaky: %+v", f.Thread.Retry)
	}
	if f.Thread.CancelRequest != nil || f.After != nil || f.Thread.OwnerGone != "" {
		t.Errorf("fetch-flaky has a cancel request, upstream threads or a gone owner: %+v", f)
	}
	if len(f.Dependents) != 1 || f.Dependents[0].ID != j.ids["waits-for-fetch"] || f.Dependents[0].Status != "waiting" {
		t.Errorf("threads that run after fetch-flaky: %+v", f.Dependents)
	}

	var w attemptPage
	getJSON(t, ts, "/api/threads/"+j.ids["waits-for-fetch"], 200, &w)
	if w.Thread.Status != "waiting" || len(w.After) != 1 || w.After[0].ID != j.ids["fetch-flaky"] || w.After[0].Name != "fetch-flaky" || w.After[0].Status != "succeeded" {
		t.Errorf("waits-for-fetch: status %s, after %+v", w.Thread.Status, w.After)
	}
	if len(w.Thread.After) != 1 || w.Thread.After[0] != j.ids["fetch-flaky"] || w.Thread.Attempts != nil || w.Thread.OwnerGone != "" {
		t.Errorf("waits-for-fetch's fields: %+v", w.Thread)
	}

	var s attemptPage
	getJSON(t, ts, "/api/threads/"+j.ids["skipped-step"], 200, &s)
	if s.Thread.Status != "skipped" || !strings.Contains(s.Thread.Error, "upstream thread "+j.ids["broken-upstream"]) || s.Thread.Attempts != nil {
		t.Errorf("skipped-step: %+v", s.Thread)
	}
	if len(s.After) != 1 || s.After[0].Name != "broken-upstream" || s.After[0].Status != "failed" {
		t.Errorf("skipped-step runs after %+v", s.After)
	}

	var c attemptPage
	getJSON(t, ts, "/api/threads/"+j.ids["long-run"], 200, &c)
	if cr := c.Thread.CancelRequest; c.Thread.Status != "running" || cr == nil || cr.By != cancelBy || cr.At == "" {
		t.Errorf("long-run: status %s, cancel request %+v", c.Thread.Status, cr)
	}

	var o attemptPage
	getJSON(t, ts, "/api/threads/"+j.ids["orphan"], 200, &o)
	note := "owner pid " + strconv.Itoa(j.orphan.Process.Pid) + " gone"
	if o.Thread.Status != "crashed" || o.Thread.OwnerGone != note || o.Thread.RecordedStatus != "running" {
		t.Errorf("orphan: status %s, owner_gone %q, recorded %q; want crashed, %q, running", o.Thread.Status, o.Thread.OwnerGone, o.Thread.RecordedStatus, note)
	}
	if a := o.Thread.Attempts; len(a) != 1 || a[0].Status != "crashed" || a[0].RecordedStatus != "running" || a[0].ErrorSummary != "crashed: "+note {
		t.Errorf("orphan's attempt: %+v", a)
	}

	// A thread without these parts has none of their fields.
	res, err := ts.Client().Get(ts.URL + "/api/threads/" + j.ids["waits-for-fetch"])
	if err != nil {
		t.Fatal(err)
	}
	var raw struct{ Thread map[string]json.RawMessage }
	if err := json.NewDecoder(res.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, k := range []string{"attempts", "retry", "cancel_request", "owner_gone", "recorded_status"} {
		if v, ok := raw.Thread[k]; ok {
			t.Errorf("waits-for-fetch has %s: %s", k, v)
		}
	}
}

// TestTableShowsWaitingSkippedAndGoneOwners: the summary lists the
// statuses in lifecycle order with waiting and skipped; the table's
// status filter selects them; a row counts its attempts and says when a
// thread reads as crashed because its owner is gone.
func TestTableShowsWaitingSkippedAndGoneOwners(t *testing.T) {
	j := jobsRegistry(t)
	j.killOrphan(t)
	_, ts := newServer(t, j.reg, webui.Options{})
	var sum struct {
		Statuses []string
		ByStatus map[string]int `json:"by_status"`
	}
	getJSON(t, ts, "/api/summary", 200, &sum)
	want := "pending waiting running succeeded failed timed_out cancelled crashed skipped cached dry_run unknown"
	if got := strings.Join(sum.Statuses, " "); got != want {
		t.Errorf("statuses %q, want %q", got, want)
	}
	if sum.ByStatus["waiting"] != 1 || sum.ByStatus["skipped"] != 1 || sum.ByStatus["crashed"] != 1 || sum.ByStatus["running"] != 1 {
		t.Errorf("counts by status: %v", sum.ByStatus)
	}
	type rows struct {
		Threads []struct {
			ID, Status, Error string
			ErrorSummary      string `json:"error_summary"`
			Attempts          int
			OwnerGone         string `json:"owner_gone"`
		}
	}
	for st, name := range map[string]string{"waiting": "waits-for-fetch", "skipped": "skipped-step", "crashed": "orphan"} {
		var r rows
		getJSON(t, ts, "/api/threads?status="+st, 200, &r)
		if len(r.Threads) != 1 || r.Threads[0].ID != j.ids[name] || r.Threads[0].Status != st {
			t.Errorf("?status=%s: %+v, want %s alone", st, r.Threads, name)
		}
	}
	var all rows
	getJSON(t, ts, "/api/threads", 200, &all)
	for _, r := range all.Threads {
		switch r.ID {
		case j.ids["fetch-flaky"]:
			if r.Attempts != 3 {
				t.Errorf("fetch-flaky's row counts %d attempts", r.Attempts)
			}
		case j.ids["broken-upstream"]:
			if r.ErrorSummary != "Error in fail: fail: disk full" || !strings.HasPrefix(r.Error, "Traceback") {
				t.Errorf("broken-upstream's row: error %q, summary %q", r.Error, r.ErrorSummary)
			}
		case j.ids["orphan"]:
			if r.OwnerGone != "owner pid "+strconv.Itoa(j.orphan.Process.Pid)+" gone" || r.Error != "" {
				t.Errorf("orphan's row: %+v", r)
			}
		default:
			if r.OwnerGone != "" {
				t.Errorf("row %+v reads as owned by a gone process", r)
			}
		}
	}
}
