package builtins

import (
	"fmt"
	"math"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/registry"
)

// Argument types, in the style of go.starlark.net's lib/math
// (floatOrInt): each is a starlark.Unpacker, so that unpack converts and
// checks it. The errors are worded once, here: "fn: param: got X (type),
// want Y" for a value of the wrong type, "fn: param: got X, want Y" for a
// wrong value of the right type.

// unpack is starlark.UnpackArgs with errors worded "fn: param: got X
// (type), want Y" rather than "fn: for parameter param: ...", and with a
// keyword argument the Python seed used named by its AutoNode name.
func unpack(fn string, args starlark.Tuple, kwargs []starlark.Tuple, pairs ...any) error {
	err := starlark.UnpackArgs(fn, args, kwargs, pairs...)
	if err == nil {
		return nil
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, fn+": unexpected keyword argument "); ok {
		name, _, _ := strings.Cut(rest, " ")
		name = strings.Trim(name, `"`)
		if note := SeedKeywordNote(name); note != "" {
			return fmt.Errorf("%s: unexpected keyword argument %q%s", fn, name, note)
		}
		return err
	}
	prefix := fn + ": for parameter "
	if !strings.HasPrefix(msg, prefix) {
		return err
	}
	rest := msg[len(prefix):]
	name, detail, ok := strings.Cut(rest, ": ")
	if !ok {
		return err
	}
	name = strings.Trim(name, `"`) // keyword arguments come quoted
	return argError(fn, name, detail)
}

// arg converts one value as unpack would, for arguments that arrive in a
// container (spawn_batch's specs): param names it in the error.
func arg(fn, param string, v starlark.Value, dst starlark.Unpacker) error {
	if err := dst.Unpack(v); err != nil {
		return argError(fn, param, err.Error())
	}
	return nil
}

func argError(fn, param, detail string) error {
	if strings.HasPrefix(detail, "[") { // a sub-path: shape[1]: got ...
		return fmt.Errorf("%s: %s%s", fn, param, detail)
	}
	return fmt.Errorf("%s: %s: %s", fn, param, detail)
}

// seedKeywords maps keyword arguments the Python seed used to AutoNode's.
var seedKeywords = map[string]string{
	"thread_id":      "id",
	"thread_name":    "name",
	"new_thread_id":  "new_id",
	"overrides_list": "overrides",
	"session_token":  "token",
}

// SeedKeyword returns AutoNode's name for a keyword argument the Python
// seed used (thread_id: id), or false.
func SeedKeyword(name string) (string, bool) {
	alt, ok := seedKeywords[name]
	return alt, ok
}

// SeedKeywordNote is what an "unexpected keyword argument" error adds for
// a keyword argument the Python seed used: " (the Python seed's name;
// AutoNode calls it id)", or "" for any other name. The builtins and
// `autonode check` both say it.
func SeedKeywordNote(name string) string {
	if alt, ok := seedKeywords[name]; ok {
		return fmt.Sprintf(" (the Python seed's name; AutoNode calls it %s)", alt)
	}
	return ""
}

// got reports a value of the wrong type to unpack: "got X (type), want Y".
func got(v starlark.Value, want string) error {
	return fmt.Errorf("got %s (%s), want %s", repr(v), typeName(v), want)
}

// gotValue reports a value of the right type but a wrong value.
func gotValue(v starlark.Value, want string) error {
	return fmt.Errorf("got %s, want %s", repr(v), want)
}

// gotInvalid reports a value that a registry validator refused, with
// what the registry allows.
func gotInvalid(v starlark.Value, err error) error {
	if fe, ok := err.(*registry.FieldError); ok {
		return gotValue(v, fe.Want)
	}
	return err
}

// optional is an argument that may be None: set reports whether it was
// something else, which P's Unpack converted into v.
type optional[T any, P interface {
	*T
	starlark.Unpacker
}] struct {
	v   T
	set bool
}

func (o *optional[T, P]) Unpack(v starlark.Value) error {
	if v == starlark.None {
		var zero T
		o.v, o.set = zero, false
		return nil
	}
	if err := P(&o.v).Unpack(v); err != nil {
		return err
	}
	o.set = true
	return nil
}

// numberArg is an int or float (not a bool).
type numberArg float64

func (p *numberArg) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.Int:
		*p = numberArg(x.Float())
	case starlark.Float:
		*p = numberArg(x)
	default:
		return got(v, "a number")
	}
	return nil
}

// optNumber is a number or None.
type optNumber = optional[numberArg, *numberArg]

// intArg is an int that fits in 64 bits.
type intArg int64

func (p *intArg) Unpack(v starlark.Value) error {
	i, ok := v.(starlark.Int)
	if !ok {
		return got(v, "an int")
	}
	n, ok := i.Int64()
	if !ok {
		return gotValue(v, "an int that fits in 64 bits")
	}
	*p = intArg(n)
	return nil
}

// optInt is an int or None.
type optInt = optional[intArg, *intArg]

// boolArg is True or False (no other value's truth), so that
// spawn(sandbox="no") is an error rather than True.
type boolArg bool

func (p *boolArg) Unpack(v starlark.Value) error {
	b, ok := v.(starlark.Bool)
	if !ok {
		return got(v, "True or False")
	}
	*p = boolArg(b)
	return nil
}

// stringArg is a str.
type stringArg string

func (p *stringArg) Unpack(v starlark.Value) error {
	s, ok := v.(starlark.String)
	if !ok {
		return got(v, "a string")
	}
	*p = stringArg(s)
	return nil
}

