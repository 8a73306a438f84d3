package builtins

import (
	"errors"
	"fmt"
	"slices"
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
		return slices.Clone([]starlark.Value(x))
	}
	return nil
}

// isNotFound reports whether err means that a thread does not exist.
func isNotFound(err error) bool { return errors.Is(err, registry.ErrNotFound) }

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
