package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/autonode/autonode/registry"
)

// mdBlock is a fenced code block of README.md.
type mdBlock struct {
	lang, heading, text string
	line                int // of the opening fence
}

// readmeBlocks returns every fenced code block of README.md, in order.
func readmeBlocks(t *testing.T) []mdBlock {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []mdBlock
	var cur *mdBlock
	heading := ""
	for i, l := range strings.Split(string(data), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &mdBlock{lang: strings.TrimPrefix(l, "```"), heading: heading, line: i + 1}
		case cur != nil && l == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		case strings.HasPrefix(l, "#"):
			heading = strings.TrimLeft(l, "# ")
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a code block is never closed", cur.line)
	}
	return out
}

// TestREADME runs every code block of README.md as a reader would, so
// that what the README shows is what AutoNode does:
//
//   - the sh and python blocks, in the order the page gives them, as one
//     session in a fresh directory (python blocks saved as scripts and run
//     with autonode run; the shell keeps what the blocks export), and the
//     whole session a second time on the same registry; then every thread
//     the session made must open with its session token (nothing locked);
//   - the first block, the two commands of a fresh machine, in the
//     repository (its test command is this test's own);
//   - the json blocks: the registry example loads and passes fsck, the
//     run-state example decodes as a record's, the settings parse;
//   - the text blocks: every autonode command they name exists;
//   - the go block: an excerpt, line by line, of examples/embed/main.go,
//     which examples/embed's test builds and runs.
//
// A few lines cannot run here as written; readmeLine says which and why.
func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the README session builds and runs a lot")
	}
	blocks := readmeBlocks(t)
	if len(blocks) < 10 || blocks[0].lang != "sh" {
		t.Fatalf("README.md has %d code blocks, the first in %q", len(blocks), blocks[0].lang)
	}
	var session []mdBlock
	for i, b := range blocks {
		switch b.lang {
		case "sh", "python":
			if i > 0 {
				session = append(session, b)
			}
		case "json":
			checkREADMEJSON(t, b)
		case "text":
			checkREADMECommands(t, b)
		case "go":
			checkREADMEGo(t, b)
		default:
			t.Errorf("README.md:%d: a code block in %q: say sh, python, json, text or go", b.line, b.lang)
		}
	}
	t.Run("first commands", func(t *testing.T) { runREADMEFirst(t, blocks[0]) })
	dir := t.TempDir()
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	if err := os.Symlink(filepath.Join(repo, "scripts"), filepath.Join(dir, "scripts")); err != nil {
		t.Fatal(err)
	}
	script := readmeSession(t, session)
	tokFile := filepath.Join(dir, "session-token")
	script += `printf '%s' "$AUTONODE_TOKEN" > ` + tokFile + "\n"
	for run := 1; run <= 2; run++ {
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"),
			"HOME="+dir, "NO_COLOR=1", "AUTONODE_REGISTRY=", "AUTONODE_NATS=", "AUTONODE_TOKEN=")
		if run == 2 { // the reader's shell keeps the token it exported
			tok, _ := os.ReadFile(tokFile)
			cmd.Env = append(cmd.Env, "AUTONODE_TOKEN="+string(tok))
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README session, run %d: %v\n%s", run, err, out)
		}
		t.Logf("README session, run %d:\n%s", run, out)
	}
	// Nothing is locked: the session token opens every thread the blocks
	// made (delete is all or nothing), and they come back.
	tok, _ := os.ReadFile(tokFile)
	reg := filepath.Join(dir, registry.DefaultRegistryFile)
	var ids []string
	s, err := registry.OpenFile(reg, &registry.FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	s.View(func(tx *registry.Tx) error {
		return tx.EachRow(registry.Filter{}, func(r registry.Row, err error) error {
			if err == nil {
				ids = append(ids, r.ID.Key())
			}
			return err
		})
	})
	s.Close()
	if len(ids) < 100 {
		t.Fatalf("the README session left %d threads", len(ids))
	}
	vars := map[string]string{envToken: string(tok)}
	if r := cli(t, reg, vars, append([]string{"delete"}, ids...)...); r.code != 0 {
		t.Fatalf("the session token does not open every thread of the README session: %s", r)
	}
	cli(t, reg, vars, append([]string{"restore"}, ids...)...).want(t, 0)
}

// runREADMEFirst runs the first block's commands in the repository, as on
// a fresh clone: the main job (twice), and not the test command, which is
// the command running this test.
func runREADMEFirst(t *testing.T, b mdBlock) {
	lines := strings.Split(strings.TrimSpace(b.text), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "go run ") || !strings.HasPrefix(lines[1], "go test ") {
		t.Fatalf("README's first block is not the main job and the test command:\n%s", b.text)
	}
	for run := 1; run <= 2; run++ {
		cmd := exec.Command("bash", "-c", "set -e\n"+lines[0])
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "AUTONODE_REGISTRY=", "AUTONODE_NATS=", "NO_COLOR=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s, run %d: %v\n%s", lines[0], run, err, out)
		}
	}
}

