package main

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestUIRefusesAnOpenAddressWithoutAToken(t *testing.T) {
	reg := fixture(t)
	r := cli(t, reg, nil, "ui", "--addr", "0.0.0.0:0").want(t, exitUsage)
	if !strings.Contains(r.stderr, "not a loopback address") || !strings.Contains(r.stderr, "--token") {
		t.Errorf("stderr: %s", r.stderr)
	}
	r = cli(t, reg, nil, "ui", "--addr", ":8765").want(t, exitUsage)
	if !strings.Contains(r.stderr, "not a loopback address") {
		t.Errorf("empty host: %s", r.stderr)
	}
	r = cli(t, reg, nil, "ui", "--addr", "0.0.0.0:0", "--token", "short").want(t, exitUsage)
	if !strings.Contains(r.stderr, "at least 16") {
		t.Errorf("short token: %s", r.stderr)
	}
	r = cli(t, reg, nil, "ui", "--addr", "8765").want(t, exitUsage)
	if !strings.Contains(r.stderr, "HOST:PORT") {
		t.Errorf("bad address: %s", r.stderr)
	}
	r = cli(t, filepath.Join(t.TempDir(), "none.json"), nil, "ui").want(t, exitFailure)
	if !strings.Contains(r.stderr, "no registry at") {
		t.Errorf("missing registry: %s", r.stderr)
	}
}

// startUI runs `autonode ui` and returns the address it prints.
func startUI(t *testing.T, reg string, env []string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--registry", reg, "ui"}, args...)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := bufio.NewReader(out)
	line, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("autonode ui printed %q: %v", line, err)
	}
	i := strings.Index(line, "http://")
	if !strings.HasPrefix(line, "autonode ui: serving ") || i < 0 {
		t.Fatalf("first line: %q", line)
	}
	go io.Copy(io.Discard, lines)
	return strings.TrimSpace(line[i:]), cmd
}

func httpGet(t *testing.T, method, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestUIServesTheRegistryReadOnly(t *testing.T) {
	reg := fixture(t)
	before := snapshot(t, reg)
	url, cmd := startUI(t, reg, nil, "--addr", "127.0.0.1:0")
	if code, body := httpGet(t, "GET", url+"api/summary"); code != 200 || !strings.Contains(body, `"total":`) {
		t.Fatalf("summary: %d %s", code, body)
	}
	if code, body := httpGet(t, "GET", url); code != 200 || !strings.Contains(body, "/assets/app.js") {
		t.Fatalf("page: %d %.200s", code, body)
	}
	if code, _ := httpGet(t, "POST", url+"api/threads"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", code)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after Ctrl-C: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("autonode ui did not stop on SIGINT")
	}
	sameFiles(t, before, snapshot(t, reg))
}

func TestUIBeyondLoopbackNeedsTheToken(t *testing.T) {
	reg := fixture(t)
	const tok = "0123456789abcdef0123456789abcdef"
	url, _ := startUI(t, reg, []string{envUIToken + "=" + tok}, "--addr", "0.0.0.0:0")
	if !strings.HasSuffix(url, "/?token="+tok) {
		t.Fatalf("printed address %q does not carry the token", url)
	}
	port := url[strings.LastIndex(url[:strings.Index(url, "/?")], ":")+1 : strings.Index(url, "/?")]
	base := "http://127.0.0.1:" + port + "/"
	for _, path := range []string{"", "lineage", "assets/app.js", "api/summary", "api/threads", "api/events"} {
		if code, body := httpGet(t, "GET", base+path); code != 401 || strings.Contains(body, "<script") {
			t.Errorf("GET /%s without the token: %d %.100s", path, code, body)
		}
	}
	if code, _ := httpGet(t, "GET", base+"api/summary", "Authorization", "Bearer "+tok); code != 200 {
		t.Errorf("with the token: %d", code)
	}
}

// TestREADMEWebView runs the code block of README.md's section "The web
// view" as a user would, in a fresh directory: each line is an autonode
// command; the ui line is run on a free port (the README's default port
// may be taken) until its page answers, then stopped with Ctrl-C.
func TestREADMEWebView(t *testing.T) {
	block := readmeBlock(t, "## The web view")
	dir := dirWithScripts(t, "lineage.star")
	ran := 0
	for _, line := range strings.Split(block, "\n") {
		line, _, _ = strings.Cut(line, "#")
		args := strings.Fields(line)
		if len(args) == 0 {
			continue
		}
		if args[0] != "autonode" {
			t.Fatalf("README line %q does not run autonode", line)
		}
		ran++
		if len(args) > 1 && args[1] == "ui" {
			url, cmd := startUI(t, filepath.Join(dir, "thread_registry.json"), nil, append(args[2:], "--addr", "127.0.0.1:0")...)
			if code, body := httpGet(t, "GET", url+"api/threads"); code != 200 || !strings.Contains(body, `"name":"lineage-root"`) {
				t.Errorf("the README's ui: %d %.300s", code, body)
			}
			cmd.Process.Signal(syscall.SIGINT)
			if err := cmd.Wait(); err != nil {
				t.Errorf("ui after Ctrl-C: %v", err)
			}
			continue
		}
		if r := bin(t, dir, nil, args[1:]...); r.code != 0 {
			t.Fatalf("README line %q: %s", line, r)
		}
	}
	if ran != 2 {
		t.Errorf("ran %d README lines, want 2", ran)
	}
}
