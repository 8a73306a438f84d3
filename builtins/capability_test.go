package builtins

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"
)

// TestCapabilities fails when a builtin, module function or method has no
// declared capability (capabilities), and when the table names something
// that does not exist.
func TestCapabilities(t *testing.T) {
	names := map[string]bool{"Handle.wait": true}
	var walk func(prefix string, v starlark.Value)
	walk = func(prefix string, v starlark.Value) {
		switch x := v.(type) {
		case *starlark.Builtin:
			names[x.Name()] = true
		case starlark.HasAttrs:
			for _, m := range x.AttrNames() {
				if mv, err := x.Attr(m); err == nil && mv != nil {
					if b, ok := mv.(*starlark.Builtin); ok && !strings.Contains(b.Name(), ".") {
						names[prefix+"."+b.Name()] = true // go.starlark.net's own names lack the module
						continue
					}
					walk(prefix+"."+m, mv)
				}
			}
		}
	}
	for name, v := range Predeclared(nil) {
		walk(name, v)
	}
	for m := range arrayMethods {
		names["array."+m] = true
	}
	if len(names) < 100 {
		t.Fatalf("found only %d builtins: %v", len(names), names)
	}
	for name := range names {
		if _, ok := capabilityOf(name); !ok {
			t.Errorf("%s declares no capability: add it to capabilities", name)
		}
	}
	for name := range capabilities {
		if !names[name] {
			t.Errorf("capabilities lists %s, which is not a builtin", name)
		}
	}
}

// TestUndeclaredCapability: a builtin made without a declared capability
// is refused as an internal error rather than served.
func TestUndeclaredCapability(t *testing.T) {
	b := newBuiltin(nilEngine{}, "not_declared", func(*starlark.Thread, string, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		return starlark.None, nil
	})
	_, err := starlark.Call(&starlark.Thread{}, b, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "not_declared: internal error: the builtin declares no capability") {
		t.Fatalf("got %v", err)
	}
}
