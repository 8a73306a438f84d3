package builtins_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/runtime"
)

// fuzzTargets are the callables FuzzBuiltins calls: every builtin, every
// accel and host function, array methods, indexing and operators.
func fuzzTargets() []string {
	pre := builtins.Predeclared(nil)
	var out []string
	for _, name := range sortedNames(pre) {
		switch name {
		case "json", "math", "time":
			continue
		case "accel", "host":
			m := pre[name].(starlark.HasAttrs)
			for _, member := range m.AttrNames() {
				out = append(out, name+"."+member)
			}
			continue
		}
		out = append(out, name)
	}
	arr := "accel.arange(6).reshape(2, 3)"
	for _, meth := range []string{"sum", "reshape", "astype", "transpose", "clip", "dot", "matmul", "tolist", "item", "argmax", "flatten"} {
		out = append(out, arr+"."+meth)
	}
	return append(out, "INDEX", "SLICE", "OP+", "OP-", "OP*", "OP/", "HANDLE")
}

func sortedNames(d starlark.StringDict) []string { return d.Keys() }

// fuzzValues renders the Starlark argument values FuzzBuiltins chooses
// from; the byte stream picks among them. Integers stay small or absurdly
// large (never sizes that would really allocate gigabytes).
type valueGen struct {
	data []byte
	str  string
}

func (g *valueGen) byte() int {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return int(b)
}

var fuzzInts = []string{"0", "1", "2", "3", "-1", "7", "100", "1 << 62", "-(1 << 62)", "1 << 100", "1.5", "2.0", "-0.0",
	"float('nan')", "float('inf')", "-float('inf')", "1e308", "1e-05"}

func (g *valueGen) value(depth int) string {
	switch k := g.byte() % 14; {
	case k == 0:
		return "None"
	case k == 1:
		return []string{"True", "False"}[g.byte()%2]
	case k <= 3:
		return fuzzInts[g.byte()%len(fuzzInts)]
	case k == 4:
		// A string from the fuzzer's own text.
		n := g.byte() % 24
		s := g.str
		if n < len(s) {
			s = s[:n]
		}
		return starlark.String(s).String()
	case k == 5:
		return starlark.String([]string{"BASE", "CORE", "CRITICAL", "cpu", "gpu", "prefer-left", "manual", "float32",
			"left", "1\\.0.name", "@values.#.id", "name", "metadata", ""}[g.byte()%13]).String()
	case k == 6 && depth < 3:
		n := g.byte() % 4
		items := make([]string, n)
		for i := range items {
			items[i] = g.value(depth + 1)
		}
		return "[" + strings.Join(items, ", ") + "]"
	case k == 7 && depth < 3:
		n := g.byte() % 3
		items := make([]string, n)
		for i := range items {
			items[i] = g.value(depth+1) + ","
		}
		return "(" + strings.Join(items, " ") + ")"
	case k == 8 && depth < 3:
		n := g.byte() % 3
		items := make([]string, n)
		for i := range items {
			items[i] = starlark.String([]string{"name", "stage", "priority", "metadata", "x", "run", "id", "ttl"}[g.byte()%8]).String() + ": " + g.value(depth+1)
		}
		return "{" + strings.Join(items, ", ") + "}"
	case k == 9:
		return []string{"lambda: 1", "lambda *a, **k: None", "len", "lambda k, l, r: l", "lambda: fail('boom')"}[g.byte()%5]
	case k == 10:
		return []string{"accel.arange(3)", "accel.ones((2, 2))", "accel.zeros(0)", "accel.array(1.5)", "frozen_array", "accel.ones(3, dtype='float32')"}[g.byte()%6]
	case k == 11:
		return []string{"get(1)", "get(2)", "handle", "token()", "lineage(1)"}[g.byte()%5]
	case k == 12:
		return "1"
	}
	return "2"
}

