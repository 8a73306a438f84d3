package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/autonode/autonode/registry"
)

func TestUsageErrors(t *testing.T) {
	reg := fixture(t)
	dir := filepath.Dir(reg)
	before := snapshot(t, reg)
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"list", "--bogus"},
		{"list", "extra"},
		{"list", "--stage", "HIGH"},
		{"list", "--device", "tpu"},
		{"list", "--status", "done"},
		{"list", "--parent", "abc"},
		{"list", "--json=maybe"},
		{"show"},
		{"show", "1.0", "2.0"},
		{"show", "x"},
		{"show", "nan"},
		{"show", "inf"},
		{"show", "--", "-1"},
		{"show", "1e300"},
		{"delete"},
		{"delete", "1.0", "oops"},
		{"restore"},
		{"claim", "1.0"},
		{"query"},
		{"query", "a", "b"},
		{"lineage", "1.0", "--format", "png"},
		{"lineage"},
		{"summarize", "x"},
		{"fsck", "x"},
		{"recover", "x"},
		{"compact", "x"},
		{"token", "x"},
		{"--registry"},
	} {
		r := bin(t, dir, nil, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "autonode: ") && len(args) > 0 || r.stdout != "" {
			t.Errorf("%q: want exit 2, an error on stderr and nothing on stdout; got %s", args, r)
		}
		if len(args) > 0 && !strings.Contains(r.stderr, "--help' for usage") {
			t.Errorf("%q: no pointer to --help: %s", args, r.stderr)
		}
	}
	sameFiles(t, before, snapshot(t, reg))
	// "delete 1.0 oops" must not have deleted 1.0.
	if r := bin(t, dir, nil, "show", "1.0"); r.code != 0 {
		t.Errorf("show 1.0 after a refused delete: %s", r)
	}
}

func TestHelp(t *testing.T) {
	dir := t.TempDir()
	r := bin(t, dir, nil, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage:\n  autonode [command]") || !strings.Contains(r.stdout, "Exit status: 0 on success, 1 on failure, 2 on a usage error.") {
		t.Fatalf("autonode --help: %s", r)
	}
	for _, c := range []string{"list", "show", "delete", "restore", "claim", "summarize", "query", "lineage", "fsck", "recover", "compact", "token"} {
		if !strings.Contains(r.stdout, "\n  "+c+" ") {
			t.Errorf("root help does not list %s", c)
		}
		h := cli(t, "", nil, c, "-h").want(t, 0)
		if !strings.Contains(h.stdout, "Examples:\n  ") || !strings.Contains(h.stdout, "--registry PATH") {
			t.Errorf("%s -h:\n%s", c, h.stdout)
		}
	}
	if r := bin(t, dir, nil, "help", "lineage"); r.code != 0 || !strings.Contains(r.stdout, "mermaid") {
		t.Errorf("help lineage: %s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, registry.DefaultRegistryFile)); err == nil {
		t.Error("help created a registry")
	}
}

// TestCorruptRegistry: a registry that does not parse is never changed;
// every command says where it is damaged; fsck finds it; recover salvages
// the intact entries and keeps the original.
func TestCorruptRegistry(t *testing.T) {
	reg := fixture(t)
	dir := filepath.Dir(reg)
	data, err := os.ReadFile(reg)
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Index(string(data), `"20.0"`) + 40 // inside entry 20.0
	bad := data[:cut]
	if err := os.WriteFile(reg, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, reg)
	vars := []string{"AUTONODE_TOKEN=" + tokA}
	for _, args := range [][]string{{"list"}, {"show", "1.0"}, {"delete", "1.0"}, {"restore", "3.0"}, {"claim", "1.0"}, {"summarize"}, {"query", "@keys"}, {"lineage", "1.0"}, {"compact"}} {
		r := bin(t, dir, vars, args...)
		want := "autonode: thread_registry.json does not parse at byte " + itoa(cut) + ":"
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "autonode recover") {
			t.Errorf("%v on a corrupt registry: want exit 1 and %q; got %s", args, want, r)
		}
	}
	sameFiles(t, before, snapshot(t, reg))

	r := bin(t, dir, nil, "fsck")
	if r.code != 1 || !strings.Contains(r.stdout, "thread_registry.json:"+itoa(cut)+": error: does not parse") {
		t.Errorf("fsck: %s", r)
	}
	r = bin(t, dir, nil, "fsck", "--json")
	var rep registry.FsckReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 || rep.OK() || len(rep.Problems) == 0 || rep.Problems[0].Offset != int64(cut) {
		t.Errorf("fsck --json: %v %s", err, r)
	}
	sameFiles(t, before, snapshot(t, reg))

	r = bin(t, dir, nil, "recover")
	if r.code != 0 || !strings.Contains(r.stdout, "Recovered thread_registry.json: 7 thread(s), 1 archived thread(s)") ||
		!strings.Contains(r.stdout, `entry "20.0"`) {
		t.Fatalf("recover: %s", r)
	}
	backups, _ := filepath.Glob(reg + ".recover-*")
	if len(backups) != 1 {
		t.Fatalf("backups: %v", backups)
	}
	kept, _ := os.ReadFile(backups[0])
	if string(kept) != string(bad) {
		t.Error("the dated copy differs from the corrupt original")
	}
	if !strings.Contains(r.stdout, "  "+filepath.Base(backups[0])+"\n") {
		t.Errorf("recover does not name the backup %s:\n%s", backups[0], r.stdout)
	}
	r = bin(t, dir, nil, "list")
	for _, id := range []string{"1e-05", "1.0", "2.0", "4.5", "10.0", "11.0", "123456789.25"} {
		if !strings.Contains(r.stdout, "\n"+id+" ") {
			t.Errorf("list after recover lacks %s:\n%s", id, r.stdout)
		}
	}
	if r.code != 0 {
		t.Errorf("list after recover: %s", r)
	}
	if r := bin(t, dir, nil, "fsck"); r.code != 0 {
		t.Errorf("fsck after recover: %s", r)
	}
}

func TestRecoverNothing(t *testing.T) {
	r := bin(t, t.TempDir(), nil, "recover")
	if r.code != 1 || !strings.Contains(r.stderr, "nothing to recover") {
		t.Errorf("recover without a registry: %s", r)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