// readmeSession turns the session's blocks into one bash script.
func readmeSession(t *testing.T, blocks []mdBlock) string {
	var b strings.Builder
	b.WriteString("set -eo pipefail\n")
	for i, blk := range blocks {
		fmt.Fprintf(&b, "echo '### README.md:%d (%s)'\n", blk.line, blk.heading)
		switch blk.lang {
		case "python":
			file := fmt.Sprintf("readme-%d.star", blk.line)
			fmt.Fprintf(&b, "cat > %s <<'AUTONODE_README_EOF'\n%sAUTONODE_README_EOF\n", file, blk.text)
			if fails := failsComment.FindStringSubmatch(blk.text); fails != nil {
				// The block ends with a line that fails on purpose.
				want := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(fails[1]), "..."))
				fmt.Fprintf(&b, "if autonode run %s 2> readme-err.txt; then echo 'README.md:%d should fail' >&2; exit 1; fi\n", file, blk.line)
				fmt.Fprintf(&b, "grep -qF %q readme-err.txt || { cat readme-err.txt >&2; exit 1; }\n", want)
			} else {
				fmt.Fprintf(&b, "autonode run %s\n", file)
			}
		case "sh":
			sub := backgroundJob.MatchString(blk.text)
			if sub { // background jobs and what they export stay in the block
				b.WriteString("(\n")
			}
			for _, l := range strings.Split(strings.TrimRight(blk.text, "\n"), "\n") {
				b.WriteString(readmeLine(t, i, l) + "\n")
			}
			if sub {
				b.WriteString(")\n")
			}
		}
	}
	return b.String()
}

// backgroundJob matches a shell line that starts a job in the background.
var backgroundJob = regexp.MustCompile(`(?m)[^&]&( |$)`)

// failsComment marks a python block's line that fails on purpose:
// "# fails: <the start of the error>".
var failsComment = regexp.MustCompile(`#\s*fails:\s*(.+)`)

// readmeLine is how the session runs one shell line of the README: as
// written, except for the few that cannot run so in a test.
func readmeLine(t *testing.T, block int, l string) string {
	cmd, _, _ := strings.Cut(l, " #")
	cmd = strings.TrimSpace(cmd)
	switch {
	case strings.HasPrefix(cmd, "autonode ui"):
		// It serves until Ctrl-C: serve on a free port, fetch the page,
		// then send it SIGINT (it must exit 0).
		port := freePort(t)
		return fmt.Sprintf(`%s --addr 127.0.0.1:%d & ui=$!
for i in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/%d) 2>/dev/null && break; sleep 0.05; done
exec 3<>/dev/tcp/127.0.0.1/%d; printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3; head -1 <&3 | grep -q '200 OK'; exec 3<&-
kill -INT $ui; wait $ui`, cmd, port, port, port)
	case strings.HasPrefix(cmd, "gpu-smoke/gpu-smoke.sh") || strings.HasPrefix(cmd, "./gpu-smoke/gpu-smoke.sh"):
		if _, err := os.Stat("/dev/nvidia0"); err == nil {
			return l // a real GPU: the smoke run must pass
		}
		// No NVIDIA GPU here: the script must say so and exit 1.
		return fmt.Sprintf(`{ %s > readme-gpu.txt 2>&1 && { echo 'the GPU smoke run passed without a GPU' >&2; exit 1; }; test $? = 1 && grep -q 'no CUDA device' readme-gpu.txt; } || { cat readme-gpu.txt >&2; exit 1; }`, cmd)
	case strings.HasPrefix(cmd, "python3 -c 'import numpy"):
		// Only where NumPy is installed (CI installs python3-numpy).
		return "if python3 -c 'import numpy' 2>/dev/null; then " + cmd + "; else echo 'no NumPy: skipped: " + strings.ReplaceAll(cmd, "'", "") + "'; fi"
	}
	return l
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// checkREADMEJSON checks a json block: a registry file loads and passes
// fsck, a fragment with the reserved key decodes as a record's run
// state, anything else is valid JSON.
func checkREADMEJSON(t *testing.T, b mdBlock) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal([]byte(b.text), &v); err != nil {
		t.Errorf("README.md:%d: not JSON: %v", b.line, err)
		return
	}
	switch {
	case v["autonode"] != nil:
		var th registry.Thread
		rec := `{"id": 1.0, "autonode": ` + string(v["autonode"]) + `}`
		if err := json.Unmarshal([]byte(rec), &th); err != nil || th.Status == "" || th.StartedAt == "" {
			t.Errorf("README.md:%d: the run state does not decode as a record's: %v %+v", b.line, err, th)
		}
	case b.heading == "The registry":
		dir := t.TempDir()
		reg := filepath.Join(dir, registry.DefaultRegistryFile)
		os.WriteFile(reg, []byte(b.text), 0o600)
		for id := range v {
			if r := cli(t, reg, nil, "show", id); r.code != 0 {
				t.Errorf("README.md:%d: the example registry: show %s: %s", b.line, id, r)
			}
		}
		if r := cli(t, reg, nil, "fsck"); r.code != 0 {
			t.Errorf("README.md:%d: the example registry: fsck: %s", b.line, r)
		}
	}
}

// checkREADMECommands checks that every autonode command a text block
// names exists.
func checkREADMECommands(t *testing.T, b mdBlock) {
	for _, m := range regexp.MustCompile(`autonode ([a-z][a-z-]*)`).FindAllStringSubmatch(b.text, -1) {
		if r := cli(t, "", nil, "help", m[1]); r.code != 0 {
			t.Errorf("README.md:%d names autonode %s: %s", b.line, m[1], r)
		}
	}
}

// checkREADMEGo checks that the go block is an excerpt of the example
// program: its lines appear there, in order.
func checkREADMEGo(t *testing.T, b mdBlock) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "embed", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var src []string
	for _, l := range strings.Split(string(data), "\n") {
		src = append(src, strings.TrimSpace(l))
	}
	at := 0
	for _, l := range strings.Split(b.text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		i := slices.Index(src[at:], l)
		if i < 0 {
			t.Errorf("README.md:%d: the go block's line %q is not in examples/embed/main.go (after line %d)", b.line, l, at)
			return
		}
		at += i + 1
	}
}
