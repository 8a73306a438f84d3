package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/autonode/autonode/runtime"
)

// TestCheck checks autonode check's findings on a file with one of each
// problem, that the example scripts are clean, and that the names it
// resolves against are the ones a real runtime predeclares.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.star")
	src := `load("missing.star", "x")
t = spawn(thread_id = 3, stage = "CORE", tok = "a")
b = branch()
z = accel.zeros((2, 2), "float32", 7)
print(undefined_name)
def f(spawn):
    return spawn(nonsense = 1)
host.exec(["ls"], timeout = 1, shell = True)
`
	if err := os.WriteFile(bad, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, "", nil, "check", bad).want(t, 1)
	want := []string{
		bad + `:1:6: load: "missing.star": no such file (loads resolve relative to the script's directory)`,
		bad + `:2:11: spawn: unexpected keyword argument "thread_id" (the Python seed's name; AutoNode calls it id)`,
		bad + `:2:42: spawn: unexpected keyword argument "tok"; the parameters are id, stage, device, token,`,
		bad + `:3:5: branch: missing argument source: branch(source, new_id=None, overrides=None, token=None) -> Thread`,
		bad + `:4:5: accel.zeros: got 3 positional argument(s), want at most 2: accel.zeros(shape, dtype="float64") -> array`,
		bad + `:5:7: undefined: undefined_name`,
		bad + `:8:32: host.exec: unexpected keyword argument "shell"; the parameters are argv, timeout`,
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("check printed %d findings, want %d:\n%s", len(lines), len(want), r)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("finding %d:\n%s\nwant it to start with\n%s", i, lines[i], w)
		}
	}
	scripts, _ := filepath.Glob(filepath.Join("..", "..", "scripts", "*.star"))
	if r := cli(t, "", nil, append([]string{"check"}, scripts...)...); r.code != 0 || r.stdout != "" {
		t.Errorf("the example scripts have findings:\n%s", r)
	}
	cli(t, "", nil, "check", filepath.Join(dir, "nope.star")).want(t, 2)
	cli(t, "", nil, "check").want(t, 2)

	rt, err := runtime.New(runtime.Options{RegistryPath: filepath.Join(dir, "thread_registry.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var got, real []string
	for k := range scriptNames() {
		got = append(got, k)
	}
	for k := range rt.Predeclared() {
		real = append(real, k)
	}
	slices.Sort(got)
	slices.Sort(real)
	if !slices.Equal(got, real) {
		t.Errorf("check resolves against %v; a runtime predeclares %v", got, real)
	}
}

// TestStarTestCommand runs autonode test on a file with passing and
// failing tests, and on the project's own scripts/*_test.star.
func TestStarTestCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "demo_test.star")
	src := `tok = token()

def work(x):
    return x * 2

def test_result():
    assert.eq(spawn(run = work, args = (21,), token = tok).result, 42)

def test_isolated():
    # every test gets a registry of its own
    assert.eq(summarize()["total"], 0)
    spawn(run = work, args = (1,), token = tok)

def test_isolated_too():
    assert.eq(summarize()["total"], 0)

def test_fails_matches():
    assert.contains(assert.fails(lambda: 1 // 0, "division"), "zero")

def test_broken():
    print("about to fail")
    assert.eq(1 + 1, 3, "arithmetic")

def helper_not_a_test():
    fail("never run")
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, "", nil, "test", dir).want(t, 1)
	for _, w := range []string{
		"ok   " + file + "::test_result (",
		"ok   " + file + "::test_isolated (",
		"ok   " + file + "::test_isolated_too (",
		"ok   " + file + "::test_fails_matches (",
		"FAIL " + file + "::test_broken (",
		"    " + file + ":22:14: assert.eq: arithmetic: got 2, want 3\n    output:\n      about to fail\n",
		"4 passed, 1 failed (",
	} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("autonode test output lacks %q:\n%s", w, r)
		}
	}
	if strings.Contains(r.stdout, "helper_not_a_test") {
		t.Errorf("a function not named test_* ran:\n%s", r)
	}
	if r := cli(t, "", nil, "test", "--run", "isolated$", dir).want(t, 0); !strings.Contains(r.stdout, "1 passed, 0 failed") {
		t.Errorf("--run isolated$:\n%s", r)
	}
	if r := cli(t, "", nil, "test", "--run", "nothing-matches", dir).want(t, 1); !strings.Contains(r.stderr, "no test_* functions") {
		t.Errorf("no tests:\n%s", r)
	}
	if r := cli(t, "", nil, "test", filepath.Join("..", "..", "scripts")); r.code != 0 || !strings.Contains(r.stdout, " passed, 0 failed") {
		t.Errorf("scripts/*_test.star:\n%s", r)
	}
}

// TestDocFormats checks autonode doc --format json and --stubs.
func TestDocFormats(t *testing.T) {
	var entries []docEntry
	if err := json.Unmarshal([]byte(cli(t, "", nil, "doc", "--format", "json").want(t, 0).stdout), &entries); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	var spawn *docEntry
	for i, d := range entries {
		kinds[d.Name] = d.Kind
		if d.Name == "spawn" {
			spawn = &entries[i]
		}
	}
	for name, kind := range map[string]string{"spawn": "function", "accel": "module", "accel.zeros": "function", "array.sum": "method", "Thread": "type", "json": "module"} {
		if kinds[name] != kind {
			t.Errorf("%s: kind %q, want %q", name, kinds[name], kind)
		}
	}
	if spawn == nil || spawn.Returns != "Thread" || len(spawn.Params) < 10 || spawn.Params[0] != (docParam{Name: "id", Default: "None", Kind: "positional"}) {
		t.Fatalf("spawn: %+v", spawn)
	}
	var one docEntry
	if err := json.Unmarshal([]byte(cli(t, "", nil, "doc", "merge", "--format", "json").want(t, 0).stdout), &one); err != nil || one.Name != "merge" {
		t.Errorf("doc merge --format json: %+v %v", one, err)
	}
	cli(t, "", nil, "doc", "--format", "yaml").want(t, 2)
	cli(t, "", nil, "doc", "spawn", "--stubs").want(t, 2)

	stubs := cli(t, "", nil, "doc", "--stubs").want(t, 0).stdout
	for _, w := range []string{"\ndef spawn(id: Any = None, stage: Any = \"BASE\",", "\naccel: _accel_module\n", "    def zeros(self, shape: Any, dtype: Any = \"float64\") -> array:", "\nclass Thread:\n"} {
		if !strings.Contains(stubs, w) {
			t.Errorf("stubs lack %q", w)
		}
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the stub file is not parsed")
	}
	cmd := exec.Command(py, "-c", "import ast, sys; ast.parse(sys.stdin.read(), '__builtins__.pyi')")
	cmd.Stdin = strings.NewReader(stubs)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the stub file does not parse as Python: %v\n%s", err, out)
	}
}
