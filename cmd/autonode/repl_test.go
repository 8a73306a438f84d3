package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// screen is a REPL running on a real pseudo-terminal.
type screen struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startREPL(t *testing.T, dir string, args ...string) *screen {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"repl"}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_STATE_HOME=" + filepath.Join(dir, "state"), "TERM=xterm", "AUTONODE_TOKEN=repl-test-token-0123456789"}
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	s := &screen{t: t, cmd: cmd, tty: tty, done: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				close(s.done)
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		tty.Close()
	})
	s.expect(">>> ", 20*time.Second)
	return s
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// expect waits until the screen, after what was already matched, shows want.
func (s *screen) expect(want string, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if strings.Contains(s.text(), want) {
			s.mu.Lock()
			rest := s.out.String()
			i := strings.Index(rest, want)
			s.out.Reset()
			s.out.WriteString(rest[i+len(want):])
			s.mu.Unlock()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("screen never showed %q within %v; it shows:\n%q", want, within, s.text())
}

// send types keys after a human's pause: the REPL tells typing from
// pasting by how fast lines arrive.
func (s *screen) send(keys string) {
	s.t.Helper()
	time.Sleep(60 * time.Millisecond)
	if _, err := s.tty.Write([]byte(keys)); err != nil {
		s.t.Fatal(err)
	}
}

// exit sends Ctrl-D and returns the exit status.
func (s *screen) exit() int {
	s.t.Helper()
	s.send("\x04")
	errc := make(chan error, 1)
	go func() { errc <- s.cmd.Wait() }()
	select {
	case err := <-errc:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			s.t.Fatal(err)
		}
		return 0
	case <-time.After(15 * time.Second):
		s.t.Fatal("the REPL did not exit on Ctrl-D")
	}
	return -1
}

func TestREPLTerminal(t *testing.T) {
	dir := t.TempDir()
	s := startREPL(t, dir)

	// Multi-line entry: a function with a blank line inside, typed.
	s.send("def double(x):\r")
	s.expect("... ", 5*time.Second)
	s.send("    y = x * 2\r")
	s.expect("... ", 5*time.Second)
	s.send("    return y\r")
	s.expect("... ", 5*time.Second)
	s.send("\r")
	s.expect(">>> ", 5*time.Second)
	s.send("double(21)\r")
	s.expect("42", 5*time.Second)
	s.send("_ + 1\r")
	s.expect("43", 5*time.Second)

	// Open brackets continue.
	s.send("[1,\r")
	s.expect("... ", 5*time.Second)
	s.send(" 2]\r")
	s.expect("[1, 2]", 5*time.Second)

	// A pasted block with a blank line inside it.
	s.send("def tripled(x):\r    y = x * 3\r\r    return y\rtripled(5)\r")
	s.expect("15", 5*time.Second)

	// Tab completion of an attribute after a dot.
	s.send("accel.matm\t")
	s.expect("accel.matmul", 5*time.Second)
	s.send("\x03") // Ctrl-C clears the line
	s.expect(">>> ", 5*time.Second)

	// Ctrl-C cancels a running statement within a second.
	s.send("while True:\r")
	s.expect("... ", 5*time.Second)
	s.send("    pass\r")
	s.expect("... ", 5*time.Second)
	s.send("\r")
	time.Sleep(300 * time.Millisecond)
	s.send("\x03")
	start := time.Now() // send pauses first, like a person; time from the key
	s.expect("interrupted", 5*time.Second)
	s.expect(">>> ", 5*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Ctrl-C took %v to cancel", d)
	}

	// Ctrl-C also cancels a thread body the statement waits on.
	s.send("def spin():\r")
	s.expect("... ", 5*time.Second)
	s.send("    while True:\r")
	s.expect("... ", 5*time.Second)
	s.send("        pass\r")
	s.expect("... ", 5*time.Second)
	s.send("\r")
	s.expect(">>> ", 5*time.Second)
	s.send("spawn(id=77, run=spin, ttl=120, caching=False)\r")
	time.Sleep(500 * time.Millisecond)
	s.send("\x03")
	start = time.Now()
	s.expect("interrupted", 5*time.Second)
	s.expect(">>> ", 5*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Ctrl-C took %v to cancel a waited-on body", d)
	}
	time.Sleep(300 * time.Millisecond)
	s.send("get(77).status\r")
	s.expect(`"cancelled"`, 10*time.Second)

	// Errors print with a backtrace and the session goes on.
	s.send("1 // 0\r")
	s.expect("Traceback", 5*time.Second)
	s.expect(">>> ", 5*time.Second)
	// A syntax error is reported as soon as the parser sees it, without
	// waiting for more lines.
	s.send("def broken(:\r")
	s.expect("got ':'", 5*time.Second)
	s.expect(">>> ", 5*time.Second)
	s.send("tok = \"typed-session-token-secret-0001\"\r")
	s.expect(">>> ", 5*time.Second)
	s.send("x_from_first_session = 7\r")
	s.expect(">>> ", 5*time.Second)
	s.send(":help spawn\r")
	s.expect("spawn(", 5*time.Second)
	if code := s.exit(); code != 0 {
		t.Fatalf("Ctrl-D exit status %d", code)
	}

	// History is shared with the next session.
	s2 := startREPL(t, dir)
	s2.send("\x1b[A") // up arrow: the last entry of the first session
	s2.expect(":help spawn", 5*time.Second)
	s2.send("\x1b[A")
	s2.expect("x_from_first_session = 7", 5*time.Second)
	s2.send("\x03")
	s2.expect(">>> ", 5*time.Second)
	if code := s2.exit(); code != 0 {
		t.Fatalf("second session exit status %d", code)
	}
	hist, err := os.ReadFile(filepath.Join(dir, "state", "autonode", "history"))
	if err != nil || !strings.Contains(string(hist), "double(21)") {
		t.Errorf("history file: %q %v", hist, err)
	}
	if strings.Contains(string(hist), "typed-session-token-secret") || !strings.Contains(string(hist), `tok = "<redacted>"`) {
		t.Errorf("history file keeps a token literal: %q", hist)
	}
}