// FuzzBuiltins calls builtins with arbitrary argument values on the real
// engine: any error is fine, a panic (or an "internal error", a recovered
// one) is a bug.
func FuzzBuiltins(f *testing.F) {
	targets := fuzzTargets()
	for i := range targets {
		f.Add(uint16(i), []byte{1, 2, 3, 4, 5, 6, 7, 8}, "x")
		f.Add(uint16(i), []byte{3, 7, 6, 2, 4, 5, 9, 1, 10, 3, 11, 0}, "spawn")
	}
	f.Add(uint16(0), []byte{}, "")
	ctx := context.Background()
	// The registry grows with every input; start a fresh one now and then
	// so that the run stays fast.
	var rt *runtime.Runtime
	execs := 0
	base := f.TempDir()
	fresh := func() {
		if rt != nil {
			rt.Close()
		}
		dir, err := os.MkdirTemp(base, "registry-")
		if err != nil {
			f.Fatal(err)
		}
		rt, err = runtime.New(runtime.Options{
			RegistryPath: filepath.Join(dir, "thread_registry.json"),
			SessionToken: sessionToken,
			CPUWorkers:   2,
			LoadSampler:  func() (float64, float64, error) { return 10, 10, nil },
		})
		if err != nil {
			f.Fatal(err)
		}
		setup := "spawn(id = 1, run = lambda: 1, caching = False)\nspawn(id = 2, run = lambda: 2, caching = False)\n"
		if _, err := rt.ExecFile(ctx, "setup.star", setup); err != nil {
			f.Fatal(err)
		}
	}
	fresh()
	f.Cleanup(func() { rt.Close() })
	f.Fuzz(func(t *testing.T, which uint16, data []byte, text string) {
		if execs++; execs%200 == 0 {
			fresh()
		}
		g := &valueGen{data: data, str: text}
		target := targets[int(which)%len(targets)]
		nargs := g.byte() % 5
		var args []string
		for range nargs {
			args = append(args, g.value(0))
		}
		if g.byte()%2 == 1 {
			kw := []string{"id", "stage", "device", "token", "run", "args", "kwargs", "metadata", "timeout", "axis",
				"dtype", "seed", "strategy", "resolve", "overrides", "new_id", "inplace", "wait", "dry_run", "ttl", "safe_fields"}
			args = append(args, kw[g.byte()%len(kw)]+" = "+g.value(0))
		}
		call := ""
		switch target {
		case "INDEX":
			call = "accel.arange(6).reshape(2, 3)[" + strings.Join(args, ", ") + "]"
		case "SLICE":
			call = "accel.arange(6)[" + g.value(0) + ":" + g.value(0) + ":" + g.value(0) + "]"
		case "OP+", "OP-", "OP*", "OP/":
			call = "accel.arange(3) " + target[2:] + " " + g.value(0) + "\n_ = " + g.value(0) + " " + target[2:] + " accel.ones(3)"
		case "HANDLE":
			call = "handle.wait(" + strings.Join(args, ", ") + ")"
		default:
			call = target + "(" + strings.Join(args, ", ") + ")"
		}
		src := "frozen_array = accel.ones(3)\n" +
			"handle = spawn(run = lambda: 3, wait = False, caching = False)\n" +
			"def main():\n    return " + strings.ReplaceAll(call, "\n", "\n    ") + "\n" +
			"r = main()\n" +
			"s = str(r)\n"
		if strings.Contains(call, "\n") {
			src = "frozen_array = accel.ones(3)\nhandle = spawn(run = lambda: 3, wait = False, caching = False)\n" + call + "\n"
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := rt.ExecFile(cctx, "fuzz.star", src)
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("%s\n%v", src, err)
		}
	})
}

// TestFuzzValues checks that the generator yields valid Starlark.
func TestFuzzValues(t *testing.T) {
	for i := 0; i < 500; i++ {
		data := []byte(fmt.Sprintf("%08d%v", i*7919, math.Pi*float64(i)))
		g := &valueGen{data: data, str: "abc\"\\\n"}
		v := g.value(0)
		if _, err := (&syntax.FileOptions{}).Parse("v.star", "x = "+v, 0); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
}
