package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/runtime"
)

func addTestCommands(root *cobra.Command, e *env) {
	var run string
	var verbose bool
	cmd := &cobra.Command{
		Use:     "test [PATH...]",
		GroupID: groupScripts,
		Short:   "Run the test_* functions of *_test.star files",
		Long: `Find *_test.star files (PATH is a file or a directory searched
recursively; default .) and run every top-level function whose name starts
with test_, each on a throw-away registry of its own: the file's top level
runs, then the function. Tests see every builtin and an assert module:

  assert.eq(got, want, msg=None)      assert.ne(a, b, msg=None)
  assert.true(cond, msg=None)         assert.contains(container, x, msg=None)
  assert.fails(fn, pattern)           fn() must fail with an error matching
                                      the regular expression; returns the error text

A test fails at its first failed assertion or error. Each test prints ok or
FAIL with its time; a failure shows where it happened and what the test
printed. The last line counts the tests.

Exit status: 0 when every test passed, 1 when one failed or none was
found, 2 on a usage error.`,
		Example: `  autonode test
  autonode test scripts/ --run 'merge'`,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			var filter *regexp.Regexp
			if run != "" {
				var err error
				if filter, err = regexp.Compile(run); err != nil {
					return usageErrorf("test: -run %q: %v", run, err)
				}
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			files, err := findTestFiles(args)
			if err != nil {
				return usageErrorf("test: %v", err)
			}
			return runStarTests(cmd.Context(), e, args, files, filter, verbose)
		}),
	}
	cmd.Flags().StringVar(&run, "run", "", "run only the tests whose name matches `REGEXP`")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also show what passing tests printed")
	root.AddCommand(cmd)
}

// findTestFiles expands the paths into *_test.star files, sorted.
func findTestFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			if !strings.HasSuffix(p, ".star") {
				return nil, fmt.Errorf("%s is not a .star file", p)
			}
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), "_test.star") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// testNames lists the file's top-level test_* functions in source order.
func testNames(file string, data []byte) ([]string, error) {
	f, err := runtime.Dialect().Parse(file, data, 0)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range f.Stmts {
		if def, ok := s.(*syntax.DefStmt); ok && strings.HasPrefix(def.Name.Name, "test_") {
			names = append(names, def.Name.Name)
		}
	}
	return names, nil
}

func runStarTests(ctx context.Context, e *env, paths, files []string, filter *regexp.Regexp, verbose bool) error {
	passed, failedN := 0, 0
	start := time.Now()
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		names, err := testNames(file, data)
		if err != nil {
			fmt.Fprintf(e.stdout, "FAIL %s\n", file)
			printScriptError(&env{stderr: e.stdout}, err, string(data))
			failedN++
			continue
		}
		for _, name := range names {
			if filter != nil && !filter.MatchString(name) {
				continue
			}
			t0 := time.Now()
			out, err := runStarTest(ctx, file, data, name)
			label := fmt.Sprintf("%s::%s (%.2fs)", file, name, time.Since(t0).Seconds())
			if err == nil {
				passed++
				fmt.Fprintf(e.stdout, "ok   %s\n", label)
				if verbose && out != "" {
					fmt.Fprint(e.stdout, indentLines(out, "    "))
				}
				continue
			}
			failedN++
			fmt.Fprintf(e.stdout, "FAIL %s\n", label)
			fmt.Fprint(e.stdout, indentLines(describeTestFailure(err), "    "))
			if out != "" {
				fmt.Fprintf(e.stdout, "    output:\n%s", indentLines(out, "      "))
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
	if passed+failedN == 0 {
		what := "no test_* functions in *_test.star files under " + strings.Join(paths, ", ")
		if filter != nil {
			what += " matching --run " + filter.String()
		}
		fmt.Fprintf(e.stderr, "autonode test: %s\n", what)
		return failed()
	}
	fmt.Fprintf(e.stdout, "%d passed, %d failed (%.2fs)\n", passed, failedN, time.Since(start).Seconds())
	if failedN > 0 {
		return failed()
	}
	return nil
}

// runStarTest runs one test on a throw-away registry: the file's top
// level, then the function. It returns what the test printed.
func runStarTest(ctx context.Context, file string, data []byte, name string) (string, error) {
	dir, err := os.MkdirTemp("", "autonode-test-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	tok, err := registry.NewToken()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	rt, err := runtime.New(runtime.Options{
		RegistryPath: filepath.Join(dir, registry.DefaultRegistryFile),
		SessionToken: tok,
		Stdout:       &out,
		Stderr:       &out,
		TopLevelHost: true,
	})
	if err != nil {
		return "", err
	}
	rt.AddModule("assert", assertModule())
	_, err = rt.ExecFile(ctx, file, data)
	if err == nil {
		_, err = rt.Call(ctx, name)
	}
	if cerr := rt.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return out.String(), err
}

// describeTestFailure says where a test failed: the failing line of the
// test file and the error, or the whole backtrace when the error did not
// come from the file's own code.
func describeTestFailure(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		stack := ee.CallStack
		for i := len(stack) - 1; i >= 0; i-- {
			if pos := stack[i].Pos; pos.Filename() != "<builtin>" && pos.Line > 0 {
				return fmt.Sprintf("%s: %s\n", pos, ee.Msg)
			}
		}
		return ee.Backtrace() + "\n"
	}
	var b bytes.Buffer
	printScriptError(&env{stderr: &b}, err)
	return b.String()
}