func TestREPLPiped(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "thread_registry.json")
	var out, errb bytes.Buffer
	src := "x = 20\ndef f(y):\n    z = y + 1\n\n    return z\nprint(f(x) * 2)\n1 // 0\nprint('still here')\n:threads\n"
	e := &env{stdin: strings.NewReader(src), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := runEnv([]string{"--registry", reg, "--token", "piped-token-0123456789", "repl"}, e)
	if code != 1 { // a statement failed (1 // 0): piped input exits 1
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "42\n") || !strings.Contains(out.String(), "still here") {
		t.Errorf("piped output:\n%s", out.String())
	}
	if strings.Contains(out.String(), ">>>") || strings.Contains(out.String(), "\x1b") {
		t.Errorf("piped mode printed prompts or escape codes:\n%q", out.String())
	}
	if !strings.Contains(errb.String(), "division by zero") {
		t.Errorf("error not reported:\n%s", errb.String())
	}
}

// TestREPLPipedStatements checks where the parser ends statements in piped
// input: a block ends at an unindented line even without a blank line, an
// else continues its if, blank lines inside a body or a docstring belong
// to it, and input that ends inside a block runs it. Nothing failed, so
// the exit status is 0.
func TestREPLPipedStatements(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "thread_registry.json")
	src := `def f(x):
    """Adds one.

    Blank lines in a docstring stay."""
    y = x + 1

    return y
print(f(1), "doc")
if f(0) > 5:
    print("big")
else:
    print("small")
print([1,

       2])
for i in range(2):
    print("loop", i)`
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(src), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := runEnv([]string{"--registry", reg, "repl"}, e); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	want := "2 doc\nsmall\n[1, 2]\nloop 0\nloop 1\n"
	if out.String() != want {
		t.Errorf("piped output:\n%q\nwant\n%q\nstderr:\n%s", out.String(), want, errb.String())
	}
}

