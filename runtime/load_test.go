//go:build unix

package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"
)

// loadTree makes the directories of the load tests: the script's
// directory (with a library, symbolic links in and out, a named pipe, a
// directory and a large file) and a directory beside it with a secret.
func loadTree(t *testing.T) (scripts, outside string) {
	t.Helper()
	base := t.TempDir()
	scripts, outside = filepath.Join(base, "scripts"), filepath.Join(base, "outside")
	for _, d := range []string{scripts, filepath.Join(scripts, "lib"), filepath.Join(scripts, "adir"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, src string) {
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(scripts, "helpers.star"), "HELP = 'help'\n")
	write(filepath.Join(scripts, "lib", "util.star"), "load(\"../helpers.star\", \"HELP\")\ndef cube(x):\n    return x * x * x\nUSES = HELP\n")
	write(filepath.Join(outside, "secret.star"), "DB_PASSWORD = 'hunter2'\n")
	write(filepath.Join(scripts, "big.star"), "x = 1\n"+strings.Repeat("#", 4096)+"\n")
	for link, target := range map[string]string{
		filepath.Join(scripts, "lib", "out.star"): filepath.Join(outside, "secret.star"),
		filepath.Join(scripts, "lib", "up.star"):  "../../outside/secret.star",
		filepath.Join(scripts, "lib", "in.star"):  "util.star",
		filepath.Join(scripts, "env.star"):        "/proc/self/environ",
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(scripts, "pipe.star"), 0o600); err != nil {
		t.Fatal(err)
	}
	return scripts, outside
}

// Issue 13, item 6: load() follows the embedder's policy.
func TestLoad_Policy(t *testing.T) {
	scripts, outside := loadTree(t)
	t.Setenv("AUTONODE_TOKEN", testToken)
	rt := newTestRuntime(t, Options{LoadDir: scripts, MaxLoadBytes: 1024})
	main := filepath.Join(scripts, "main.star")
	for _, c := range []struct {
		module string
		want   error  // nil: it loads
		msg    string // in the error
	}{
		{"lib/util.star", nil, ""},
		{"./lib/../lib/util.star", nil, ""},
		{"lib/in.star", nil, ""}, // a symbolic link that stays inside
		{"../outside/secret.star", ErrLoadDenied, "its .. leads outside the directories scripts may load from (" + scripts + ")"},
		{filepath.Join(outside, "secret.star"), ErrLoadDenied, "an absolute path outside the directories scripts may load from"},
		{"/proc/self/environ", ErrLoadDenied, "an absolute path outside"},
		{"/dev/zero", ErrLoadDenied, "an absolute path outside"},
		{"env.star", ErrLoadDenied, "a symbolic link or .. that leads outside"},
		{"lib/out.star", ErrLoadDenied, "a symbolic link or .. that leads outside"},
		{"lib/up.star", ErrLoadDenied, "a symbolic link or .. that leads outside"},
		{"pipe.star", ErrLoadDenied, "pipe.star is a named pipe; load() reads only regular files"},
		{"adir", ErrLoadDenied, "adir is a directory"},
		{"big.star", ErrLoadTooLarge, "big.star is larger than the 1024 bytes a module may have (runtime.Options.MaxLoadBytes)"},
		{"missing.star", nil, "missing.star: no such file"},
	} {
		src := "load(" + quote(c.module) + ", x = \"USES\")\n"
		if strings.Contains(c.module, "secret") || strings.Contains(c.module, "out.star") || strings.Contains(c.module, "up.star") {
			src = "load(" + quote(c.module) + ", x = \"DB_PASSWORD\")\n"
		} else if c.module == "big.star" {
			src = "load(" + quote(c.module) + ", \"x\")\n"
		}
		start := time.Now()
		_, err := rt.ExecFile(context.Background(), main, src)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v", c.module, d)
		}
		switch {
		case c.want == nil && c.msg == "":
			if err != nil {
				t.Errorf("%s: %v", c.module, err)
			}
		case c.want == nil:
			if err == nil || !strings.Contains(err.Error(), c.msg) || errors.Is(err, ErrLoadDenied) {
				t.Errorf("%s: %v, want a plain error with %q", c.module, err, c.msg)
			}
		default:
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%s: %v, want %v with %q", c.module, err, c.want, c.msg)
			}
			if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), testToken)) {
				t.Errorf("%s: the error shows what the file holds: %v", c.module, err)
			}
		}
	}
	// --allow-load: another directory, and absolute paths within it.
	rt2 := newTestRuntime(t, Options{LoadDir: scripts, AllowLoad: []string{outside}})
	g, err := rt2.ExecFile(context.Background(), main, "load("+quote(filepath.Join(outside, "secret.star"))+", \"DB_PASSWORD\")\nload(\"../outside/secret.star\", p2 = \"DB_PASSWORD\")\np1 = DB_PASSWORD\nboth = p2\n")
	if err != nil || g["p1"] == nil || g["both"] == nil {
		t.Errorf("allowed directory: %v", err)
	}
	if _, err := New(Options{LoadDir: filepath.Join(scripts, "nope"), RegistryPath: filepath.Join(t.TempDir(), "r.json")}); err == nil || !strings.Contains(err.Error(), "load directory") {
		t.Errorf("a LoadDir that does not exist: %v", err)
	}
}

