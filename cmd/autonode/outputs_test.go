package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natstest"
	"github.com/autonode/autonode/registry/registrytest"
)

// The commands over results, logs and metrics, on data written through
// the registry's outputs API (as the engine writes it).

// outputsData writes registrytest.Sample into s.
func outputsData(t *testing.T, s registry.Store) (npy3, npy4 []byte) {
	t.Helper()
	sm := registrytest.WriteSample(t, s, tokA)
	return sm.NPY3, sm.NPY4
}

// outputsRegistry is a registry file holding outputsData.
func outputsRegistry(t *testing.T) (reg string, npy3, npy4 []byte) {
	t.Helper()
	reg = filepath.Join(t.TempDir(), registry.DefaultRegistryFile)
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	npy3, npy4 = outputsData(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return reg, npy3, npy4
}

// numpy runs a Python program with NumPy, or skips when there is none.
func numpy(t *testing.T, dir, program string) string {
	t.Helper()
	py := ""
	for _, p := range []string{os.Getenv("AUTONODE_PYTHON"), "python3", "/usr/bin/python3"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import numpy").Run() == nil {
			py = path
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with NumPy on this machine: the NumPy round trip is not checked (apt-get install python3-numpy)")
	}
	cmd := exec.Command(py, "-c", program)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestResultCommand(t *testing.T) {
	reg, npy3, npy4 := outputsRegistry(t)
	dir := filepath.Dir(reg)
	out := filepath.Join(dir, "w.npy")
	r := cli(t, reg, nil, "result", "3.0", "--out", out).want(t, 0)
	if !strings.Contains(r.stdout, "Wrote the result of thread 3.0 (float64 (3, 4), 224 B, .npy) to "+out) {
		t.Errorf("result --out: %s", r)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, npy3) {
		t.Error("the .npy file is not the stored array")
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	// To standard output (not a terminal), through the real binary.
	if b := bin(t, dir, nil, "result", "3.0"); b.code != 0 || b.stdout != string(npy3) {
		t.Errorf("result to standard output: exit %d, %d bytes", b.code, len(b.stdout))
	}
	if r := cli(t, reg, nil, "result", "3.0", "--format", "json").want(t, 0); !strings.HasPrefix(r.stdout, "[\n  [\n    0,\n    0.5,") {
		t.Errorf("--format json:\n%s", r.stdout)
	}
	if r := cli(t, reg, nil, "result", "5.0").want(t, 0); r.stdout != "{\n  \"loss\": 0.125\n}\n" {
		t.Errorf("a JSON result: %q", r.stdout)
	}
	npz := filepath.Join(dir, "r.npz")
	cli(t, reg, nil, "result", "4.0", "--out", npz).want(t, 0)
	zr, err := zip.OpenReader(npz)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	zr.Close()
	if strings.Join(names, " ") != "weights.npy result.json" {
		t.Errorf(".npz members %v", names)
	}
	one := filepath.Join(dir, "weights.npy")
	cli(t, reg, nil, "result", "4.0", "--array", "weights", "--out", one).want(t, 0)
	if got, _ := os.ReadFile(one); !bytes.Equal(got, npy4) {
		t.Error("--array wrote something else")
	}
	// Deleted threads keep their results.
	cli(t, reg, nil, "result", "7.0", "--out", filepath.Join(dir, "d.npy")).want(t, 0)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"result", "6.0"}, 1, "thread 6.0: no result: it has not recorded one"},
		{[]string{"result", "99.0"}, 1, "no such thread"},
		{[]string{"result", "x"}, 2, "not a number"},
		{[]string{"result", "3.0", "--format", "csv"}, 2, `--format "csv": want one of npy, npz, json`},
		{[]string{"result", "4.0", "--format", "npy"}, 2, "holds 1 arrays (/weights): pick one by its pointer"},
		{[]string{"result", "5.0", "--format", "npy"}, 2, "is JSON without arrays; write it as json"},
		{[]string{"result", "4.0", "--array", "/nope"}, 1, `no stored array at "/nope"; it holds: /weights`},
		{[]string{"result"}, 2, "takes one thread id"},
	} {
		r := cli(t, reg, nil, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: want exit %d and %q, got %s", c.args, c.code, c.want, r)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.npy")); err == nil {
		t.Error("a failed export left a file")
	}
	// A stored array removed by hand, or damaged.
	stored := filepath.Join(strings.TrimSuffix(reg, ".json")+".results", registrytest.SHA256(npy3)+".npy")
	data, _ := os.ReadFile(stored)
	data[len(data)-1] ^= 1
	os.WriteFile(stored, data, 0o600)
	bad := filepath.Join(dir, "bad.npy")
	if r := cli(t, reg, nil, "result", "3.0", "--out", bad).want(t, 1); !strings.Contains(r.stderr, "stored result is damaged") || !strings.Contains(r.stderr, "run the thread again") {
		t.Errorf("a damaged result: %s", r)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Error("a damaged result was written out")
	}
	os.Remove(stored)
	if r := cli(t, reg, nil, "result", "3.0", "--out", bad).want(t, 1); !strings.Contains(r.stderr, "stored result not found") {
		t.Errorf("a missing result: %s", r)
	}
}

