package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// dirHashes lists the files of dir with their sha256.
func dirHashes(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out = append(out, fmt.Sprintf("%s %x", e.Name(), sha256.Sum256(data)))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

var readCommands = [][]string{{"list"}, {"show", "1.0"}, {"show", "3.0"}, {"query", `@values.#(stage=="CORE")#.id`},
	{"summarize"}, {"lineage", "10.0"}, {"lineage", "3.0"}, {"graph"}, {"fsck"}}

// TestReadCommandsNeverWrite: on a seed registry the read commands create
// no file and change no byte, and they work on a read-only bind mount.
func TestReadCommandsNeverWrite(t *testing.T) {
	reg := fixture(t)
	dir := filepath.Dir(reg)
	before := dirHashes(t, dir)
	for _, args := range readCommands {
		bin(t, dir, nil, append([]string{"--registry", reg}, args...)...).want(t, 0)
	}
	if after := dirHashes(t, dir); after != before {
		t.Errorf("read commands changed %s:\nbefore:\n%s\nafter:\n%s", dir, before, after)
	}
	ro := filepath.Join(t.TempDir(), "ro")
	os.MkdirAll(ro, 0o700)
	if out, err := exec.Command("mount", "--bind", dir, ro).CombinedOutput(); err != nil {
		t.Skipf("no read-only bind mount here (needs root): %v %s", err, out)
	}
	defer exec.Command("umount", ro).Run()
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", ro).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
	roReg := filepath.Join(ro, filepath.Base(reg))
	for _, args := range readCommands {
		bin(t, ro, nil, append([]string{"--registry", roReg}, args...)...).want(t, 0)
	}
	if r := bin(t, ro, []string{"AUTONODE_TOKEN=" + tokA}, "--registry", roReg, "claim", "1.0"); r.code != 1 || !strings.Contains(r.stderr, "read-only file system") {
		t.Errorf("a write on a read-only file system: %s", r)
	}
	if after := dirHashes(t, dir); after != before {
		t.Error("commands on the read-only mount changed the directory")
	}
}

// TestUpdateCounterFourProcesses: four autonode processes each add 1 to a
// counter 300 times with update(); none is lost.
func TestUpdateCounterFourProcesses(t *testing.T) {
	dir := t.TempDir()
	vars := []string{"AUTONODE_TOKEN=" + tokA}
	os.WriteFile(filepath.Join(dir, "init.star"), []byte(`spawn(id = 1, metadata = {"counter": 0}, run = lambda: None, caching = False)`+"\n"), 0o600)
	bin(t, dir, vars, "run", "init.star").want(t, 0)
	os.WriteFile(filepath.Join(dir, "inc.star"), []byte(`
def inc(t):
    return {"metadata": {"counter": t.metadata["counter"] + 1}}
for i in range(300):
    update(1, inc)
`), 0o600)
	var wg sync.WaitGroup
	results := make([]result, 4)
	for p := range results {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			results[p] = bin(t, dir, vars, "run", "inc.star")
		}(p)
	}
	wg.Wait()
	for _, r := range results {
		r.want(t, 0)
	}
	r := bin(t, dir, nil, "query", `1\.0.metadata.counter`).want(t, 0)
	if strings.TrimSpace(r.stdout) != "1200" {
		t.Errorf("counter after 4 x 300 increments = %s, want 1200", r.stdout)
	}
	// mutate(if_version=) refuses a stale version; fn may not use the registry.
	os.WriteFile(filepath.Join(dir, "stale.star"), []byte(`
t = get(1)
mutate(1, {"name": "fresh"}, if_version = t.version)
mutate(1, {"name": "stale"}, if_version = t.version)
`), 0o600)
	r = bin(t, dir, vars, "run", "stale.star").want(t, 1)
	if !strings.Contains(r.stderr, "changed since it was read") || !strings.Contains(bin(t, dir, nil, "show", "1").stdout, "name:         fresh") {
		t.Errorf("mutate with a stale version: %s", r)
	}
	os.WriteFile(filepath.Join(dir, "nested.star"), []byte(`update(1, lambda t: {"name": get(1).name})`+"\n"), 0o600)
	r = bin(t, dir, vars, "run", "nested.star").want(t, 1)
	if !strings.Contains(r.stderr, "get: refused inside the function given to update") {
		t.Errorf("a registry builtin inside update's fn: %s", r)
	}
}

// TestInfoPrintsWhatShowPrints: the info() builtin and autonode show
// print the same text (one printer), for a live and a deleted thread.
func TestInfoPrintsWhatShowPrints(t *testing.T) {
	reg := fixture(t)
	dir := filepath.Dir(reg)
	for _, id := range []string{"30.0", "3.0"} {
		script := filepath.Join(dir, "info.star")
		os.WriteFile(script, []byte("info("+id+")\n"), 0o600)
		info := bin(t, dir, nil, "--registry", reg, "run", script).want(t, 0).stdout
		show := bin(t, dir, nil, "--registry", reg, "show", id).want(t, 0).stdout
		if info != show {
			t.Errorf("info(%s) and show %s differ:\ninfo:\n%s\nshow:\n%s", id, id, info, show)
		}
	}
	// A merge shows both parents, as list does.
	if out := bin(t, dir, nil, "--registry", reg, "show", "30.0").stdout; !strings.Contains(out, "parent:       1.0, 4.5\n") {
		t.Errorf("show of a merge:\n%s", out)
	}
}

// TestShowResultIsPrintedAsJSON: a dict result prints on one line, without
// escaped newlines.
func TestShowResultIsPrintedAsJSON(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.star"), []byte(`spawn(id = 1, run = lambda: {"a": [1, 2], "b": "x"}, caching = False)`+"\n"), 0o600)
	bin(t, dir, []string{"AUTONODE_TOKEN=" + tokA}, "run", "r.star").want(t, 0)
	out := bin(t, dir, nil, "show", "1").want(t, 0).stdout
	if !strings.Contains(out, `result:       {"a":[1,2],"b":"x"}`+"\n") || strings.Contains(out, `\u000a`) {
		t.Errorf("show of a dict result:\n%s", out)
	}
}