func TestRedactSecrets(t *testing.T) {
	for in, want := range map[string]string{
		`spawn(run=f, token="0123456789abcdef-secret")`:  `spawn(run=f, token="<redacted>")`,
		`tok = 'my-session-token-123456'`:                `tok = "<redacted>"`,
		`spawn_batch([{"run": f, "token": "abc\"def"}])`: `spawn_batch([{"run": f, "token": "<redacted>"}])`,
		`claim(1, "5f2b8c0e9d1a4b7c8e3f6a2d9c0b1e4f")`:   `claim(1, "<redacted>")`,
		`x = "stock ticker"; print(x)`:                   `x = "stock ticker"; print(x)`,
		`get(1).name`:                                    `get(1).name`,
	} {
		if got := redactSecrets(in); got != want {
			t.Errorf("redactSecrets(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRunProgressBar checks that autonode run draws a progress bar for a
// large spawn_batch on a terminal, and none when standard error is not one.
func TestRunProgressBar(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "batch.star")
	os.WriteFile(script, []byte(`
def slow(i):
    x = 0
    for k in range(20000):
        x += k
    return i
rs = spawn_batch([{"run": slow, "args": (i,), "caching": False} for i in range(60)])
print("done", len(rs))
`), 0o600)
	cmd := exec.Command(binary, "run", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TERM=xterm", "AUTONODE_TOKEN=progress-token-0123456789"}
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := tty.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	cmd.Wait()
	text := out.String()
	if !strings.Contains(text, "spawn_batch") || !strings.Contains(text, "done 60") {
		t.Errorf("no progress bar on a terminal:\n%q", text)
	}
	// The bar ends at 100%, and the script's next line is never glued to
	// it: it starts a line (or overwrites a cleared bar).
	if !strings.Contains(text, "(60/60") {
		t.Errorf("the bar never reached 60/60:\n%q", text)
	}
	if i := strings.Index(text, "done 60"); i > 0 && text[i-1] != '\n' && text[i-1] != '\r' {
		t.Errorf("the script's output is glued to the bar:\n%q", text[max(0, i-80):i+7])
	}
	r := bin(t, dir, []string{"AUTONODE_TOKEN=progress-token-0123456789"}, "run", script).want(t, 0)
	if strings.Contains(r.stderr, "spawn_batch") {
		t.Errorf("a progress bar was drawn without a terminal:\n%s", r.stderr)
	}
}

// TestListColour checks that statuses are coloured on a terminal, and not
// with NO_COLOR or without a terminal.
func TestListColour(t *testing.T) {
	reg := fixture(t)
	dir := filepath.Dir(reg)
	// Seed threads have no status: spawn one that succeeds.
	script := filepath.Join(dir, "s.star")
	os.WriteFile(script, []byte("spawn(id=500, run=lambda: 1)\n"), 0o600)
	bin(t, dir, []string{"AUTONODE_TOKEN=colour-token-0123456789"}, "run", script).want(t, 0)
	show := func(env ...string) string {
		cmd := exec.Command(binary, "list")
		cmd.Dir = dir
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TERM=xterm"}, env...)
		tty, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		defer tty.Close()
		var out bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				break
			}
		}
		cmd.Wait()
		return out.String()
	}
	coloured := show()
	if !strings.Contains(coloured, "\x1b[32msucceeded\x1b[0m") {
		t.Errorf("no colour on a terminal:\n%q", coloured)
	}
	plain := show("NO_COLOR=1")
	if strings.Contains(plain, "\x1b[") || !strings.Contains(plain, "succeeded") {
		t.Errorf("colour despite NO_COLOR:\n%q", plain)
	}
	// The colours take no room: without them the table is the plain one.
	if got := regexp.MustCompile("\x1b\\[[0-9]+m").ReplaceAllString(coloured, ""); got != plain {
		t.Errorf("the coloured table is not the plain one with colours:\n%s\nplain:\n%s", got, plain)
	}
	if out := bin(t, dir, nil, "list").want(t, 0).stdout; strings.Contains(out, "\x1b[") {
		t.Errorf("colour without a terminal:\n%q", out)
	}
}