func TestResultNumPyLoads(t *testing.T) {
	reg, _, _ := outputsRegistry(t)
	dir := filepath.Dir(reg)
	cli(t, reg, nil, "result", "3.0", "--out", filepath.Join(dir, "w.npy")).want(t, 0)
	cli(t, reg, nil, "result", "4.0", "--out", filepath.Join(dir, "r.npz")).want(t, 0)
	got := numpy(t, dir, `
import json, numpy
a = numpy.load("w.npy")
z = numpy.load("r.npz")
print(a.dtype, a.shape, a[2, 3], a.sum())
print(z["weights"].dtype, z["weights"].tolist(), json.loads(z["result.json"])["loss"])
`)
	if want := "float64 (3, 4) 5.5 33.0\nfloat32 [1.0, 2.0] 0.25"; got != want {
		t.Errorf("NumPy read:\n%s\nwant\n%s", got, want)
	}
}

func TestLogsCommand(t *testing.T) {
	reg, _, _ := outputsRegistry(t)
	r := cli(t, reg, nil, "logs", "3.0").want(t, 0)
	want := "epoch 1 start\nloss 0.9\nepoch 2 start\tdone\nloss 0.4\\u001b[31m\n[autonode: attempt 2]\nretrying\n"
	if r.stdout != want {
		t.Errorf("logs:\n%q\nwant\n%q", r.stdout, want)
	}
	if r := cli(t, reg, nil, "logs", "3.0", "--tail", "2", "-t").want(t, 0); !strings.HasSuffix(r.stdout, "Z retrying\n") || strings.Count(r.stdout, "\n") != 2 && strings.Count(r.stdout, "\n") != 3 || strings.Contains(r.stdout, "epoch") {
		t.Errorf("--tail 2 -t:\n%s", r.stdout)
	}
	r = cli(t, reg, nil, "logs", "3.0", "--json").want(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var first struct {
		Line    int64  `json:"line"`
		Stream  string `json:"stream"`
		Attempt int    `json:"attempt"`
		Text    string `json:"text"`
	}
	if len(lines) != 5 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.Line != 1 || first.Stream != "print" || first.Attempt != 1 || first.Text != "epoch 1 start" {
		t.Errorf("--json:\n%s", r.stdout)
	}
	if r := cli(t, reg, nil, "logs", "6.0").want(t, 0); r.stdout != "" {
		t.Errorf("a thread without a log printed %q", r.stdout)
	}
	// A finished thread: -f prints and returns.
	cli(t, reg, nil, "logs", "3.0", "-f").want(t, 0)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"logs", "99.0"}, 1, "no such thread"},
		{[]string{"logs", "3.0", "--tail", "-1"}, 2, "--tail -1"},
		{[]string{"logs"}, 2, "takes one thread id"},
	} {
		if r := cli(t, reg, nil, c.args...); r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: want exit %d and %q, got %s", c.args, c.code, c.want, r)
		}
	}
}

