package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/autonode/autonode/registry"
)

var fixtureIDs = []string{"1e-05", "1.0", "2.0", "4.5", "10.0", "11.0", "20.0", "21.0", "22.0", "30.0", "123456789.25"}

func TestListTable(t *testing.T) {
	reg := fixture(t)
	r := cli(t, reg, nil, "list").want(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "PROTECTED") {
		t.Fatalf("no header: %s", r)
	}
	for i, id := range fixtureIDs {
		f := strings.Fields(lines[i+1])
		if f[0] != id {
			t.Fatalf("row %d: want id %s, got %q", i, id, lines[i+1])
		}
	}
	// Columns are aligned: every row's STAGE starts where the header's does.
	col := strings.Index(lines[0], "STAGE")
	for _, l := range lines[1 : len(fixtureIDs)+1] {
		if s := l[col:]; !strings.HasPrefix(s, "CORE") && !strings.HasPrefix(s, "BASE") {
			t.Errorf("misaligned row %q", l)
		}
	}
	// Notices go to standard error: standard output is the table.
	if !strings.Contains(r.stderr, "11 unprotected thread(s)") || strings.Contains(r.stdout, "unprotected") {
		t.Errorf("the note about unprotected threads is not on stderr alone:\n%s", r)
	}
}

func TestListFilters(t *testing.T) {
	reg := fixture(t)
	ids := func(args ...string) string {
		t.Helper()
		r := cli(t, reg, nil, append([]string{"list", "--json"}, args...)...).want(t, 0)
		var recs []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
			t.Fatalf("list --json: %v\n%s", err, r.stdout)
		}
		var out []string
		for _, rec := range recs {
			out = append(out, registry.ID(rec["id"].(float64)).Key())
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, strings.Join(fixtureIDs, " ")},
		{[]string{"--stage", "CORE"}, "1.0 4.5 10.0 11.0 20.0 30.0"},
		{[]string{"--stage", "core", "--device", "gpu"}, "4.5"},
		{[]string{"--parent", "1.0"}, "10.0 11.0 20.0 21.0 30.0"},
		{[]string{"--parent", "2"}, "22.0"},
		{[]string{"--name-prefix", "YourCore"}, "1.0 30.0"},
		{[]string{"--status", "unknown", "--stage", "BASE"}, "1e-05 2.0 21.0 22.0 123456789.25"},
		{[]string{"--status", "running"}, ""},
	} {
		if got := ids(c.args...); got != c.want {
			t.Errorf("list %v: got %q, want %q", c.args, got, c.want)
		}
	}
	r := cli(t, reg, nil, "list", "--status", "running").want(t, 0)
	if !strings.Contains(r.stderr, "No threads match") || r.stdout != "" {
		t.Errorf("empty list: %s", r)
	}
}

func TestListJSONHidesTokens(t *testing.T) {
	reg := fixture(t)
	claim(t, reg, tokA, "1.0", "2.0")
	raw, _ := os.ReadFile(reg)
	if !strings.Contains(string(raw), "token_hash") {
		t.Fatalf("claim did not store a hash in %s", reg)
	}
	r := cli(t, reg, nil, "list", "--json").want(t, 0)
	var recs []json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != len(fixtureIDs) {
		t.Fatalf("list --json: %v (%d records)\n%s", err, len(recs), r.stdout)
	}
	noSecrets(t, r.stdout)
	for _, args := range [][]string{{"show", "1.0", "--json"}, {"show", "1.0"}, {"query", "1\\.0"}, {"query", "@values"}} {
		noSecrets(t, cli(t, reg, nil, args...).want(t, 0).stdout)
	}
	table := cli(t, reg, nil, "list").want(t, 0).stdout
	if !regexp.MustCompile(`(?m)^1\.0 .* yes$`).MatchString(table) || !regexp.MustCompile(`(?m)^4\.5 .* no$`).MatchString(table) {
		t.Errorf("PROTECTED column wrong:\n%s", table)
	}
}

