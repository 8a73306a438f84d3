package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	"github.com/peterh/liner"
	"github.com/spf13/cobra"
	"go.starlark.net/starlark"
	"golang.org/x/term"

	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/runtime"
)

// historyLimit caps the REPL's persistent history.
const historyLimit = 1000

// pasteGap is how quickly a line must follow its prompt to count as part
// of a paste: typed lines take far longer, pasted ones arrive at once.
const pasteGap = 15 * time.Millisecond

func addReplCommands(root *cobra.Command, e *env) {
	var workers int
	var maxSteps uint64
	cmd := &cobra.Command{
		Use:     "repl",
		GroupID: groupTools,
		Short:   "An interactive Starlark session with every AutoNode builtin",
		Long: `Start an interactive session with the same globals as a script: every
builtin (spawn, branch, merge, ...), the accel, host, json, math and time
modules. An expression's value is printed and kept in _.

Keys: Tab completes names, attributes after a dot and :commands; Ctrl-C
cancels the running statement (or clears the line at the prompt); Ctrl-D
exits. History is kept across sessions in ` + historyPathDoc() + `.

Commands: :help [NAME], :load FILE, :threads, :reset, :quit.

When standard input is not a terminal, statements are read and run without
prompts:  echo 'print(summarize())' | autonode repl`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := workersFlag(workers); err != nil {
				return err
			}
			opts := e.runtimeOptions()
			opts.SessionToken, opts.Stdout, opts.Stderr = e.token(), e.stdout, e.stderr
			opts.CPUWorkers, opts.MaxSteps, opts.TopLevelHost = workers, maxSteps, true
			opts.LoadDir = "." // load() reads below the working directory
			r := &repl{e: e, opts: opts}
			return r.run(cmd.Context())
		},
	}
	cmd.Flags().IntVar(&workers, "workers", 0, "CPU worker threads (default: the number of cores)")
	cmd.Flags().Uint64Var(&maxSteps, "max-steps", 0, "Starlark step budget per statement and thread body (default: unlimited)")
	root.AddCommand(cmd)
}

// repl is one interactive session.
type repl struct {
	e    *env
	opts runtime.Options
	rt   *runtime.Runtime

	line     *liner.State  // nil when stdin is not a terminal
	in       *bufio.Reader // used when line is nil
	pushback []string      // lines read ahead, the next one last
	atEOF    bool          // the input ended inside the last statement
	failed   bool          // a statement failed (piped input then exits 1)
	added    []string      // history entries of this session
}