// TestLogsTruncated: a log past its limit says where lines were dropped.
func TestLogsTruncated(t *testing.T) {
	reg, _, _ := outputsRegistry(t)
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	lw, err := s.Logs().OpenLog(context.Background(), 6, registry.LogOptions{MaxBytes: registry.MinLogBytes})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		lw.Write(registry.LogEntry{Text: fmt.Sprintf("line %d", i+1)})
	}
	lw.Close()
	s.Close()
	r := cli(t, reg, nil, "logs", "6.0").want(t, 0)
	lines := strings.Split(r.stdout, "\n")
	if !strings.HasPrefix(lines[0], "[autonode: ") || !strings.Contains(lines[0], "earlier log line(s)") || lines[len(lines)-2] != "line 1000" {
		t.Errorf("truncated log starts %q, ends %q", lines[0], lines[len(lines)-2])
	}
}

// TestLogsFollow: -f prints the lines a running thread writes, in order,
// and returns once the thread has finished.
func TestLogsFollow(t *testing.T) {
	reg, _, _ := outputsRegistry(t)
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must := func(err error) {
		if err != nil {
			t.Error(err)
		}
	}
	must(s.Update(func(tx *registry.Tx) error {
		th := registry.NewThread(20, "CORE")
		th.Status = registry.StatusRunning
		return tx.Create(th, tokA)
	}))
	lw, err := s.Logs().OpenLog(context.Background(), 20, registry.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := 1; i <= 30; i++ {
			must(lw.Write(registry.LogEntry{Stream: registry.StreamPrint, Text: fmt.Sprintf("step %d", i)}))
			time.Sleep(20 * time.Millisecond)
		}
		must(lw.Close())
		must(s.Update(func(tx *registry.Tx) error {
			th, err := tx.Get(20)
			if err != nil {
				return err
			}
			th.Status = registry.StatusSucceeded
			return tx.Put(th, tokA)
		}))
	}()
	start := time.Now()
	r := cli(t, reg, nil, "logs", "20.0", "-f").want(t, 0)
	var want []string
	for i := 1; i <= 30; i++ {
		want = append(want, fmt.Sprintf("step %d", i))
	}
	if got := strings.TrimSpace(r.stdout); got != strings.Join(want, "\n") {
		t.Errorf("followed:\n%s", got)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("the follow returned after %v, before the thread finished", d)
	}
}

