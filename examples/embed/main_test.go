package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmbedExample builds the example as a user would and runs it twice
// on one registry: the script's thread, the total, and the thread spawned
// from Go.
func TestEmbedExample(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "embed")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	reg := filepath.Join(dir, "reg")
	if err := os.Mkdir(reg, 0o700); err != nil {
		t.Fatal(err)
	}
	for run, want := range []string{
		"thread 1.0 succeeded 1000.0\nthreads in the registry: 1\nfrom Go: 2.0 Thread-2-core succeeded\n",
		// The second run reuses the first's results: same bodies, arguments and script.
		"thread 3.0 cached 1000.0\nthreads in the registry: 3\nfrom Go: 4.0 Thread-4-core cached\n",
	} {
		out, err := exec.Command(bin, reg).CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("run %d: %v\n%s\nwant\n%s", run+1, err, out, want)
		}
	}
	if _, err := os.Stat(filepath.Join(reg, "thread_registry.json")); err != nil {
		t.Errorf("no registry: %v", err)
	}
	// Without a directory it leaves nothing behind in the working one.
	cmd := exec.Command(bin)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "from Go: 2.0") {
		t.Errorf("in a temporary directory: %v\n%s", err, out)
	}
}
