package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autonode/autonode/internal/syncbuf"
	"github.com/autonode/autonode/registry/natsstore/natsnode"
)

// serveNode is an `autonode serve` child process.
type serveNode struct {
	cmd *exec.Cmd
	url string
	out chan string // the rest of its standard output
}

// startServe runs the built binary's serve command and waits for the
// line that names its client URL.
func startServe(t *testing.T, args ...string) *serveNode {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--quiet"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &serveNode{cmd: cmd, out: make(chan string, 100)}
	t.Cleanup(func() {
		if n.cmd.ProcessState == nil {
			n.cmd.Process.Kill()
			n.cmd.Wait()
		}
	})
	urlRe := regexp.MustCompile(`listening on (nats://\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := urlRe.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
			select {
			case n.out <- sc.Text():
			default:
			}
		}
		close(n.out)
	}()
	select {
	case n.url = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("autonode serve printed no URL; stderr:\n%s", stderr.String())
	}
	return n
}

// stop sends sig and wants exit status 0.
func (n *serveNode) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("autonode serve after %v: %v (want exit 0)", sig, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("autonode serve did not stop on %v", sig)
	}
}

// natsEnv is the environment of a command on bucket of the node.
func natsEnv(url, bucket string, more ...string) []string {
	return append([]string{"AUTONODE_NATS=" + url, "AUTONODE_NATS_BUCKET=" + bucket}, more...)
}

// TestScriptsOverNATS runs every example script twice through the real
// binary against `autonode serve`, each on its own bucket, and checks
// that the registry it leaves lists and summarizes exactly as the same
// runs leave a registry file.
func TestScriptsOverNATS(t *testing.T) {
	node := startServe(t, "--dir", filepath.Join(t.TempDir(), "node"), "--listen", "127.0.0.1:0")
	scripts, err := filepath.Glob(filepath.Join("..", "..", "scripts", "*.star"))
	if err != nil || len(scripts) < 5 {
		t.Fatalf("scripts: %v %v", scripts, err)
	}
	for _, script := range scripts {
		if strings.HasSuffix(script, "_test.star") {
			continue // tests for autonode test, not scripts
		}
		name := strings.TrimSuffix(filepath.Base(script), ".star")
		t.Run(name, func(t *testing.T) {
			abs, _ := filepath.Abs(script)
			dir := t.TempDir()
			vars := natsEnv(node.url, "script-"+name)
			for run := 1; run <= 2; run++ {
				bin(t, dir, vars, "run", abs).want(t, 0)
				bin(t, dir, nil, "run", abs).want(t, 0) // the file registry, in dir
			}
			for _, args := range [][]string{{"list"}, {"summarize", "--json"}, {"list", "--status", "succeeded"}} {
				got := bin(t, dir, vars, args...).want(t, 0).stdout
				want := bin(t, dir, nil, args...).want(t, 0).stdout
				if got != want {
					t.Errorf("%v over NATS:\n%s\nover the file:\n%s", args, got, want)
				}
			}
		})
	}
}

// TestServeCommand: the thread commands over NATS, through the binary,
// across a restart of the node; file-only commands are refused; signals
// stop the node with exit status 0.
func TestServeCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "node")
	node := startServe(t, "--dir", data, "--listen", "127.0.0.1:0")
	dir := t.TempDir()
	vars := natsEnv(node.url, "cmds", "AUTONODE_TOKEN="+tokA)
	r := bin(t, dir, vars, "list").want(t, 1)
	if !strings.Contains(r.stderr, "bucket cmds on "+node.url) || !strings.Contains(r.stderr, "no registry in this JetStream bucket") {
		t.Errorf("list on a missing bucket: %s", r)
	}
	script := filepath.Join(dir, "make.star")
	if err := os.WriteFile(script, []byte(`
a = spawn(id = 1.0, stage = "CORE", name = "alpha")
b = branch(1.0, new_id = 1.5)
spawn(id = 2.0, name = "beta")
print(summarize()["total"])
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := bin(t, dir, vars, "run", script).want(t, 0); strings.TrimSpace(r.stdout) != "3" {
		t.Errorf("run: %s", r)
	}
	if r := bin(t, dir, vars, "show", "1.5").want(t, 0); !strings.Contains(r.stdout, "Branched from 1.0 into 1.5.") {
		t.Errorf("show 1.5: %s", r)
	}
	r = bin(t, dir, vars, "delete", "2.0").want(t, 0)
	if !strings.Contains(r.stdout+r.stderr, "the archive (a.* keys) of bucket cmds on "+node.url) {
		t.Errorf("delete: %s", r)
	}
	rename := filepath.Join(dir, "rename.star")
	if err := os.WriteFile(rename, []byte(`rename(1.0, "alpha-2")`), 0o600); err != nil {
		t.Fatal(err)
	}
	bin(t, dir, vars, "run", rename).want(t, 0)
	if r := bin(t, dir, vars, "graph").want(t, 0); !strings.Contains(r.stdout, "1.5") {
		t.Errorf("graph: %s", r)
	}
	// The web view reads the same registry.
	url, ui := startUI(t, "unused", vars, "--addr", "127.0.0.1:0")
	if code, body := httpGet(t, "GET", url+"api/threads"); code != 200 || !strings.Contains(body, `"name":"alpha-2"`) {
		t.Errorf("the web view over NATS: %d %.300s", code, body)
	}
	ui.Process.Signal(syscall.SIGINT)
	if err := ui.Wait(); err != nil {
		t.Errorf("ui after Ctrl-C: %v", err)
	}
	if r := bin(t, dir, vars, "lineage", "1.5").want(t, 0); !strings.Contains(r.stdout, "1.0") {
		t.Errorf("lineage: %s", r)
	}
	if r := bin(t, dir, vars, "query", `@values.#(name=="alpha-2").id`).want(t, 0); strings.TrimSpace(r.stdout) != "1.0" {
		t.Errorf("query: %s", r)
	}
	for _, cmd := range []string{"fsck", "recover"} {
		if r := bin(t, dir, vars, cmd).want(t, 2); !strings.Contains(r.stderr, "JSON registry file") {
			t.Errorf("%s over NATS: %s", cmd, r)
		}
	}
	if r := bin(t, dir, vars, "compact").want(t, 0); !strings.Contains(r.stdout, "keeps no journal") {
		t.Errorf("compact over NATS: %s", r)
	}
	before := bin(t, dir, vars, "list", "--json").want(t, 0).stdout
	node.stop(t, syscall.SIGTERM)
	if r := bin(t, dir, vars, "list"); r.code != 1 || !strings.Contains(r.stderr, "connect to NATS at "+node.url) {
		t.Errorf("list with the node stopped: %s", r)
	}
	// The same data directory and address: everything is still there.
	_, port, _ := strings.Cut(strings.TrimPrefix(node.url, "nats://"), ":")
	again := startServe(t, "--dir", data, "--listen", "127.0.0.1:"+port)
	if after := bin(t, dir, vars, "list", "--json").want(t, 0).stdout; after != before {
		t.Errorf("after a restart:\n%s\nbefore:\n%s", after, before)
	}
	if r := bin(t, dir, vars, "restore", "2.0").want(t, 0); !strings.Contains(r.stdout, "2.0") {
		t.Errorf("restore: %s", r)
	}
	again.stop(t, syscall.SIGINT)
}

func TestServeUsageErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--listen", "127.0.0.1:0"}, "serve needs --dir DIR"},
		{[]string{"serve", "--dir", dir}, "serve needs --listen HOST:PORT"},
		{[]string{"serve", "--dir", dir, "--listen", "nowhere"}, `client address "nowhere" is not HOST:PORT`},
		{[]string{"serve", "--dir", dir, "--listen", "127.0.0.1:99999"}, "port must be a number from 0 to 65535"},
		{[]string{"serve", "--dir", dir, "--listen", "127.0.0.1:0", "--routes", "nats://127.0.0.1:6222"}, "routes need a cluster address"},
		{[]string{"serve", "--dir", dir, "--listen", "127.0.0.1:0", "--cluster-listen", "127.0.0.1:0"}, "needs a fixed port"},
		{[]string{"serve", "--dir", dir, "--listen", "127.0.0.1:0", "--cluster-listen", "127.0.0.1:6222", "--routes", "http://x:1"}, `route "http://x:1" is not nats://HOST:PORT`},
		{[]string{"serve", "--dir", file, "--listen", "127.0.0.1:0"}, "is a file"},
		{[]string{"serve", "--dir", dir, "--listen", "127.0.0.1:0", "extra"}, "takes no arguments"},
	} {
		r := bin(t, dir, nil, c.args...).want(t, 2)
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: stderr %q, want %q", c.args, r.stderr, c.want)
		}
	}
}