func TestMetricsCommand(t *testing.T) {
	reg, _, _ := outputsRegistry(t)
	r := cli(t, reg, nil, "metrics", "3.0").want(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "METRIC  STEP  VALUE") || !strings.HasPrefix(lines[1], "acc     0     0.5 ") || !strings.HasPrefix(lines[5], "loss    2     0.2 ") {
		t.Errorf("metrics:\n%s", r.stdout)
	}
	r = cli(t, reg, nil, "metrics", "3.0", "--summary").want(t, 0)
	if want := "METRIC  POINTS  LAST  STEP  MIN  MAX\nacc     2       0.75  1     0.5  0.75\nloss    3       0.2   2     0.2  0.9\n"; r.stdout != want {
		t.Errorf("--summary:\n%s\nwant\n%s", r.stdout, want)
	}
	r = cli(t, reg, nil, "metrics", "3.0", "--name", "loss", "--json").want(t, 0)
	var v struct {
		Thread  string
		Metrics []struct {
			Name   string
			Count  int
			Last   float64
			Points []struct{ Step int64 }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Thread != "3.0" || len(v.Metrics) != 1 || v.Metrics[0].Count != 3 || v.Metrics[0].Points[2].Step != 2 {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}
	if r := cli(t, reg, nil, "metrics", "6.0").want(t, 0); r.stdout != "Thread 6.0 recorded no metrics.\n" {
		t.Errorf("no metrics: %q", r.stdout)
	}
	if r := cli(t, reg, nil, "metrics", "3.0", "--name", "lr").want(t, 1); !strings.Contains(r.stderr, `recorded no metric "lr"; it recorded: acc, loss`) {
		t.Errorf("--name lr: %s", r)
	}
	cli(t, reg, nil, "metrics", "3.0", "--name", "a:b").want(t, 2)
	cli(t, reg, nil, "metrics", "99.0").want(t, 1)
}

func TestDiffCommand(t *testing.T) {
	reg, _, _ := outputsRegistry(t)
	r := cli(t, reg, nil, "diff", "3.0", "4.0").want(t, 0)
	for _, want := range []string{
		"* name ", "train-a", "train-b",
		"metadata:", `  lr `, "0.01", "0.02",
		"result:", "float64 (3, 4) sha256:", "array /weights", "float32 (2,) sha256:",
		"metric:", "  loss last", "0.2 @2", "0.3 @1", "  acc max", "0.75",
		"Lineage: 4.0 descends from 3.0 (its parent).",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("diff lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "* stage ") || strings.HasPrefix(l, "  name ") || strings.HasSuffix(l, " ") {
			t.Errorf("difference marks: %q", l)
		}
	}
	only := cli(t, reg, nil, "diff", "3.0", "4.0", "--only-differences").want(t, 0).stdout
	if strings.Contains(only, "stage ") || !strings.Contains(only, "name ") {
		t.Errorf("--only-differences:\n%s", only)
	}
	for _, c := range []struct{ a, b, want string }{
		{"10.0", "11.0", "10.0 and 11.0 are siblings: both derive from 3.0."},
		{"3.0", "10.0", "10.0 descends from 3.0 (its parent)."},
		{"4.0", "10.0", "4.0 and 10.0 are siblings"},
		{"3.0", "12.0", "3.0 and 12.0 are unrelated"},
		{"3.0", "3.0", "are the same thread"},
		{"3.0", "7.0", "unrelated"}, // an archived thread
	} {
		if r := cli(t, reg, nil, "diff", c.a, c.b).want(t, 0); !strings.Contains(r.stdout, c.want) {
			t.Errorf("diff %s %s:\n%s", c.a, c.b, r.stdout)
		}
	}
	r = cli(t, reg, nil, "diff", "4.0", "10.0", "--json").want(t, 0)
	var v struct {
		A, B string
		Rows []struct {
			Section, Field string
			A, B           *string
			Differs        bool
		}
		Lineage struct {
			Relation       string
			CommonAncestor string `json:"common_ancestor"`
			AGenerations   int    `json:"a_generations"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Lineage.Relation != "common-ancestor" || v.Lineage.CommonAncestor != "3.0" || v.Lineage.AGenerations != 1 {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	for _, row := range v.Rows {
		if row.Section == "metric" && row.Field == "loss last" && (row.A == nil || row.B != nil || !row.Differs) {
			t.Errorf("a metric only one side has: %+v", row)
		}
	}
	cli(t, reg, nil, "diff", "3.0").want(t, 2)
	cli(t, reg, nil, "diff", "3.0", "99.0").want(t, 1)
}

func TestCompactGCResults(t *testing.T) {
	reg, _, _ := outputsRegistry(t)
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(v float64) string {
		ref, err := s.Results().PutArray(ctx, bytes.NewReader(registrytest.NPY(t, []float64{v}, false, 1)))
		if err != nil {
			t.Fatal(err)
		}
		return ref.SHA256
	}
	old, recent := put(100), put(200)
	dir := s.ResultsDir()
	s.Close()
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(dir, old+".npy"), past, past)
	have := func(d string) bool { _, err := os.Stat(filepath.Join(dir, d+".npy")); return err == nil }

	r := cli(t, reg, nil, "compact", "--gc-results", "--dry-run").want(t, 0)
	if !strings.Contains(r.stdout, "5 stored") || !strings.Contains(r.stdout, "3 referenced") || !strings.Contains(r.stdout, "1 unreferenced but stored within the last 1h0m0s, kept") ||
		!strings.Contains(r.stdout, "1 unreferenced would be removed") || !strings.Contains(r.stdout, "would be removed "+old) || strings.Contains(r.stdout, "Compacted") {
		t.Errorf("dry run:\n%s", r.stdout)
	}
	if !have(old) {
		t.Fatal("the dry run removed a result")
	}
	r = cli(t, reg, nil, "compact", "--gc-results").want(t, 0)
	if !strings.Contains(r.stdout, "Compacted") || !strings.Contains(r.stdout, "1 unreferenced removed") || have(old) || !have(recent) {
		t.Errorf("collection:\n%s", r.stdout)
	}
	r = cli(t, reg, nil, "compact", "--gc-results", "--gc-grace", "0").want(t, 0)
	if have(recent) || !strings.Contains(r.stdout, "1 unreferenced removed") {
		t.Errorf("--gc-grace 0:\n%s", r.stdout)
	}
	// The referenced ones, the deleted thread's included, are all there.
	for _, id := range []string{"3.0", "4.0", "7.0"} {
		cli(t, reg, nil, "result", id, "--out", filepath.Join(t.TempDir(), "r")).want(t, 0)
	}
	cli(t, reg, nil, "compact", "--dry-run").want(t, 2)
	cli(t, reg, nil, "compact", "--gc-grace", "2h").want(t, 2)
	cli(t, reg, nil, "compact", "--gc-results", "--gc-grace", "-1s").want(t, 2)
}

// TestListWatch: the table is drawn again when a thread changes, and
// Ctrl-C ends the watch with exit status 0.
func TestListWatch(t *testing.T) {
	reg, _, _ := outputsRegistry(t)
	dir := filepath.Dir(reg)
	r := start(t, dir, "list", "--watch", "--interval", "100ms")
	waitFor := func(want string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l := <-r.lines:
				if strings.Contains(l, want) {
					return
				}
			case <-r.done:
				t.Fatalf("exited (%d) before printing %q:\n%s", r.code, want, r.output())
			case <-deadline:
				t.Fatalf("no %q within 30 s:\n%s", want, r.output())
			}
		}
	}
	waitFor("--- ")
	waitFor("train-a")
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *registry.Tx) error {
		th := registry.NewThread(30, "BASE")
		th.Name = "appeared-later"
		return tx.Create(th, tokA)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	waitFor("appeared-later")
	r.cmd.Process.Signal(syscall.SIGINT)
	r.wait(t, 10*time.Second)
	if r.code != 0 {
		t.Errorf("exit %d after Ctrl-C:\n%s", r.code, r.output())
	}
	if n := strings.Count(r.output(), "--- "); n != 2 {
		t.Errorf("the table was drawn %d times for one change:\n%s", n, r.output())
	}
	cli(t, reg, nil, "list", "--watch", "--json").want(t, 2)
	cli(t, reg, nil, "list", "--watch", "--interval", "1ms").want(t, 2)
}

// TestOutputCommandsOverNATS: the same commands on a registry in
// JetStream.
func TestOutputCommandsOverNATS(t *testing.T) {
	n := natstest.RunNode(t)
	s, err := natsstore.Open(natsstore.Options{URL: n.ClientURL(), Bucket: "outputs"})
	if err != nil {
		t.Fatal(err)
	}
	npy3, _ := outputsData(t, s)
	s.Close()
	nats := []string{"--nats", n.ClientURL(), "--nats-bucket", "outputs"}
	out := filepath.Join(t.TempDir(), "w.npy")
	cli(t, "", nil, append(nats, "result", "3.0", "--out", out)...).want(t, 0)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, npy3) {
		t.Error("result over NATS: not the stored bytes")
	}
	if r := cli(t, "", nil, append(nats, "logs", "3.0", "--tail", "1")...).want(t, 0); r.stdout != "retrying\n" {
		t.Errorf("logs over NATS: %q", r.stdout)
	}
	if r := cli(t, "", nil, append(nats, "metrics", "3.0", "--summary")...).want(t, 0); !strings.Contains(r.stdout, "loss    3       0.2") {
		t.Errorf("metrics over NATS:\n%s", r.stdout)
	}
	if r := cli(t, "", nil, append(nats, "diff", "3.0", "4.0")...).want(t, 0); !strings.Contains(r.stdout, "4.0 descends from 3.0") {
		t.Errorf("diff over NATS:\n%s", r.stdout)
	}
	r := cli(t, "", nil, append(nats, "compact", "--gc-results")...).want(t, 0)
	if !strings.Contains(r.stdout, "keeps no journal") || !strings.Contains(r.stdout, "3 stored") || !strings.Contains(r.stdout, "3 referenced") {
		t.Errorf("compact --gc-results over NATS:\n%s", r.stdout)
	}
}
