package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore/natstest"
)

// binary is the autonode command built once by TestMain, for tests of exit
// statuses and standard error as a user sees them.
var binary string

func TestMain(m *testing.M) {
	natstest.NodeMain() // a cluster node that a test started (natstest.ClusterOptions.Processes)
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "autonode-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "autonode")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	build := exec.Command(goTool, "build", "-o", binary, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// fixture copies the seed-written registry and archive into a fresh
// directory and returns the registry's path.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{registry.DefaultRegistryFile, registry.DefaultArchiveFile} {
		data, err := os.ReadFile(filepath.Join("..", "..", "registry", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, registry.DefaultRegistryFile)
}

// result is what one invocation printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs the CLI in-process on the registry at reg with the given
// environment variables (nothing else of the test's environment leaks in).
func cli(t *testing.T, reg string, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	if reg != "" {
		args = append([]string{"--registry", reg}, args...)
	}
	code := runEnv(args, e)
	return result{out.String(), errb.String(), code}
}

// want fails the test unless r exited with code.
func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
	return r
}

// bin runs the built binary in dir with only the given environment.
func bin(t *testing.T, dir string, vars []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, vars...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// snapshot reads the files of the registry at reg (registry and archive).
func snapshot(t *testing.T, reg string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, p := range []string{reg, filepath.Join(filepath.Dir(reg), registry.DefaultArchiveFile)} {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		m[p] = data
	}
	return m
}

func sameFiles(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	for p, b := range before {
		if !bytes.Equal(b, after[p]) {
			t.Errorf("%s changed", p)
		}
	}
}

// noSecrets fails if s exposes token hashes.
func noSecrets(t *testing.T, s string) {
	t.Helper()
	for _, k := range []string{"token_hash", "session_hash", "sha256:"} {
		if strings.Contains(s, k) {
			t.Errorf("output exposes %q:\n%s", k, s)
		}
	}
}

const tokA = "0123456789abcdef0123456789abcdef"
const tokB = "fedcba9876543210fedcba9876543210"

// claim protects ids of the registry with tok.
func claim(t *testing.T, reg, tok string, ids ...string) {
	t.Helper()
	cli(t, reg, nil, append([]string{"--token", tok, "claim"}, ids...)...).want(t, 0)
}