func (r *repl) run(ctx context.Context) (err error) {
	rt, err := runtime.New(r.opts)
	if err != nil {
		return err
	}
	r.rt = rt
	defer func() {
		if cerr := r.rt.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	f, isFile := r.e.stdin.(*os.File)
	if isFile && term.IsTerminal(int(f.Fd())) && liner.TerminalSupported() {
		r.line = liner.NewLiner()
		defer func() {
			r.saveHistory()
			r.line.Close() // restores the terminal
			if p := recover(); p != nil {
				panic(p)
			}
		}()
		r.line.SetCtrlCAborts(true)
		r.line.SetMultiLineMode(true)
		r.line.SetTabCompletionStyle(liner.TabPrints)
		r.line.SetWordCompleter(r.complete)
		r.loadHistory()
		fmt.Fprintf(r.e.stdout, "AutoNode REPL on %s. :help for help, Ctrl-D to exit.\n", r.e.registryName())
	} else {
		r.in = bufio.NewReader(r.e.stdin)
	}
	for {
		src, err := r.readStatement()
		if errors.Is(err, io.EOF) {
			if r.line != nil {
				fmt.Fprintln(r.e.stdout)
				return nil
			}
			if r.failed {
				return failed() // each error was printed where it happened
			}
			return nil
		}
		if err != nil {
			return err
		}
		if strings.TrimSpace(src) == "" {
			continue
		}
		if r.line != nil {
			entry := redactSecrets(strings.TrimRight(src, "\n"))
			r.line.AppendHistory(entry)
			r.added = append(r.added, entry)
		}
		if quit := r.execute(ctx, src); quit {
			return nil
		}
	}
}

// prompt reads one line, from the pushback first; it reports how long the
// line took to arrive.
func (r *repl) prompt(p string) (string, time.Duration, error) {
	if n := len(r.pushback); n > 0 {
		l := r.pushback[n-1]
		r.pushback = r.pushback[:n-1]
		return l, 0, nil
	}
	if r.line == nil {
		l, err := r.in.ReadString('\n')
		if err == io.EOF && l != "" {
			err = nil
		}
		return strings.TrimRight(l, "\r\n"), 0, err
	}
	for {
		start := time.Now()
		l, err := r.line.Prompt(p)
		if errors.Is(err, liner.ErrPromptAborted) {
			// Ctrl-C at the prompt clears the line (and any statement
			// being continued).
			return "", 0, errAborted
		}
		return l, time.Since(start), err
	}
}

var errAborted = errors.New("aborted")

// readStatement reads one complete statement, asking the Starlark parser
// (ParseCompoundStmt with a readline callback, as go.starlark.net's REPL
// does) where it ends: a simple statement ends with its line, a compound
// one (def, if, for, while) or an open bracket continues on "... " lines
// until the parser has seen its end. A blank line ends a block, except
// inside a paste or piped input when the next line is indented: then it is
// part of the block (so pasting a function with blank lines in its body
// works). The terminal tells a paste from typing only by how fast the
// lines arrive (liner has no bracketed paste); piped input always looks
// ahead. The source returned is every line the statement spans, blank
// lines included; a line the parser read past the statement's end is kept
// for the next statement.
func (r *repl) readStatement() (string, error) {
	if r.atEOF && len(r.pushback) == 0 {
		return "", io.EOF
	}
	var (
		lines []string // every line read for this statement
		fed   []int    // for each line given to the parser, its index in lines
		// Why the parser stopped early: the scanner reports a readline
		// error only as text, so the callback records it here.
		aborted, command, eof bool
	)
	next := func() (string, time.Duration, error) {
		p := "... "
		if len(lines) == 0 {
			p = ">>> "
		}
		l, dt, err := r.prompt(p)
		if err == nil {
			lines = append(lines, l)
		}
		return l, dt, err
	}
	feed := func(i int) ([]byte, error) {
		fed = append(fed, i)
		return []byte(lines[i] + "\n"), nil
	}
	readline := func() ([]byte, error) {
		if eof {
			return nil, io.EOF
		}
		l, dt, err := next()
		switch {
		case errors.Is(err, errAborted):
			aborted = true
			return nil, err
		case errors.Is(err, io.EOF):
			eof = true
			if len(fed) == 0 {
				return nil, err
			}
			// The end of input inside a statement ends it, as a blank
			// line does.
			lines = append(lines, "")
			return feed(len(lines) - 1)
		case err != nil:
			return nil, err
		}
		if len(fed) == 0 && strings.HasPrefix(strings.TrimSpace(l), ":") {
			command = true
			return nil, errCommand
		}
		if strings.TrimSpace(l) != "" || len(fed) == 0 || (r.line != nil && dt > pasteGap) {
			return feed(len(lines) - 1)
		}
		// A blank line inside a statement, pasted or piped: it belongs to
		// the block when the next line is indented.
		blank := len(lines) - 1
		nl, _, nerr := next()
		switch {
		case nerr == nil && strings.TrimSpace(nl) != "" && indentOf(nl) > 0:
			return feed(len(lines) - 1)
		case nerr == nil:
			r.pushback = append(r.pushback, nl)
			lines = lines[:len(lines)-1]
		case errors.Is(nerr, errAborted):
			aborted = true
			return nil, nerr
		case errors.Is(nerr, io.EOF):
			eof = true
		}
		return feed(blank)
	}
	f, err := runtime.Dialect().ParseCompoundStmt("<stdin>", readline)
	switch {
	case aborted:
		return "", nil // Ctrl-C: drop the statement
	case command:
		return lines[0], nil
	case eof && len(fed) == 0:
		return "", io.EOF
	}
	if eof {
		r.atEOF = true
	}
	if err != nil {
		// A syntax error: Eval reports it, with the source line.
		return join(lines), nil
	}
	used := len(lines)
	if n := len(f.Stmts); n > 0 {
		_, end := f.Stmts[n-1].Span()
		if k := int(end.Line); k >= 1 && k <= len(fed) {
			used = fed[k-1] + 1
		}
	}
	// Lines the parser read past the statement's end (the scanner needs
	// one to see that a block ended) start the next statement.
	for i := len(lines) - 1; i >= used; i-- {
		if strings.TrimSpace(lines[i]) != "" {
			r.pushback = append(r.pushback, lines[i])
		}
	}
	return join(lines[:used]), nil
}

// errCommand stops the parser at a :command line.
var errCommand = errors.New("a :command")

func join(lines []string) string { return strings.Join(lines, "\n") + "\n" }

func indentOf(l string) int { return len(l) - len(strings.TrimLeft(l, " \t")) }

// execute runs one statement or :command; it reports whether to quit.
func (r *repl) execute(ctx context.Context, src string) bool {
	t := strings.TrimSpace(src)
	if strings.HasPrefix(t, ":") {
		return r.command(ctx, t)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sig := make(chan os.Signal, 1)
	if r.line != nil {
		signal.Notify(sig, os.Interrupt)
		defer signal.Stop(sig)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
			cancel()
		case <-done:
		}
	}()
	v, err := r.rt.Eval(ctx, src)
	close(done)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(r.e.stderr, "interrupted")
		}
		printScriptError(r.e, err, src)
		r.failed = true
		return false
	}
	if v != nil && v != starlark.None {
		fmt.Fprintln(r.e.stdout, pretty(v, ""))
		r.rt.SetGlobal("_", v)
	}
	return false
}