// TestREADMEBeyondOneMachine runs the code block of README.md's section
// "Beyond one machine" with bash in a fresh directory, with the binary on
// PATH and the README's ports replaced by free ones, and checks that the
// three nodes formed a cluster that ran the script, served every node's
// clients and stopped with exit status 0 on SIGTERM.
func TestREADMEBeyondOneMachine(t *testing.T) {
	block := readmeBlock(t, "## Beyond one machine")
	ports, err := natsnode.FreePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"4222", "4223", "4224", "6222", "6223", "6224"} {
		block = strings.ReplaceAll(block, "127.0.0.1:"+p, "127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	dir := dirWithScripts(t, "lineage.star")
	// Every node must have stopped with exit status 0.
	const stop = "\nkill $nodes && wait $nodes"
	if !strings.Contains(block, stop) {
		t.Fatalf("the block does not end with %q", stop[1:])
	}
	block = strings.Replace(block, stop, "\nkill $nodes\nfor p in $nodes; do wait $p; done", 1)
	sh := "set -e\n" + block + "echo all-stopped\n"
	cmd := exec.Command("bash", "-c", sh)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + filepath.Dir(binary) + ":" + os.Getenv("PATH"), "HOME=" + dir}
	out, err := runBlock(t, cmd, 4*time.Minute)
	if err != nil {
		t.Fatalf("the README's block: %v\n%s", err, out)
	}
	for _, want := range []string{"lineage-root", "Registry:         bucket autonode on nats://127.0.0.1:" + strconv.Itoa(ports[2]), "Threads:          8", "all-stopped"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		if _, err := os.Stat(filepath.Join(dir, n, "jetstream")); err != nil {
			t.Errorf("node %s kept no data: %v", n, err)
		}
	}
}

// readmeBlock returns the first sh code block of README.md's section
// under the heading line heading ("## Beyond one machine", "### Workers").
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", heading)
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatalf("README section %q has no sh code block", heading)
	}
	return block
}

// dirWithScripts makes a fresh directory holding the named files of
// scripts/, where a README block runs.
func dirWithScripts(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		script, err := os.ReadFile(filepath.Join("..", "..", "scripts", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "scripts", name), script, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runBlock runs cmd (bash running a README block that starts servers and
// workers in the background) and returns its combined output. When it
// has not ended after limit, every process of the block gets SIGQUIT, so
// that each autonode process prints its goroutines into the output
// before it exits: a hang fails the test with the stacks of whatever
// hung, not with the test binary's timeout.
func runBlock(t *testing.T, cmd *exec.Cmd, limit time.Duration) ([]byte, error) {
	t.Helper()
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hung := time.AfterFunc(limit, func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGQUIT)
	})
	err := cmd.Wait()
	if !hung.Stop() {
		return []byte(out.String()), fmt.Errorf("the block was still running after %v, and was sent SIGQUIT (the stacks above): %v", limit, err)
	}
	return []byte(out.String()), err
}
