package builtins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/autonode/autonode/registry"
)

// maxConvertDepth bounds the nesting FromStarlark and ToStarlark follow; it
// also stops a list that contains itself.
const maxConvertDepth = 64

// smallArray is the largest accel array whose elements FromStarlark
// includes in its summary.
const smallArray = 64

// FromStarlark converts v into a JSON-compatible Go value: nil, bool,
// int64 (json.Number for integers beyond 64 bits), float64, string, []any
// or map[string]any. Lists and tuples become []any, dicts with string keys
// and structs become map[string]any, a Thread becomes its record, and an
// accel array becomes a summary {"shape": [...], "dtype": "float64",
// "size": n, "sum": s, "mean": m} with "values" (nested lists) when it has
// at most 64 elements. Functions, sets, non-string dict keys, NaN and
// infinities are errors that name the offending value.
func FromStarlark(v starlark.Value) (any, error) {
	return fromStarlark(v, "value", 0)
}

func fromStarlark(v starlark.Value, path string, depth int) (any, error) {
	if depth > maxConvertDepth {
		return nil, fmt.Errorf("%s is nested deeper than %d levels (or contains itself)", path, maxConvertDepth)
	}
	switch x := v.(type) {
	case nil, starlark.NoneType:
		return nil, nil
	case starlark.Bool:
		return bool(x), nil
	case starlark.Int:
		if i, ok := x.Int64(); ok {
			return i, nil
		}
		return json.Number(x.String()), nil
	case starlark.Float:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s is %s, which JSON cannot represent", path, x.String())
		}
		return f, nil
	case starlark.String:
		return string(x), nil
	case *starlark.List, starlark.Tuple:
		items := listItems(v)
		out := make([]any, len(items))
		for i, it := range items {
			g, err := fromStarlark(it, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = g
		}
		return out, nil
	case *starlark.Dict:
		out := make(map[string]any, x.Len())
		for _, kv := range x.Items() {
			k, ok := kv[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("%s has key %s of type %s; JSON objects need string keys", path, repr(kv[0]), kv[0].Type())
			}
			g, err := fromStarlark(kv[1], path+"["+k.String()+"]", depth+1)
			if err != nil {
				return nil, err
			}
			out[string(k)] = g
		}
		return out, nil
	case *Thread:
		return x.record()
	case *Array:
		return x.summary()
	case *starlarkstruct.Struct:
		out := map[string]any{}
		for _, name := range x.AttrNames() {
			a, err := x.Attr(name)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %v", path, name, err)
			}
			g, err := fromStarlark(a, path+"."+name, depth+1)
			if err != nil {
				return nil, err
			}
			out[name] = g
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is a %s (%s), which is not JSON-compatible: use None, bool, int, float, str, list, tuple, dict or struct", path, v.Type(), repr(v))
}

// ToStarlark converts a Go value into a Starlark value: nil, bool, the
// integer and float types, string, json.Number (an int when it is written
// without a fraction or exponent, else a float), json.RawMessage, []any,
// []string, map[string]any (keys in sorted order) and registry.ID (a
// float). Values that are already Starlark values are returned unchanged.
// The result is not frozen.
func ToStarlark(v any) (starlark.Value, error) {
	return toStarlark(v, 0)
}

func toStarlark(v any, depth int) (starlark.Value, error) {
	if depth > maxConvertDepth {
		return nil, fmt.Errorf("value is nested deeper than %d levels", maxConvertDepth)
	}
	switch x := v.(type) {
	case nil:
		return starlark.None, nil
	case starlark.Value:
		return x, nil
	case bool:
		return starlark.Bool(x), nil
	case int:
		return starlark.MakeInt(x), nil
	case int32:
		return starlark.MakeInt64(int64(x)), nil
	case int64:
		return starlark.MakeInt64(x), nil
	case uint:
		return starlark.MakeUint(x), nil
	case uint32:
		return starlark.MakeUint64(uint64(x)), nil
	case uint64:
		return starlark.MakeUint64(x), nil
	case float32:
		return starlark.Float(x), nil
	case float64:
		return starlark.Float(x), nil
	case registry.ID:
		return starlark.Float(x), nil
	case string:
		return starlark.String(x), nil
	case json.Number:
		return numberToStarlark(x)
	case json.RawMessage:
		return rawToStarlark(x)
	case []string:
		out := make([]starlark.Value, len(x))
		for i, s := range x {
			out[i] = starlark.String(s)
		}
		return starlark.NewList(out), nil
	case []registry.ID:
		out := make([]starlark.Value, len(x))
		for i, id := range x {
			out[i] = starlark.Float(id)
		}
		return starlark.NewList(out), nil
	case []any:
		out := make([]starlark.Value, len(x))
		for i, e := range x {
			s, err := toStarlark(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return starlark.NewList(out), nil
	case map[string]any:
		keys := slices.Sorted(maps.Keys(x))
		d := starlark.NewDict(len(x))
		for _, k := range keys {
			s, err := toStarlark(x[k], depth+1)
			if err != nil {
				return nil, err
			}
			if err := d.SetKey(starlark.String(k), s); err != nil {
				return nil, err
			}
		}
		return d, nil
	}
	return nil, fmt.Errorf("cannot convert Go value of type %T to Starlark", v)
}

// numberToStarlark converts a JSON number: an int when written without a
// fraction or exponent, otherwise a float.
func numberToStarlark(n json.Number) (starlark.Value, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, ok := new(big.Int).SetString(s, 10); ok {
			return starlark.MakeBigInt(i), nil
		}
	}
	f, err := n.Float64()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON number %q", s)
	}
	return starlark.Float(f), nil
}

// rawToStarlark decodes raw JSON (numbers kept exact) into Starlark.
func rawToStarlark(raw []byte) (starlark.Value, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return starlark.None, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var g any
	if err := d.Decode(&g); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	return ToStarlark(g)
}

// frozen converts v with ToStarlark and freezes the result.
func frozen(v any) (starlark.Value, error) {
	s, err := ToStarlark(v)
	if err != nil {
		return nil, err
	}
	s.Freeze()
	return s, nil
}
