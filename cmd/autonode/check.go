package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/runtime"
)

func addCheckCommands(root *cobra.Command, e *env) {
	root.AddCommand(&cobra.Command{
		Use:     "check FILE.star...",
		GroupID: groupScripts,
		Short:   "Check scripts without running them",
		Long: `Parse and resolve scripts against AutoNode's predeclared names and builtin
signatures, without running anything and without a registry: syntax
errors, undefined names, unknown keyword arguments and wrong argument counts
in calls to builtins (spawn, accel.zeros, host.exec, ...), keywords that the
Python seed used (thread_id, thread_name), and load() of a file that does
not exist. In *_test.star files the assert module of autonode test is
defined too. Each finding is printed as file:line:col: message.

Exit status: 0 when every file is clean, 1 on any finding, 2 on a usage
error. Fast enough for a pre-commit hook.`,
		Example: `  autonode check scripts/*.star
  git diff --name-only --cached -- '*.star' | xargs -r autonode check`,
		Args: minArgs("one or more .star files"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			var findings []finding
			for _, file := range args {
				data, err := os.ReadFile(file)
				if err != nil {
					return usageErrorf("check: %v", err)
				}
				findings = append(findings, checkScript(file, data)...)
			}
			for _, f := range findings {
				fmt.Fprintln(e.stdout, f)
			}
			if len(findings) > 0 {
				fmt.Fprintf(e.stderr, "autonode check: %d finding(s) in %d file(s)\n", len(findings), len(args))
				return failed()
			}
			return nil
		}),
	})
}

// finding is one problem autonode check reports.
type finding struct {
	pos syntax.Position
	msg string
}

func (f finding) String() string { return fmt.Sprintf("%s: %s", f.pos, f.msg) }

// scriptNames are the names a script sees besides Starlark's universe:
// every builtin and module of AutoNode, and argv.
func scriptNames() map[string]bool {
	names := map[string]bool{"argv": true}
	for k := range builtins.Predeclared(nil) {
		names[k] = true
	}
	return names
}

// checkScript finds the problems of one script.
func checkScript(file string, data []byte) []finding {
	f, err := runtime.Dialect().Parse(file, data, syntax.RetainComments)
	if err != nil {
		if se, ok := err.(syntax.Error); ok {
			return []finding{{se.Pos, se.Msg}}
		}
		return []finding{{syntax.MakePosition(&file, 1, 1), err.Error()}}
	}
	var out []finding
	names := scriptNames()
	if strings.HasSuffix(file, "_test.star") {
		names["assert"] = true // autonode test predeclares it
	}
	rerr := resolve.File(f, func(n string) bool { return names[n] }, starlark.Universe.Has)
	if list, ok := rerr.(resolve.ErrorList); ok {
		for _, e := range list {
			out = append(out, finding{e.Pos, e.Msg})
		}
	} else if rerr != nil {
		out = append(out, finding{syntax.MakePosition(&file, 1, 1), rerr.Error()})
	}
	sigs := builtins.Signatures()
	dir := filepath.Dir(file)
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.LoadStmt:
			mod := n.ModuleName()
			path := mod
			if !filepath.IsAbs(path) {
				path = filepath.Join(dir, mod)
			}
			if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
				out = append(out, finding{n.Module.TokenPos, fmt.Sprintf("load: %q: no such file (loads resolve relative to the script's directory)", mod)})
			}
		case *syntax.CallExpr:
			if name := builtinCalled(n.Fn); name != "" {
				if s := sigs[name]; s != nil {
					out = append(out, checkCall(name, s, n)...)
				}
			}
		}
		return true
	})
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].pos, out[j].pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return out
}

// builtinCalled names the builtin a call's function expression refers to
// ("spawn", "accel.zeros"), or "" when it is not a predeclared builtin (a
// local or global of the script shadows it).
func builtinCalled(fn syntax.Expr) string {
	switch fn := fn.(type) {
	case *syntax.Ident:
		if b, ok := fn.Binding.(*resolve.Binding); ok && b.Scope == resolve.Predeclared {
			return fn.Name
		}
	case *syntax.DotExpr:
		if id, ok := fn.X.(*syntax.Ident); ok {
			if b, ok := id.Binding.(*resolve.Binding); ok && b.Scope == resolve.Predeclared {
				return id.Name + "." + fn.Name.Name
			}
		}
	}
	return ""
}

// checkCall compares a call's arguments with the builtin's signature.
// Calls that pass *args or **kwargs are checked only for the keywords they
// spell out.
func checkCall(name string, s *builtins.Signature, call *syntax.CallExpr) []finding {
	var out []finding
	positional, spread := 0, false
	given := map[string]bool{}
	for _, arg := range call.Args {
		switch a := arg.(type) {
		case *syntax.BinaryExpr:
			if a.Op != syntax.EQ {
				positional++
				continue
			}
			kw := a.X.(*syntax.Ident)
			given[kw.Name] = true
			if _, ok := s.Param(kw.Name); ok || s.Variadic(true) {
				continue
			}
			msg := fmt.Sprintf("%s: unexpected keyword argument %q", name, kw.Name)
			if note := builtins.SeedKeywordNote(kw.Name); note != "" {
				msg += note
			} else {
				msg += "; the parameters are " + paramList(s)
			}
			out = append(out, finding{kw.NamePos, msg})
		case *syntax.UnaryExpr:
			if a.Op == syntax.STAR || a.Op == syntax.STARSTAR {
				spread = true
				continue
			}
			positional++
		default:
			positional++
		}
	}
	start, _ := call.Span()
	if max := s.MaxPositional(); positional > max && !s.Variadic(false) {
		out = append(out, finding{start, fmt.Sprintf("%s: got %d positional argument(s), want at most %d: %s", name, positional, max, s.Text)})
	}
	if !spread {
		for i, p := range s.Params {
			if p.Required() && !given[p.Name] && !(p.Kind == builtins.Positional && i < positional) {
				out = append(out, finding{start, fmt.Sprintf("%s: missing argument %s: %s", name, p.Name, s.Text)})
			}
		}
	}
	return out
}

func paramList(s *builtins.Signature) string {
	var names []string
	for _, p := range s.Params {
		if p.Kind != builtins.VarArgs && p.Kind != builtins.VarKwargs {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(slices.Compact(names), ", ")
}
