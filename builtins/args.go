package builtins

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/registry"
)

// errorf returns an error whose message starts with the builtin's name.
func errorf(fn, format string, args ...any) error {
	return fmt.Errorf("%s: %s", fn, fmt.Sprintf(format, args...))
}

// wrapErr prefixes err with the builtin's name unless its message already
// starts with it (registry errors often do: "branch: thread 1.0: ...", and
// accel's start with the function's short name: "zeros: ...").
func wrapErr(fn string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.HasPrefix(msg, fn+":") || strings.HasPrefix(msg, fn+" ") {
		return err
	}
	// accel.zeros and an accel error "zeros: ...": say "accel.zeros: ...".
	if i := strings.LastIndexByte(fn, '.'); i >= 0 {
		if short := fn[i+1:]; strings.HasPrefix(msg, short+":") {
			return fmt.Errorf("%s.%w", fn[:i], err)
		}
	}
	return fmt.Errorf("%s: %w", fn, err)
}

// maxReprLen bounds how much of a value an error message quotes.
const maxReprLen = 64

// repr returns v's Starlark repr, shortened for error messages.
func repr(v starlark.Value) string {
	if v == nil {
		return "None"
	}
	s := v.String()
	if len(s) > maxReprLen {
		cut := maxReprLen
		for cut > 0 && s[cut]&0xC0 == 0x80 { // keep UTF-8 whole
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// typeName names v's type for error messages.
func typeName(v starlark.Value) string {
	if v == nil {
		return "NoneType"
	}
	return v.Type()
}

// typeError reports an argument of the wrong type:
// `branch: source: got "x" (string), want a thread id (number)`.
func typeError(fn, param string, v starlark.Value, want string) error {
	return fmt.Errorf("%s: %s: got %s (%s), want %s", fn, param, repr(v), typeName(v), want)
}

// valueError reports an argument of the right type but a wrong value:
// `spawn: stage: got "FAST", want one of CRITICAL, CORE, BASE`.
func valueError(fn, param string, v starlark.Value, want string) error {
	return fmt.Errorf("%s: %s: got %s, want %s", fn, param, repr(v), want)
}

// invalid reports a value that a registry validator refused, in the
// builtins' wording with v's Starlark repr: "spawn: ttl: got 0, want a
// positive number of seconds". The rule and what it allows live in
// registry.
func invalid(fn, param string, v starlark.Value, err error) error {
	var fe *registry.FieldError
	if errors.As(err, &fe) {
		return valueError(fn, param, v, fe.Want)
	}
	return fmt.Errorf("%s: %s: %w", fn, param, err)
}

// isNone reports whether v is absent or None.
func isNone(v starlark.Value) bool { return v == nil || v == starlark.None }

// toID converts a thread id argument: an int or float (1 and 1.0 are the
// same thread), or a Thread or handle value standing for its id.
func toID(fn, param string, v starlark.Value) (registry.ID, error) {
	var f float64
	switch x := v.(type) {
	case starlark.Int:
		if i, ok := x.Int64(); ok && i >= 0 && i <= registry.MaxID {
			f = float64(i)
		} else {
			return 0, valueError(fn, param, v, fmt.Sprintf("a thread id between 0 and %d", int64(registry.MaxID)))
		}
	case starlark.Float:
		f = float64(x)
	case *Thread:
		return x.rec.ID, nil
	case *handleValue:
		return x.h.ID(), nil
	default:
		return 0, typeError(fn, param, v, "a thread id (number)")
	}
	id, err := registry.NewID(f)
	if err != nil {
		return 0, valueError(fn, param, v, fmt.Sprintf("a thread id between 0 and %d", int64(registry.MaxID)))
	}
	return id, nil
}

// toOptID is toID with None meaning "none given".
func toOptID(fn, param string, v starlark.Value) (*registry.ID, error) {
	if isNone(v) {
		return nil, nil
	}
	id, err := toID(fn, param, v)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// toIDList converts a list or tuple of thread ids.
func toIDList(fn, param string, v starlark.Value) ([]registry.ID, error) {
	seq, ok := v.(starlark.Indexable)
	if _, isStr := v.(starlark.String); !ok || isStr || !isListLike(v) {
		return nil, typeError(fn, param, v, "a list of thread ids")
	}
	ids := make([]registry.ID, seq.Len())
	for i := range ids {
		id, err := toID(fn, fmt.Sprintf("%s[%d]", param, i), seq.Index(i))
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// isListLike reports whether v is a list or a tuple.
func isListLike(v starlark.Value) bool {
	switch v.(type) {
	case *starlark.List, starlark.Tuple:
		return true
	}
	return false
}

// listItems returns the elements of a list or tuple.
func listItems(v starlark.Value) []starlark.Value {
	switch x := v.(type) {
	case *starlark.List:
		out := make([]starlark.Value, x.Len())
		for i := range out {
			out[i] = x.Index(i)
		}
		return out
	case starlark.Tuple:
		return append([]starlark.Value(nil), x...)
	}
	return nil
}

// toString converts a str argument.
func toString(fn, param string, v starlark.Value) (string, error) {
	s, ok := v.(starlark.String)
	if !ok {
		return "", typeError(fn, param, v, "a string")
	}
	return string(s), nil
}

// toOptString is toString with None meaning "".
func toOptString(fn, param string, v starlark.Value) (string, error) {
	if isNone(v) {
		return "", nil
	}
	return toString(fn, param, v)
}

// toStringList converts a list or tuple of str.
func toStringList(fn, param string, v starlark.Value) ([]string, error) {
	if !isListLike(v) {
		return nil, typeError(fn, param, v, "a list of strings")
	}
	items := listItems(v)
	out := make([]string, len(items))
	for i, it := range items {
		s, err := toString(fn, fmt.Sprintf("%s[%d]", param, i), it)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// toBool converts a bool argument; truthiness of other values is refused
// so that spawn(sandbox="no") is an error rather than True.
func toBool(fn, param string, v starlark.Value) (bool, error) {
	b, ok := v.(starlark.Bool)
	if !ok {
		return false, typeError(fn, param, v, "True or False")
	}
	return bool(b), nil
}

// toInt converts an int argument.
func toInt(fn, param string, v starlark.Value) (int64, error) {
	i, ok := v.(starlark.Int)
	if !ok {
		return 0, typeError(fn, param, v, "an int")
	}
	n, ok := i.Int64()
	if !ok {
		return 0, valueError(fn, param, v, "an int that fits in 64 bits")
	}
	return n, nil
}

// toFloat converts a number argument (int or float) to float64.
func toFloat(fn, param string, v starlark.Value) (float64, error) {
	switch x := v.(type) {
	case starlark.Int:
		return float64(x.Float()), nil
	case starlark.Float:
		return float64(x), nil
	}
	return 0, typeError(fn, param, v, "a number")
}

// toSeconds converts a duration in seconds: a positive, finite number.
func toSeconds(fn, param string, v starlark.Value) (float64, error) {
	f, err := toFloat(fn, param, v)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0, valueError(fn, param, v, "a positive number of seconds")
	}
	return f, nil
}

// toDict converts a dict argument with string keys into JSON-compatible Go
// values.
func toDict(fn, param string, v starlark.Value) (map[string]any, error) {
	d, ok := v.(*starlark.Dict)
	if !ok {
		return nil, typeError(fn, param, v, "a dict")
	}
	g, err := FromStarlark(d)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", fn, param, err)
	}
	m, _ := g.(map[string]any)
	return m, nil
}

// toOptDict is toDict with None meaning nil.
func toOptDict(fn, param string, v starlark.Value) (map[string]any, error) {
	if isNone(v) {
		return nil, nil
	}
	return toDict(fn, param, v)
}

// oneOf checks a string against a list of allowed values.
func oneOf(fn, param string, v starlark.Value, s string, allowed []string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return valueError(fn, param, v, "one of "+strings.Join(allowed, ", "))
}

// tokenOf resolves a token argument: None means the session token
// (Engine.Token("")), a string is used as given.
func tokenOf(e Engine, fn, param string, v starlark.Value) (string, error) {
	s, err := toOptString(fn, param, v)
	if err != nil {
		return "", err
	}
	tok, err := e.Token(s)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", fn, param, err)
	}
	return tok, nil
}

// isNotFound reports whether err means that a thread does not exist.
func isNotFound(err error) bool { return errors.Is(err, registry.ErrNotFound) }

// refuseSandboxedRead refuses, inside a sandboxed thread body, a read of
// any record but the body's own (id nil: a read of many records): DESIGN
// §6 lets such a body read its own record, nothing else.
func refuseSandboxedRead(e Engine, th *starlark.Thread, fn string, id *registry.ID) error {
	if err := refuseInUpdate(th, fn); err != nil {
		return err
	}
	if rec := e.Running(th); rec != nil && rec.Sandbox && (id == nil || *id != rec.ID) {
		return errorf(fn, "refused: thread %s is sandboxed and may read only its own record (current()); spawn it with sandbox=False", rec.ID)
	}
	return nil
}

// refuseSandboxed refuses a registry change from a sandboxed thread body:
// DESIGN §6 lets such a body compute and read, nothing else. Top-level
// code and unsandboxed bodies pass.
func refuseSandboxed(e Engine, th *starlark.Thread, fn string) error {
	if err := refuseInUpdate(th, fn); err != nil {
		return err
	}
	if rec := e.Running(th); rec != nil && rec.Sandbox {
		return errorf(fn, "refused: thread %s is sandboxed and may not change the registry; spawn it with sandbox=False", rec.ID)
	}
	return nil
}

// admit checks records a lineage operation is about to write against the
// embedder's policy (Engine.CheckRecord), inside its transaction.
func admit(e Engine, ts ...*registry.Thread) error {
	for _, t := range ts {
		if t == nil {
			continue
		}
		if err := e.CheckRecord(t); err != nil {
			return err
		}
	}
	return nil
}
