package builtins_test

import (
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/registry"
)

// TestDocs checks that every builtin, module member and array method has
// documentation whose first line is a one-line summary, and that no entry
// documents something that does not exist.
func TestDocs(t *testing.T) {
	docs := builtins.Docs()
	want := map[string]bool{"Thread": true, "Handle": true, "array": true}
	pre := builtins.Predeclared(nil)
	for _, name := range pre.Keys() {
		want[name] = true
		if name == "accel" || name == "host" {
			for _, m := range pre[name].(starlark.HasAttrs).AttrNames() {
				want[name+"."+m] = true
			}
		}
	}
	// Array methods, from a live array's attributes.
	arr := arrayValue(t)
	for _, m := range arr.AttrNames() {
		if v, _ := arr.Attr(m); v != nil {
			if _, ok := v.(*starlark.Builtin); ok {
				want["array."+m] = true
			}
		}
	}
	for name := range want {
		d, ok := docs[name]
		if !ok {
			t.Errorf("no documentation for %s", name)
			continue
		}
		first, rest, _ := strings.Cut(d, "\n")
		if first == "" || len(first) > 80 || !strings.HasSuffix(first, ".") {
			t.Errorf("%s: first line %q is not a one-line summary ending with a period", name, first)
		}
		if rest != "" && !strings.HasPrefix(rest, "\n") {
			t.Errorf("%s: the summary line must be followed by a blank line", name)
		}
	}
	for name := range docs {
		if !want[name] {
			t.Errorf("documentation for %s, which does not exist", name)
		}
	}
}

// arrayValue returns an accel array value made through the module.
func arrayValue(t *testing.T) *builtins.Array {
	t.Helper()
	env := newTestEnv(t, &chunk{options: map[string]bool{}})
	var got starlark.Value
	env.rt.AddBuiltin("capture", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		got = args[0]
		return starlark.None, nil
	})
	if err := env.exec(t.Context(), "a.star", "capture(accel.arange(3))"); err != nil {
		t.Fatal(err)
	}
	a, ok := got.(*builtins.Array)
	if !ok {
		t.Fatalf("accel.arange gave %T", got)
	}
	return a
}

func TestFromStarlark(t *testing.T) {
	d := starlark.NewDict(2)
	d.SetKey(starlark.String("a"), starlark.NewList([]starlark.Value{starlark.MakeInt(1), starlark.Float(2.5), starlark.None}))
	d.SetKey(starlark.String("b"), starlark.Tuple{starlark.True, starlark.String("s")})
	huge := starlark.MakeBigInt(new(big.Int).Lsh(big.NewInt(1), 100))
	s := starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{"x": starlark.MakeInt(3)})
	for _, c := range []struct {
		in   starlark.Value
		want any
	}{
		{starlark.None, nil},
		{starlark.True, true},
		{starlark.MakeInt(-7), int64(-7)},
		{huge, json.Number("1267650600228229401496703205376")},
		{starlark.Float(0.5), 0.5},
		{starlark.String("é"), "é"},
		{d, map[string]any{"a": []any{int64(1), 2.5, nil}, "b": []any{true, "s"}}},
		{s, map[string]any{"x": int64(3)}},
	} {
		got, err := builtins.FromStarlark(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("FromStarlark(%s) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
	self := starlark.NewList(nil)
	self.Append(self)
	bad := starlark.NewDict(1)
	bad.SetKey(starlark.MakeInt(1), starlark.None)
	for _, c := range []struct {
		in   starlark.Value
		want string
	}{
		{starlark.Float(math.NaN()), "JSON cannot represent"},
		{starlark.Float(math.Inf(1)), "JSON cannot represent"},
		{starlark.NewBuiltin("f", nil), "builtin_function_or_method"},
		{starlark.NewSet(0), "not JSON-compatible"},
		{bad, "string keys"},
		{self, "nested deeper"},
	} {
		if _, err := builtins.FromStarlark(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromStarlark(%s): error %v, want one containing %q", c.in, err, c.want)
		}
	}
}

func TestToStarlark(t *testing.T) {
	in := map[string]any{
		"n": json.Number("12"), "f": json.Number("1.5"), "e": json.Number("1e3"),
		"big": json.Number("123456789012345678901234567890"), "l": []any{nil, true, "x", int64(2), 2.5},
		"id": registry.ID(1.5), "raw": json.RawMessage(`{"k":[1,2.0]}`), "s": []string{"a"},
	}
	v, err := builtins.ToStarlark(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"big": 123456789012345678901234567890, "e": 1000.0, "f": 1.5, "id": 1.5, "l": [None, True, "x", 2, 2.5], "n": 12, "raw": {"k": [1, 2.0]}, "s": ["a"]}`
	if v.String() != want {
		t.Errorf("ToStarlark = %s\nwant        %s", v, want)
	}
	back, err := builtins.FromStarlark(v)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := builtins.ToStarlark(back)
	if again.String() != want {
		t.Errorf("round trip = %s", again)
	}
	if _, err := builtins.ToStarlark(make(chan int)); err == nil {
		t.Error("ToStarlark(chan) succeeded")
	}
	if _, err := builtins.ToStarlark(json.Number("x1")); err == nil {
		t.Error("ToStarlark(bad number) succeeded")
	}
}

func TestNewThread(t *testing.T) {
	if v := builtins.NewThread(nil); v != starlark.None {
		t.Errorf("NewThread(nil) = %v", v)
	}
	rec := registry.NewThread(2.5, registry.StageCore)
	rec.Name = "YourCoreThread"
	rec.Status = registry.StatusSucceeded
	rec.Result = json.RawMessage(`{"ok":true}`)
	v := builtins.NewThread(rec)
	if got, want := v.String(), "<Thread 2.5 'YourCoreThread' CORE cpu succeeded>"; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
	th := v.(*builtins.Thread)
	rec.Name = "changed"
	if n, _ := th.Attr("name"); n != starlark.String("YourCoreThread") {
		t.Errorf("the value is not a snapshot: name = %v", n)
	}
	if r, _ := th.Attr("result"); r.String() != `{"ok": True}` {
		t.Errorf("result = %v", r)
	}
	if th.Record().Name != "YourCoreThread" {
		t.Errorf("Record().Name = %q", th.Record().Name)
	}
	for _, name := range th.AttrNames() {
		if a, err := th.Attr(name); a == nil || err != nil {
			t.Errorf("attribute %s: %v, %v", name, a, err)
		}
	}
	h1, _ := th.Hash()
	h2, _ := starlark.Float(2.5).Hash()
	if h1 != h2 {
		t.Error("a Thread does not hash by its id")
	}
}

// TestNilEngine checks that builtins made without an engine report errors
// instead of panicking.
func TestNilEngine(t *testing.T) {
	pre := builtins.Predeclared(nil)
	th := &starlark.Thread{Name: "nil"}
	for _, name := range pre.Keys() {
		fn, ok := pre[name].(starlark.Callable)
		if !ok {
			continue
		}
		_, err := starlark.Call(th, fn, starlark.Tuple{starlark.MakeInt(1)}, nil)
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := starlark.Call(th, pre["get"].(starlark.Callable), starlark.Tuple{starlark.MakeInt(1)}, nil); err == nil || !strings.Contains(err.Error(), "no thread engine") {
		t.Errorf("get with no engine: %v", err)
	}
}
