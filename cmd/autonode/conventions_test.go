package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIConventions checks the habits kubectl and gh users bring: a
// --version flag, usage errors (exit 2, with the valid values) for unknown
// help topics, completion shells and negative worker counts.
func TestCLIConventions(t *testing.T) {
	v := cli(t, "", nil, "--version").want(t, 0).stdout
	if v != cli(t, "", nil, "version").want(t, 0).stdout || !strings.HasPrefix(v, "autonode ") {
		t.Errorf("--version printed %q, version printed something else", v)
	}
	r := cli(t, "", nil, "help", "nosuch").want(t, 2)
	if !strings.Contains(r.stderr, `unknown topic "nosuch"`) || !strings.Contains(r.stderr, "result, run, serve, show") {
		t.Errorf("help nosuch:\n%s", r)
	}
	if r := cli(t, "", nil, "help", "bench", "nosuch").want(t, 2); !strings.Contains(r.stderr, "the topics are: accel") {
		t.Errorf("help bench nosuch:\n%s", r)
	}
	if r := cli(t, "", nil, "help", "run").want(t, 0); !strings.Contains(r.stdout, "Run a Starlark script") {
		t.Errorf("help run:\n%s", r)
	}
	r = cli(t, "", nil, "completion", "tcsh").want(t, 2)
	if !strings.Contains(r.stderr, `unknown shell "tcsh"; want one of bash, zsh, fish, powershell`) {
		t.Errorf("completion tcsh:\n%s", r)
	}
	cli(t, "", nil, "completion").want(t, 2)
	for _, sh := range completionShells {
		if r := cli(t, "", nil, "completion", sh).want(t, 0); !strings.Contains(r.stdout, "autonode") {
			t.Errorf("completion %s printed no script:\n%s", sh, r)
		}
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "ok.star")
	if err := os.WriteFile(script, []byte("print('ran')\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "thread_registry.json")
	r = cli(t, reg, nil, "run", "--workers", "-3", script).want(t, 2)
	if !strings.Contains(r.stderr, "--workers: got -3") || strings.Contains(r.stdout, "ran") {
		t.Errorf("run --workers -3:\n%s", r)
	}
	cli(t, reg, nil, "repl", "--workers", "-1").want(t, 2)
}

// TestSyntaxErrorCaret checks that a syntax error shows the source line
// and a caret under the column, in a script and in piped REPL input.
func TestSyntaxErrorCaret(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "bad.star")
	if err := os.WriteFile(script, []byte("x = 1\nprint(x y)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, filepath.Join(dir, "thread_registry.json"), nil, "run", script).want(t, 1)
	// go.starlark.net places this error just after the identifier.
	want := script + ":2:10: got identifier, want ','\n    print(x y)\n             ^\n"
	if r.stderr != want {
		t.Errorf("stderr:\n%q\nwant\n%q", r.stderr, want)
	}
}