func TestShow(t *testing.T) {
	reg := fixture(t)
	r := cli(t, reg, nil, "show", "1").want(t, 0)
	for _, s := range []string{
		"id:           1.0\n",
		"name:         YourCoreThread\n",
		"stage:        CORE\n",
		"ttl:          15.0 s\n",
		`metadata:     {"max_memory_mb":1000}`,
		"unprotected (seed thread without a token; claim it with `autonode claim 1.0`)",
		"history (3):\n  [2026-11-25 17:12:08] Thread 'YourCoreThread' initialized with priority 2.\n",
		"CPU computation failed 'module' object is not callable.",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("show 1.0 lacks %q:\n%s", s, r.stdout)
		}
	}
	r = cli(t, reg, nil, "show", "1e-05", "--json").want(t, 0)
	var rec map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || rec["name"] != "Thread-0-base" {
		t.Fatalf("show --json: %v %v", err, r)
	}
	// A deleted thread is shown from the archive.
	r = cli(t, reg, nil, "show", "3.0").want(t, 0)
	if !strings.Contains(r.stdout, "deleted at:   2026-11-25T17:12:12.118359Z") || !strings.Contains(r.stdout, "autonode restore 3.0") {
		t.Errorf("show of an archived thread:\n%s", r.stdout)
	}
	r = cli(t, reg, nil, "show", "3.0", "--json").want(t, 0)
	var arch struct {
		DeletedAt string         `json:"deleted_at"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &arch); err != nil || arch.Data["name"] != "Thread-3-critical" {
		t.Errorf("show --json of an archived thread: %v\n%s", err, r.stdout)
	}
	r = cli(t, reg, nil, "show", "99").want(t, 1)
	if !strings.Contains(r.stderr, "autonode: thread 99.0: no such thread") {
		t.Errorf("show of a missing thread: %s", r)
	}
	claim(t, reg, tokA, "1.0")
	r = cli(t, reg, nil, "show", "1.0").want(t, 0)
	if !strings.Contains(r.stdout, "protection:   protected by a token") || !strings.Contains(r.stdout, "Claimed: now protected by a token.") {
		t.Errorf("show after claim:\n%s", r.stdout)
	}
}

func TestDeleteRestoreRoundTrip(t *testing.T) {
	reg := fixture(t)
	arch := filepath.Join(filepath.Dir(reg), registry.DefaultArchiveFile)
	claim(t, reg, tokA, "2.0")
	before := snapshot(t, reg)

	// Without the token, and with a wrong one: refused, nothing changes.
	r := cli(t, reg, nil, "delete", "2.0").want(t, 1)
	if !strings.Contains(r.stderr, "no such thread or wrong token") || !strings.Contains(r.stderr, "no token given") {
		t.Errorf("delete without a token: %s", r)
	}
	r = cli(t, reg, map[string]string{envToken: tokB}, "delete", "2.0").want(t, 1)
	if !strings.HasPrefix(r.stderr, "autonode: delete: thread 2.0: no such thread or wrong token\n") {
		t.Errorf("delete with a wrong token: %s", r)
	}
	sameFiles(t, before, snapshot(t, reg))

	// All or nothing, as the builtin: a missing id fails the whole delete.
	r = cli(t, reg, map[string]string{envToken: tokA}, "delete", "2.0", "77", "4.5").want(t, 1)
	if !strings.Contains(r.stderr, "autonode: delete: thread 77.0: no such thread or wrong token; no thread was deleted") || r.stdout != "" {
		t.Errorf("delete with a missing id: %s", r)
	}
	sameFiles(t, before, snapshot(t, reg))
	// The right token (from the environment); an unprotected seed thread
	// needs none.
	r = cli(t, reg, map[string]string{envToken: tokA}, "delete", "2.0", "4.5").want(t, 0)
	for _, id := range []string{"2.0", "4.5"} {
		if !strings.Contains(r.stdout, "Deleted thread "+id+" (archived in "+arch+")\n") {
			t.Errorf("delete %s: %s", id, r)
		}
	}
	// Closing compacted the journal: the seed-shaped files hold the result.
	var archive map[string]struct {
		DeletedAt string          `json:"deleted_at"`
		Data      json.RawMessage `json:"data"`
	}
	data, _ := os.ReadFile(arch)
	if err := json.Unmarshal(data, &archive); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"2.0", "3.0", "4.5"} {
		if a, ok := archive[k]; !ok || !strings.HasSuffix(a.DeletedAt, "Z") || len(a.Data) == 0 {
			t.Errorf("archive entry %s: %+v", k, a)
		}
	}
	var regFile map[string]json.RawMessage
	data, _ = os.ReadFile(reg)
	if err := json.Unmarshal(data, &regFile); err != nil {
		t.Fatal(err)
	}
	if _, ok := regFile["2.0"]; ok || len(regFile) != len(fixtureIDs)-2 {
		t.Errorf("registry still holds 2.0 or lost others: %d entries", len(regFile))
	}

	before = snapshot(t, reg)
	cli(t, reg, nil, "--token", tokB, "restore", "2.0").want(t, 1)
	sameFiles(t, before, snapshot(t, reg))
	r = cli(t, reg, nil, "--token", tokA, "restore", "2.0", "4.5", "3").want(t, 0)
	for _, id := range []string{"2.0", "4.5", "3.0"} {
		if !strings.Contains(r.stdout, "Restored thread "+id) {
			t.Errorf("restore %s: %s", id, r)
		}
	}
	r = cli(t, reg, nil, "show", "2.0").want(t, 0)
	if !strings.Contains(r.stdout, "Restored from archive (deleted at ") || !strings.Contains(r.stdout, "protected by a token") {
		t.Errorf("show after restore:\n%s", r.stdout)
	}
	cli(t, reg, nil, "restore", "2.0").want(t, 1)
	if n := len(strings.Split(strings.TrimSpace(cli(t, reg, nil, "list").stdout), "\n")); n < len(fixtureIDs)+2 {
		t.Errorf("list after restore has %d lines", n)
	}
}

func TestClaim(t *testing.T) {
	reg := fixture(t)
	r := cli(t, reg, nil, "claim", "1.0").want(t, 2)
	if !strings.Contains(r.stderr, "claim needs the token") {
		t.Errorf("claim without a token: %s", r)
	}
	cli(t, reg, nil, "--token", "short", "claim", "1.0").want(t, 2)
	r = cli(t, reg, nil, "--token", tokA, "claim", "1.0", "2.0").want(t, 0)
	if !strings.Contains(r.stdout, "Claimed thread 1.0") || !strings.Contains(r.stdout, "Claimed thread 2.0") {
		t.Errorf("claim: %s", r)
	}
	r = cli(t, reg, nil, "--token", tokB, "claim", "1.0", "4.5").want(t, 1)
	if !strings.Contains(r.stderr, "autonode: claim 1.0: already protected") || !strings.Contains(r.stdout, "Claimed thread 4.5") {
		t.Errorf("claim of a protected thread: %s", r)
	}
	// Only the token now opens 1.0.
	cli(t, reg, nil, "--token", tokB, "delete", "1.0").want(t, 1)
	cli(t, reg, nil, "--token", tokA, "delete", "1.0").want(t, 0)
}

func TestSummarize(t *testing.T) {
	reg := fixture(t)
	r := cli(t, reg, nil, "summarize").want(t, 0)
	for _, s := range []string{
		"Threads:          11\n", "Archived:         1\n", "By stage:         CORE 6, BASE 5\n",
		"By device:        cpu 10, gpu 1\n", "By status:        unknown 11\n",
		"  roots:          1e-05, 1.0, 2.0, 4.5, 123456789.25\n",
		"  most children:  1.0 (5), 2.0 (1), 4.5 (1), 10.0 (1)\n",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("summarize lacks %q:\n%s", s, r.stdout)
		}
	}
	r = cli(t, reg, nil, "summarize", "--json").want(t, 0)
	var s registry.Summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Total != 11 || s.Archived != 1 || s.ByStage["CORE"] != 6 || s.ByDevice["gpu"] != 1 || len(s.Lineage.Roots) != 5 {
		t.Errorf("summarize --json: %+v", s)
	}
	noSecrets(t, r.stdout)
}

func TestQuery(t *testing.T) {
	reg := fixture(t)
	for _, c := range []struct{ path, want string }{
		{`1\.0.name`, `"YourCoreThread"`},
		{`1e-05.metadata.max_memory_mb`, `1`},
		{`123456789\.25.id`, `123456789.25`},
		{`4\.5.metadata.tags`, "[\n  \"a\",\n  \"b\"\n]"},
		{`@values.#(stage=="CORE")#.id`, "[\n  1.0,\n  4.5,\n  10.0,\n  11.0,\n  20.0,\n  30.0\n]"},
		{`@values.#(priority>5)#.name`, "[\n  \"Thread-2-base\"\n]"},
		{`9\.0.name`, `null`},
		{`1.0.name`, `null`}, // unescaped: key "1", then key "0"
	} {
		r := cli(t, reg, nil, "query", c.path).want(t, 0)
		if got := strings.TrimSuffix(r.stdout, "\n"); got != c.want {
			t.Errorf("query %s: got %s, want %s", c.path, got, c.want)
		}
	}
	for _, p := range []string{`1\.0.(`, `@nosuch`, `a..b`, ``} {
		r := cli(t, reg, nil, "query", p).want(t, 1)
		if !strings.HasPrefix(r.stderr, "autonode: invalid query path") {
			t.Errorf("query %q: %s", p, r)
		}
	}
	r := cli(t, reg, nil, "query", "-h").want(t, 0)
	if !strings.Contains(r.stdout, `1\.0.name`) || !strings.Contains(r.stdout, `@values.#(stage=="CORE")#.id`) {
		t.Errorf("query help lacks the escaping examples:\n%s", r.stdout)
	}
}

