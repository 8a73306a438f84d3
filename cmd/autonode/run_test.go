package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestRun(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s.star")
	os.WriteFile(script, []byte(`
print("argv:", argv)
t = spawn(run = lambda x: x * 2, args = (21,), token = token())
print("result:", t.result, t.status)
`), 0o600)
	r := bin(t, dir, nil, "run", script, "--lr", "0.1").want(t, 0)
	if !strings.Contains(r.stdout, `argv: ["`+script+`", "--lr", "0.1"]`) || !strings.Contains(r.stdout, "result: 42 succeeded") {
		t.Errorf("run output:\n%s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "thread_registry.json")); err != nil {
		t.Errorf("run did not write the registry in the working directory: %v", err)
	}
	bad := filepath.Join(dir, "bad.star")
	os.WriteFile(bad, []byte("def f():\n    return 1 // 0\nf()\n"), 0o600)
	r = bin(t, dir, nil, "run", bad).want(t, 1)
	if !strings.Contains(r.stderr, "Traceback (most recent call last)") || !strings.Contains(r.stderr, "bad.star:2:") {
		t.Errorf("script error:\n%s", r)
	}
	syntaxErr := filepath.Join(dir, "syntax.star")
	os.WriteFile(syntaxErr, []byte("x = (\n"), 0o600)
	bin(t, dir, nil, "run", syntaxErr).want(t, 1)
	bin(t, dir, nil, "run", filepath.Join(dir, "missing.star")).want(t, 2)
	bin(t, dir, nil, "run").want(t, 2)
	bin(t, dir, nil, "run", "--max-steps", "x", script).want(t, 2)
	// A step budget stops a runaway top level.
	loop := filepath.Join(dir, "loop.star")
	os.WriteFile(loop, []byte("x = 0\nfor i in range(1000000):\n    x += i\n"), 0o600)
	r = bin(t, dir, nil, "run", "--max-steps", "1000", loop).want(t, 1)
	if !strings.Contains(r.stderr, "steps") {
		t.Errorf("step budget error:\n%s", r)
	}
}

func TestDocGolden(t *testing.T) {
	got := cli(t, "", nil, "doc").want(t, 0).stdout
	golden := filepath.Join("testdata", "doc.golden")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("autonode doc differs from %s (run go test ./cmd/autonode -run DocGolden -update after checking the change)", golden)
	}
	one := cli(t, "", nil, "doc", "merge").want(t, 0).stdout
	if !strings.Contains(got, one) || !strings.Contains(one, "strategy") {
		t.Errorf("doc merge is not the same text as in the full reference:\n%s", one)
	}
	cli(t, "", nil, "doc", "nosuch").want(t, 2)
}

// TestJSONGolden pins the --json outputs on the seed's registry, and the
// list table.
func TestJSONGolden(t *testing.T) {
	reg := fixture(t)
	for name, args := range map[string][]string{
		"list.json":      {"list", "--json"},
		"list.txt":       {"list"},
		"show.json":      {"show", "21.0", "--json"},
		"summarize.json": {"summarize", "--json"},
	} {
		got := cli(t, reg, nil, args...).want(t, 0).stdout
		golden := filepath.Join("testdata", name)
		if *update {
			os.WriteFile(golden, []byte(got), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("autonode %s differs from %s:\n%s", strings.Join(args, " "), golden, got)
		}
	}
}
