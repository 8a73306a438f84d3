package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBenchNumPy runs a quick `autonode bench numpy` through the built
// binary: the Starlark rows run, NumPy rows are measured where a python3
// with numpy exists, and skipped with a message where it does not.
func TestBenchNumPy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench scripts; skipped in -short mode")
	}
	dir := t.TempDir()
	r := bin(t, dir, nil, "bench", "numpy", "--quick", "--rounds", "1", "--rows", "small,large,mm512-f32", "--python", "/surely/not/python3")
	if r.code != 0 {
		t.Fatalf("bench numpy without numpy: %s", r)
	}
	for _, want := range []string{"SKIPPED NumPy rows: no python3 that imports numpy (tried /surely/not/python3)", "python3-numpy",
		"a + b, 16 float64, fresh script", "x + y, 2^20 float64", "matmul 512 float32", "summary: no NumPy reference"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	py := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import numpy").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with numpy (apt-get install python3-numpy): the NumPy column is not tested")
	}
	r = bin(t, dir, nil, "bench", "numpy", "--quick", "--rounds", "2", "--rows", "small,large", "--python", py)
	if r.code != 0 {
		t.Fatalf("bench numpy: %s", r)
	}
	for _, want := range []string{"numpy: ", ", BLAS ", "ratio (min-max)", "peak RSS of that process", "summary: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "SKIPPED") {
		t.Errorf("NumPy rows skipped with %s available:\n%s", py, r.stdout)
	}
	r = bin(t, dir, nil, "bench", "numpy", "--rows", "nope")
	if r.code == 0 || !strings.Contains(r.stderr, "no row matches [nope]") {
		t.Errorf("an unknown row should fail: %s", r)
	}
}