func TestLineageFixture(t *testing.T) {
	reg := fixture(t)
	r := cli(t, reg, nil, "lineage", "11.0").want(t, 0)
	want := "Lineage of 11.0 Thread-11-core: 1 ancestor(s), 0 descendant(s)\n1.0 YourCoreThread\n└── 11.0 Thread-11-core *\n"
	if r.stdout != want {
		t.Errorf("lineage 11.0:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = cli(t, reg, nil, "lineage", "1.0", "--format", "dot").want(t, 0)
	for _, s := range []string{"digraph lineage {\n", `"1.0" [label="1.0\nYourCoreThread", style="bold"];`, `"1.0" -> "10.0";`, `"1.0" -> "21.0";`} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("dot lacks %q:\n%s", s, r.stdout)
		}
	}
	r = cli(t, reg, nil, "lineage", "1", "--format", "mermaid").want(t, 0)
	checkMermaid(t, r.stdout, 6, 6)
	if !strings.Contains(r.stdout, `n0["1.0<br/>YourCoreThread"]`) {
		t.Errorf("mermaid labels:\n%s", r.stdout)
	}
	// A deleted thread has a lineage too, as show displays it.
	r = cli(t, reg, nil, "lineage", "3.0").want(t, 0)
	if r.stdout != "Lineage of 3.0 Thread-3-critical (deleted): 0 ancestor(s), 0 descendant(s)\n3.0 Thread-3-critical (deleted) *\n" {
		t.Errorf("lineage of a deleted thread:\n%s", r.stdout)
	}
	cli(t, reg, nil, "lineage", "99").want(t, 1)

	// A deleted ancestor stays in the lineage, marked as such.
	cli(t, reg, nil, "delete", "1.0").want(t, 0)
	r = cli(t, reg, nil, "lineage", "10.0").want(t, 0)
	want = "Lineage of 10.0 Thread-10-core: 1 ancestor(s), 1 descendant(s)\n1.0 YourCoreThread (deleted)\n├── 10.0 Thread-10-core *\n│   └── 20.0 Thread-10-core\n└── 20.0 Thread-10-core (shown above)\n"
	if r.stdout != want {
		t.Errorf("lineage 10.0 after deleting 1.0:\n%s\nwant:\n%s", r.stdout, want)
	}
}