// By default an embedder allows no loads at all.
func TestLoad_DefaultRefusesAll(t *testing.T) {
	scripts, _ := loadTree(t)
	rt := newTestRuntime(t, Options{})
	_, err := rt.ExecFile(context.Background(), filepath.Join(scripts, "main.star"), `load("helpers.star", "HELP")`)
	if !errors.Is(err, ErrLoadDenied) || !strings.Contains(err.Error(), "the embedding application allows no loads") {
		t.Errorf("%v", err)
	}
}

func TestLoad_FS(t *testing.T) {
	fsys := fstest.MapFS{
		"lib/a.star":     {Data: []byte("load(\"b.star\", \"B\")\nA = B + 1\n")},
		"lib/b.star":     {Data: []byte("B = 41\n")},
		"top.star":       {Data: []byte("T = 1\n")},
		"lib/dir/x.star": {Data: []byte("X = 1\n")},
	}
	rt := newTestRuntime(t, Options{LoadFS: fsys})
	g, err := rt.ExecFile(context.Background(), "job.star", "load(\"lib/a.star\", \"A\")\na = A\n")
	if err != nil || g["a"] == nil || g["a"].String() != "42" {
		t.Fatalf("relative loads in an FS: %v %v", g["a"], err)
	}
	for module, want := range map[string]string{
		"../etc/passwd":   "its .. leads outside the embedding application's file system",
		"/etc/passwd":     "an absolute path",
		"lib/dir":         "lib/dir is a directory",
		"lib/missing.sta": "no such file",
	} {
		_, err := rt.ExecFile(context.Background(), "job.star", "load("+quote(module)+", \"A\")")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", module, err, want)
		}
	}
	// A real directory through os.Root: symbolic links out are refused.
	scripts, _ := loadTree(t)
	root, err := os.OpenRoot(scripts)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	rt2 := newTestRuntime(t, Options{LoadFS: root.FS()})
	if _, err := rt2.ExecFile(context.Background(), "main.star", `load("lib/util.star", "cube")`); err != nil {
		t.Errorf("os.Root FS: %v", err)
	}
	if _, err := rt2.ExecFile(context.Background(), "main.star", `load("lib/out.star", "DB_PASSWORD")`); !errors.Is(err, ErrLoadDenied) {
		t.Errorf("os.Root FS, link out: %v", err)
	}
}

func TestLoad_Func(t *testing.T) {
	var asked []string
	rt := newTestRuntime(t, Options{MaxLoadBytes: 100, LoadFunc: func(ctx context.Context, from, module string) (string, []byte, error) {
		asked = append(asked, from+" -> "+module)
		switch module {
		case "ok":
			return "mod:ok", []byte("V = 7\n"), nil
		case "big":
			return "mod:big", []byte(strings.Repeat("#", 200)), nil
		}
		return "", nil, ErrLoadDenied
	}})
	g, err := rt.ExecFile(context.Background(), "job.star", "load(\"ok\", \"V\")\nload(\"ok\", W = \"V\")\nv = V + W\n")
	if err != nil || g["v"] == nil || g["v"].String() != "14" {
		t.Fatalf("%v %v", g, err)
	}
	if len(asked) != 2 || asked[0] != "job.star -> ok" {
		t.Errorf("asked %q", asked)
	}
	if _, err := rt.ExecFile(context.Background(), "job.star", `load("big", "V")`); !errors.Is(err, ErrLoadTooLarge) {
		t.Errorf("big: %v", err)
	}
	if _, err := rt.ExecFile(context.Background(), "job.star", `load("nope", "V")`); !errors.Is(err, ErrLoadDenied) {
		t.Errorf("refused by the function: %v", err)
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