// optString is a str or None.
type optString = optional[stringArg, *stringArg]

// stringList is a list or tuple of str.
type stringList []string

func (p *stringList) Unpack(v starlark.Value) error {
	if !isListLike(v) {
		return got(v, "a list of strings")
	}
	items := listItems(v)
	out := make([]string, len(items))
	for i, it := range items {
		var s stringArg
		if err := s.Unpack(it); err != nil {
			return fmt.Errorf("[%d]: %v", i, err)
		}
		out[i] = string(s)
	}
	*p = out
	return nil
}

// optStringList is a list of str or None.
type optStringList = optional[stringList, *stringList]

// idArg is a thread id: an int or float (1 and 1.0 are the same thread),
// or a Thread or handle value standing for its id.
type idArg registry.ID

func (p *idArg) Unpack(v starlark.Value) error {
	var f float64
	switch x := v.(type) {
	case starlark.Int:
		i, ok := x.Int64()
		if !ok || i < 0 || i > registry.MaxID {
			return gotValue(v, fmt.Sprintf("a thread id between 0 and %d", int64(registry.MaxID)))
		}
		f = float64(i)
	case starlark.Float:
		f = float64(x)
	case *Thread:
		*p = idArg(x.rec.ID)
		return nil
	case *handleValue:
		*p = idArg(x.h.ID())
		return nil
	default:
		return got(v, "a thread id (number)")
	}
	id, err := registry.NewID(f)
	if err != nil {
		return gotValue(v, fmt.Sprintf("a thread id between 0 and %d", int64(registry.MaxID)))
	}
	*p = idArg(id)
	return nil
}

// id returns the id as a registry.ID.
func (p idArg) id() registry.ID { return registry.ID(p) }

// optID is a thread id or None.
type optID = optional[idArg, *idArg]

// idPtr returns the id, or nil for None.
func idPtr(o optID) *registry.ID {
	if !o.set {
		return nil
	}
	id := o.v.id()
	return &id
}

// idList is a list or tuple of thread ids.
type idList []registry.ID

func (p *idList) Unpack(v starlark.Value) error {
	if !isListLike(v) {
		return got(v, "a list of thread ids (numbers, Threads or Handles)")
	}
	items := listItems(v)
	ids := make([]registry.ID, len(items))
	for i, it := range items {
		var id idArg
		if err := id.Unpack(it); err != nil {
			return fmt.Errorf("[%d]: %v", i, err)
		}
		ids[i] = id.id()
	}
	*p = ids
	return nil
}

// optIDList is a list of thread ids or None.
type optIDList = optional[idList, *idList]

// dictArg is a dict with string keys, as JSON-compatible Go values.
type dictArg map[string]any

func (p *dictArg) Unpack(v starlark.Value) error {
	d, ok := v.(*starlark.Dict)
	if !ok {
		return got(v, "a dict")
	}
	g, err := FromStarlark(d)
	if err != nil {
		return err
	}
	*p, _ = g.(map[string]any)
	return nil
}

// optDict is a dict or None (nil).
type optDict = optional[dictArg, *dictArg]

// secondsArg is a duration in seconds: a positive, finite number.
type secondsArg float64

func (p *secondsArg) Unpack(v starlark.Value) error {
	var f numberArg
	if err := f.Unpack(v); err != nil {
		return err
	}
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) || f <= 0 {
		return gotValue(v, "a positive number of seconds")
	}
	*p = secondsArg(f)
	return nil
}

// noTimeout is a timeoutArg of None: wait as long as it takes.
const noTimeout = time.Duration(-1)

// timeoutArg is an optional timeout in seconds: None (noTimeout) or a
// non-negative number.
type timeoutArg time.Duration

func (p *timeoutArg) Unpack(v starlark.Value) error {
	if v == starlark.None {
		*p = timeoutArg(noTimeout)
		return nil
	}
	var f numberArg
	if err := f.Unpack(v); err != nil {
		return err
	}
	if f != f || f < 0 || f > 1e9 {
		return gotValue(v, "a non-negative number of seconds")
	}
	*p = timeoutArg(time.Duration(float64(f) * float64(time.Second)))
	return nil
}

// tokenArg is a token argument: a str, or None for the session token. Its
// resolve asks the engine, which checks the token's format.
type tokenArg struct{ s string }

func (p *tokenArg) Unpack(v starlark.Value) error {
	if v == starlark.None {
		p.s = ""
		return nil
	}
	s, ok := v.(starlark.String)
	if !ok {
		return got(v, "a string")
	}
	p.s = string(s)
	return nil
}

// resolve returns the token, or the session token for None
// (Engine.Token); param names the argument in the error.
func (p tokenArg) resolve(e Engine, fn, param string) (string, error) {
	tok, err := e.Token(p.s)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", fn, param, err)
	}
	return tok, nil
}

// unpackIDToken unpacks the (id, token=None) parameters of a builtin
// that acts on one thread, the token resolved (see tokenArg.resolve).
func unpackIDToken(e Engine, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (registry.ID, string, error) {
	var id idArg
	var tokA tokenArg
	if err := unpack(fn, args, kwargs, "id", &id, "token?", &tokA); err != nil {
		return 0, "", err
	}
	tok, err := tokA.resolve(e, fn, "token")
	if err != nil {
		return 0, "", err
	}
	return id.id(), tok, nil
}