// checkMermaid checks the mermaid syntax: node ids without dots, the
// expected numbers of nodes and edges.
func checkMermaid(t *testing.T, out string, nodes, edges int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "graph TD" {
		t.Fatalf("mermaid header: %q", lines[0])
	}
	node := regexp.MustCompile(`^  n\d+\["[^"]*"\]$`)
	edge := regexp.MustCompile(`^  n\d+ --> n\d+$`)
	style := regexp.MustCompile(`^  style n\d+ stroke-width:3px$`)
	n, e := 0, 0
	for _, l := range lines[1:] {
		switch {
		case node.MatchString(l):
			n++
		case edge.MatchString(l):
			e++
		case style.MatchString(l):
		default:
			t.Errorf("bad mermaid line %q", l)
		}
	}
	if n != nodes || e != edges {
		t.Errorf("mermaid: %d nodes, %d edges; want %d, %d:\n%s", n, e, nodes, edges, out)
	}
}

// TestLineageGraph builds a lineage with the registry API: 1 -> 1.5 ->
// 2.5, and a merge of 2.5 and 3 into 4 (two parents).
func TestLineageGraph(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "reg.json")
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx *registry.Tx) error {
		if err := tx.Create(registry.NewThread(1, "CORE"), tokA); err != nil {
			return err
		}
		if err := tx.Create(registry.NewThread(3, "BASE"), tokA); err != nil {
			return err
		}
		if _, err := tx.Branch(1, 1.5, map[string]any{"name": `odd "name" <#>`}, tokA); err != nil {
			return err
		}
		if _, err := tx.Branch(1.5, 2.5, nil, tokA); err != nil {
			return err
		}
		four := registry.ID(4)
		_, err := tx.Merge(2.5, 3, registry.MergeOptions{NewID: &four, Token: tokA, Name: "Merged-2-3"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := cli(t, reg, nil, "lineage", "4").want(t, 0)
	want := `Lineage of 4.0 Merged-2-3: 4 ancestor(s), 0 descendant(s)
1.0 Thread-1-core
└── 1.5 odd "name" <#>
    └── 2.5 Thread-2-core
        └── 4.0 Merged-2-3 *
3.0 Thread-3-base
└── 4.0 Merged-2-3 * (shown above)
`
	if r.stdout != want {
		t.Errorf("lineage 4:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = cli(t, reg, nil, "lineage", "1.5", "--format", "text").want(t, 0)
	if !strings.Contains(r.stdout, "1 ancestor(s), 2 descendant(s)") || strings.Contains(r.stdout, "3.0") {
		t.Errorf("lineage 1.5:\n%s", r.stdout)
	}
	r = cli(t, reg, nil, "lineage", "4", "--format", "mermaid").want(t, 0)
	checkMermaid(t, r.stdout, 5, 4)
	if !strings.Contains(r.stdout, `n1["1.5<br/>odd #34;name#34; #60;#35;#62;"]`) {
		t.Errorf("mermaid escaping:\n%s", r.stdout)
	}
	r = cli(t, reg, nil, "lineage", "4", "--format", "dot").want(t, 0)
	for _, s := range []string{`"1.5" [label="1.5\nodd \"name\" <#>"];`, `"2.5" -> "4.0";`, `"3.0" -> "4.0";`, `"1.0" -> "1.5";`} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("dot lacks %s:\n%s", s, r.stdout)
		}
	}
}

func TestCompactAndFsckJournal(t *testing.T) {
	reg := fixture(t)
	s, err := registry.OpenFile(reg, &registry.FileOptions{NoCompactOnClose: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *registry.Tx) error { _, err := tx.Claim(1, tokA); return err }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		var rep registry.FsckReport
		r := cli(t, reg, nil, "fsck", "--json").want(t, 0)
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.PendingOps
	}
	if n := pending(); n != 1 {
		t.Fatalf("pending before compact: %d", n)
	}
	r := cli(t, reg, nil, "compact").want(t, 0)
	if !strings.HasPrefix(r.stdout, "Compacted "+reg+" (11 thread(s))") {
		t.Errorf("compact: %s", r)
	}
	if n := pending(); n != 0 {
		t.Errorf("pending after compact: %d", n)
	}
	data, _ := os.ReadFile(reg)
	if !strings.Contains(string(data), `"token_hash"`) {
		t.Errorf("compact did not write the claim into %s", reg)
	}
	r = cli(t, reg, nil, "fsck").want(t, 0)
	if !strings.Contains(r.stdout, "OK") || !strings.Contains(r.stdout, "Unprotected: 10 seed thread(s)") {
		t.Errorf("fsck:\n%s", r.stdout)
	}
}

func TestToken(t *testing.T) {
	r := cli(t, "", nil, "token").want(t, 0)
	if !regexp.MustCompile(`^[0-9a-f]{32}\n$`).MatchString(r.stdout) {
		t.Errorf("token stdout: %q", r.stdout)
	}
	tok := strings.TrimSpace(r.stdout)
	if !strings.Contains(r.stderr, "export AUTONODE_TOKEN="+tok) || !strings.Contains(r.stderr, "--token "+tok) {
		t.Errorf("token advice: %s", r.stderr)
	}
	if r2 := cli(t, "", nil, "token"); r2.stdout == r.stdout {
		t.Error("two tokens are equal")
	}
}

func TestRegistryFromEnvironment(t *testing.T) {
	reg := fixture(t)
	r := cli(t, "", map[string]string{registry.EnvRegistry: reg}, "show", "4.5").want(t, 0)
	if !strings.Contains(r.stdout, "Thread-4-core") {
		t.Errorf("AUTONODE_REGISTRY ignored: %s", r)
	}
	// A missing registry is reported, and nothing is created.
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.json")
	// list there has nothing to list: not a failure (kubectl's "No
	// resources found"); show and summarize say the registry is missing.
	r = cli(t, missing, nil, "list").want(t, 0)
	if !strings.Contains(r.stderr, "No threads yet: there is no registry at "+missing) || r.stdout != "" {
		t.Errorf("list without a registry: %s", r)
	}
	if r := cli(t, missing, nil, "list", "--json").want(t, 0); r.stdout != "[]\n" {
		t.Errorf("list --json without a registry: %s", r)
	}
	r = cli(t, missing, nil, "show", "1").want(t, 1)
	if !strings.Contains(r.stderr, "autonode: no registry at "+missing) {
		t.Errorf("missing registry: %s", r)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("list created files: %v", ents)
	}
}

// TestHostileRecords: a hand-edited registry with control characters and a
// record that does not decode gives escaped output and clear errors.
func TestHostileRecords(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "reg.json")
	doc := `{"1.0": {"id": 1.0, "name": "evil\u001b[31mred", "stage": "CORE", "device": "cpu", "history": ["[x] \u001b]0;title\u0007"]}}`
	if err := os.WriteFile(reg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"list"}, {"show", "1.0"}, {"lineage", "1.0"}} {
		r := cli(t, reg, nil, args...).want(t, 0)
		if strings.ContainsAny(r.stdout, "\x1b\x07") || !strings.Contains(r.stdout, `evil\u001b[31mred`) {
			t.Errorf("%v does not escape control characters: %q", args, r.stdout)
		}
	}
	// A stage with a tab (a cell separator) is escaped, and the columns
	// hold.
	doc = `{"1.0": {"id": 1.0, "name": "ok", "stage": "A\tB"}, "10.0": {"id": 10.0, "name": "ok"}}`
	if err := os.WriteFile(reg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, reg, nil, "list").want(t, 0)
	lines := strings.Split(r.stdout, "\n")
	if !strings.Contains(lines[1], `A\u0009B`) || strings.Contains(r.stdout, "\t") || strings.Index(lines[1], "cpu") != strings.Index(lines[2], "cpu") {
		t.Errorf("list with a tab in a stage:\n%s", r.stdout)
	}
	doc = `{"1.0": {"id": 1.0, "name": "ok"}, "2.0": {"id": 2.0, "priority": "high"}}`
	if err := os.WriteFile(reg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r = cli(t, reg, nil, "list").want(t, 1)
	if !strings.Contains(r.stderr, "thread 2.0: invalid value: field priority") || !strings.Contains(r.stderr, "autonode fsck") {
		t.Errorf("list with a damaged record: %s", r)
	}
	cli(t, reg, nil, "show", "1.0").want(t, 0)
	if r := cli(t, reg, nil, "fsck").want(t, 1); !strings.Contains(r.stdout, "error [2.0]") {
		t.Errorf("fsck: %s", r)
	}
}