func (r *repl) command(ctx context.Context, t string) bool {
	name, arg, _ := strings.Cut(strings.TrimPrefix(t, ":"), " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "q", "quit", "exit":
		return true
	case "help", "h":
		r.help(arg)
	case "load":
		if arg == "" {
			fmt.Fprintln(r.e.stderr, ":load: give a file, e.g. :load scripts/lineage.star")
			r.failed = true
			return false
		}
		data, err := os.ReadFile(arg)
		if err != nil {
			fmt.Fprintf(r.e.stderr, ":load: %v\n", err)
			r.failed = true
			return false
		}
		if _, err := r.rt.Eval(ctx, string(data)); err != nil {
			printScriptError(r.e, err, string(data))
			r.failed = true
		}
	case "threads":
		err := r.rt.Store().View(func(tx *registry.Tx) error {
			tab := newThreadTable(r.e.stdout, r.e.stderr, r.e.colour(r.e.stdout))
			if err := tx.EachRow(registry.Filter{}, func(row registry.Row, err error) error {
				if err == nil {
					tab.add(row)
				}
				return err
			}); err != nil {
				return err
			}
			return tab.close()
		})
		if err != nil {
			fmt.Fprintf(r.e.stderr, ":threads: %v\n", err)
			r.failed = true
		}
	case "reset":
		if err := r.rt.Close(); err != nil {
			fmt.Fprintf(r.e.stderr, ":reset: %v\n", err)
		}
		rt, err := runtime.New(r.opts)
		if err != nil {
			fmt.Fprintf(r.e.stderr, ":reset: %v\n", err)
			return true
		}
		r.rt = rt
		fmt.Fprintln(r.e.stdout, "session reset: globals cleared")
	default:
		fmt.Fprintf(r.e.stderr, "unknown command :%s; known: %s\n", name, strings.Join(replCommands, " "))
		r.failed = true
	}
	return false
}

var replCommands = []string{":help", ":load", ":threads", ":reset", ":quit"}

func (r *repl) help(name string) {
	docs := builtins.Docs()
	if name != "" {
		d, ok := docs[name]
		if !ok {
			fmt.Fprintf(r.e.stderr, ":help: no builtin %q; :help lists them\n", name)
			return
		}
		fmt.Fprintln(r.e.stdout, d)
		return
	}
	names := make([]string, 0, len(docs))
	for n := range docs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(r.e.stdout, "Builtins (:help NAME for one):")
	for _, n := range names {
		if strings.Contains(n, ".") {
			continue
		}
		first, _, _ := strings.Cut(docs[n], "\n")
		fmt.Fprintf(r.e.stdout, "  %-14s %s\n", n, first)
	}
	fmt.Fprintln(r.e.stdout, "Commands: :help [NAME], :load FILE, :threads, :reset, :quit")
}

var starlarkKeywords = []string{"and", "break", "continue", "def", "elif", "else", "for", "if", "in", "lambda", "load", "not", "or", "pass", "return", "while", "True", "False", "None"}

// complete completes the word before pos: :commands, globals, builtins
// and keywords, and attributes after a dot (accel.ma -> accel.matmul).
func (r *repl) complete(line string, pos int) (head string, completions []string, tail string) {
	head, tail = line[:pos], line[pos:]
	start := len(head)
	for start > 0 {
		c := head[start-1]
		if c == '_' || c == '.' || c == ':' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			start--
			continue
		}
		break
	}
	word := head[start:]
	head = head[:start]
	var cands []string
	switch {
	case strings.HasPrefix(word, ":"):
		cands = replCommands
	case strings.Contains(word, "."):
		i := strings.LastIndexByte(word, '.')
		v := r.lookup(word[:i])
		if ha, ok := v.(starlark.HasAttrs); ok {
			for _, a := range ha.AttrNames() {
				cands = append(cands, word[:i+1]+a)
			}
		}
	default:
		for n := range r.rt.Globals() {
			cands = append(cands, n)
		}
		for n := range r.rt.Predeclared() {
			cands = append(cands, n)
		}
		for n := range starlark.Universe {
			cands = append(cands, n)
		}
		cands = append(cands, starlarkKeywords...)
	}
	sort.Strings(cands)
	for _, c := range cands {
		if strings.HasPrefix(c, word) && (len(completions) == 0 || completions[len(completions)-1] != c) {
			completions = append(completions, c)
		}
	}
	return head, completions, tail
}