func indentLines(s, indent string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return indent + strings.ReplaceAll(s, "\n", "\n"+indent) + "\n"
}

// assertModule is the assert module of autonode test.
func assertModule() starlark.StringDict {
	fail := func(b *starlark.Builtin, msg starlark.Value, format string, args ...any) error {
		text := fmt.Sprintf(format, args...)
		if s, ok := msg.(starlark.String); ok && s != "" {
			text = string(s) + ": " + text
		}
		return fmt.Errorf("%s: %s", b.Name(), text)
	}
	return starlark.StringDict{
		"eq": starlark.NewBuiltin("assert.eq", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var got, want starlark.Value
			var msg starlark.Value = starlark.None
			if err := starlark.UnpackArgs(b.Name(), args, kwargs, "got", &got, "want", &want, "msg?", &msg); err != nil {
				return nil, err
			}
			eq, err := starlark.Equal(got, want)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", b.Name(), err)
			}
			if !eq {
				return nil, fail(b, msg, "got %s, want %s", got.String(), want.String())
			}
			return starlark.None, nil
		}),
		"ne": starlark.NewBuiltin("assert.ne", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var x, y starlark.Value
			var msg starlark.Value = starlark.None
			if err := starlark.UnpackArgs(b.Name(), args, kwargs, "x", &x, "y", &y, "msg?", &msg); err != nil {
				return nil, err
			}
			eq, err := starlark.Equal(x, y)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", b.Name(), err)
			}
			if eq {
				return nil, fail(b, msg, "both are %s", x.String())
			}
			return starlark.None, nil
		}),
		"true": starlark.NewBuiltin("assert.true", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var cond starlark.Value
			var msg starlark.Value = starlark.None
			if err := starlark.UnpackArgs(b.Name(), args, kwargs, "cond", &cond, "msg?", &msg); err != nil {
				return nil, err
			}
			if !cond.Truth() {
				return nil, fail(b, msg, "%s is not true", cond.String())
			}
			return starlark.None, nil
		}),
		"contains": starlark.NewBuiltin("assert.contains", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var container, x starlark.Value
			var msg starlark.Value = starlark.None
			if err := starlark.UnpackArgs(b.Name(), args, kwargs, "container", &container, "x", &x, "msg?", &msg); err != nil {
				return nil, err
			}
			in, err := starlark.Binary(syntax.IN, x, container)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", b.Name(), err)
			}
			if !in.Truth() {
				return nil, fail(b, msg, "%s is not in %s", x.String(), container.String())
			}
			return starlark.None, nil
		}),
		"fails": starlark.NewBuiltin("assert.fails", func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var fn starlark.Callable
			var pattern string
			if err := starlark.UnpackArgs(b.Name(), args, kwargs, "fn", &fn, "pattern", &pattern); err != nil {
				return nil, err
			}
			re, err := regexp.Compile(pattern)
			if err != nil {
				return nil, fmt.Errorf("%s: pattern %q: %w", b.Name(), pattern, err)
			}
			_, err = starlark.Call(th, fn, nil, nil)
			if err == nil {
				return nil, fmt.Errorf("%s: %s did not fail (want an error matching %q)", b.Name(), fn.Name(), pattern)
			}
			text := err.Error()
			var ee *starlark.EvalError
			if errors.As(err, &ee) {
				text = ee.Msg
			}
			if !re.MatchString(text) {
				return nil, fmt.Errorf("%s: %s failed with %q, which does not match %q", b.Name(), fn.Name(), text, pattern)
			}
			return starlark.String(text), nil
		}),
	}
}