// lookup resolves a dotted name (a.b.c) through globals and attributes,
// without calling anything.
func (r *repl) lookup(dotted string) starlark.Value {
	parts := strings.Split(dotted, ".")
	v, ok := r.rt.Globals()[parts[0]]
	if !ok {
		v, ok = r.rt.Predeclared()[parts[0]]
	}
	if !ok {
		v, ok = starlark.Universe[parts[0]]
	}
	if !ok {
		return nil
	}
	for _, p := range parts[1:] {
		ha, ok := v.(starlark.HasAttrs)
		if !ok {
			return nil
		}
		nv, err := ha.Attr(p)
		if err != nil || nv == nil {
			return nil
		}
		v = nv
	}
	return v
}

// historyPath is the REPL history file: $XDG_STATE_HOME/autonode/history
// (~/.local/state/autonode/history) on linux, the Application Support
// folder on macOS.
func historyPath() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "autonode", "history")
	}
	if goruntime.GOOS == "darwin" {
		if d, err := os.UserConfigDir(); err == nil {
			return filepath.Join(d, "autonode", "history")
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".local", "state", "autonode", "history")
}

func historyPathDoc() string {
	if goruntime.GOOS == "darwin" {
		return "~/Library/Application Support/autonode/history"
	}
	return "$XDG_STATE_HOME/autonode/history (~/.local/state/autonode/history)"
}

func (r *repl) loadHistory() {
	if f, err := os.Open(historyPath()); err == nil {
		r.line.ReadHistory(f)
		f.Close()
	}
}

// Token literals never reach the history file: a string given to a name
// or key that holds a token (token=, tok = ..., {"token": ...}), and any
// string that looks like a generated token (32 or more hex digits).
var (
	tokenAssignment = regexp.MustCompile(`(?i)(\b\w*tok\w*\s*=\s*|["']\w*tok\w*["']\s*:\s*)(?:[rb]?"(?:[^"\\\n]|\\.)*"|[rb]?'(?:[^'\\\n]|\\.)*')`)
	tokenLooking    = regexp.MustCompile(`(?i)(["'])[0-9a-f]{32,}(["'])`)
)

// redactSecrets replaces token literals in a REPL entry with "<redacted>".
func redactSecrets(src string) string {
	src = tokenAssignment.ReplaceAllString(src, `${1}"<redacted>"`)
	return tokenLooking.ReplaceAllString(src, `${1}<redacted>${2}`)
}

// saveHistory merges this session's entries into the history file, so
// that sessions running side by side do not erase each other's.
func (r *repl) saveHistory() {
	p := historyPath()
	if p == "" || len(r.added) == 0 {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	var all []string
	if data, err := os.ReadFile(p); err == nil {
		all = strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	}
	for _, a := range r.added {
		all = append(all, strings.Split(a, "\n")...)
	}
	for i, l := range all {
		all[i] = redactSecrets(l) // also entries saved by older versions
	}
	if len(all) > historyLimit {
		all = all[len(all)-historyLimit:]
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(all, "\n")+"\n"), 0o600); err == nil {
		os.Rename(tmp, p)
	}
}

// pretty renders a value for the REPL: short values on one line; long
// dicts, lists and tuples one element per line; a Thread as a block of
// its fields.
func pretty(v starlark.Value, indent string) string {
	s := v.String()
	_, isThread := v.(starlark.HasAttrs)
	isThread = isThread && v.Type() == "Thread"
	if !isThread && len(s)+len(indent) <= 100 {
		return s
	}
	inner := indent + "    "
	var b strings.Builder
	seq := func(open, close string, items []starlark.Value) string {
		b.WriteString(open + "\n")
		for _, it := range items {
			b.WriteString(inner + pretty(it, inner) + ",\n")
		}
		b.WriteString(indent + close)
		return b.String()
	}
	switch x := v.(type) {
	case *starlark.Dict:
		b.WriteString("{\n")
		for _, kv := range x.Items() {
			b.WriteString(inner + kv[0].String() + ": " + pretty(kv[1], inner) + ",\n")
		}
		b.WriteString(indent + "}")
		return b.String()
	case *starlark.List:
		items := make([]starlark.Value, x.Len())
		for i := range items {
			items[i] = x.Index(i)
		}
		return seq("[", "]", items)
	case starlark.Tuple:
		return seq("(", ")", x)
	}
	if ha, ok := v.(starlark.HasAttrs); ok && isThread {
		b.WriteString("Thread(\n")
		for _, name := range ha.AttrNames() {
			av, err := ha.Attr(name)
			if err != nil || av == nil {
				continue
			}
			if _, isFn := av.(*starlark.Builtin); isFn {
				continue
			}
			b.WriteString(inner + name + " = " + pretty(av, inner) + ",\n")
		}
		b.WriteString(indent + ")")
		return b.String()
	}
	return s
}
