package builtins

import (
	"fmt"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
)

// TestSignatures checks that every documented function's signature
// parses, and a few of them in detail.
func TestSignatures(t *testing.T) {
	for _, err := range signatureErrors() {
		t.Error(err)
	}
	sigs := Signatures()
	for _, name := range []string{"spawn", "branch", "merge", "accel.zeros", "host.exec", "array.sum", "token", "wait"} {
		if sigs[name] == nil {
			t.Errorf("no signature for %s", name)
		}
	}
	s := sigs["spawn"]
	if s == nil {
		t.Fatal("no spawn signature")
	}
	if p, ok := s.Param("ttl"); !ok || p.Default != "10.0" || p.Required() {
		t.Errorf("spawn ttl: %+v %v", p, ok)
	}
	if p, ok := s.Param("stage"); !ok || p.Default != `"BASE"` {
		t.Errorf("spawn stage: %+v %v", p, ok)
	}
	if s.Returns != "Thread" || s.Variadic(true) || s.Variadic(false) {
		t.Errorf("spawn: returns %q, variadic %v/%v", s.Returns, s.Variadic(false), s.Variadic(true))
	}
	z := sigs["accel.zeros"]
	if p, ok := z.Param("shape"); !ok || !p.Required() || z.MaxPositional() != 2 {
		t.Errorf("accel.zeros: %+v", z)
	}
	for name, s := range sigs {
		if !strings.HasSuffix(s.Text, ")") && s.Returns == "" {
			t.Errorf("%s: %q has neither a closing parenthesis nor a result", name, s.Text)
		}
	}
}

// TestSignaturesMatchCode checks the documented parameters against the
// code that unpacks them: calling a builtin (bound to no engine, so
// nothing runs) with a documented keyword never fails as an unexpected
// keyword, and with an undocumented one always does.
func TestSignaturesMatchCode(t *testing.T) {
	pre := Predeclared(hostOpenEngine{})
	th := &starlark.Thread{Name: "signature-test"}
	lookup := func(name string) starlark.Callable {
		mod, member, dotted := strings.Cut(name, ".")
		v := pre[mod]
		if dotted {
			ha, ok := v.(starlark.HasAttrs)
			if !ok {
				return nil
			}
			if v, _ = ha.Attr(member); v == nil {
				return nil
			}
		}
		fn, _ := v.(starlark.Callable)
		return fn
	}
	// call passes kw=None first, then every required parameter (None, or
	// a one-element list for an array operand), so that an unknown keyword
	// is the first thing wrong.
	call := func(fn starlark.Callable, s *Signature, kw string) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		kwargs := []starlark.Tuple{{starlark.String(kw), starlark.None}}
		for _, p := range s.Params {
			if p.Required() && p.Name != kw {
				var v starlark.Value = starlark.None
				if p.Name == "a" || p.Name == "x" || p.Name == "y" || p.Name == "b" {
					v = starlark.NewList([]starlark.Value{starlark.Float(1)}) // an array operand
				}
				kwargs = append(kwargs, starlark.Tuple{starlark.String(p.Name), v})
			}
		}
		_, err = starlark.Call(th, fn, nil, kwargs)
		return err
	}
	checked := 0
	for name, s := range Signatures() {
		if strings.HasPrefix(name, "array.") {
			continue // methods need an array
		}
		fn := lookup(name)
		if fn == nil {
			t.Errorf("%s is documented with a signature but not predeclared", name)
			continue
		}
		checked++
		for _, p := range s.Params {
			if p.Kind == VarArgs || p.Kind == VarKwargs {
				continue
			}
			if err := call(fn, s, p.Name); err != nil && strings.Contains(err.Error(), "unexpected keyword argument") {
				t.Errorf("%s: documented parameter %s is refused: %v", name, p.Name, err)
			}
		}
		if !s.Variadic(true) {
			if err := call(fn, s, "no_such_parameter"); err == nil || !strings.Contains(err.Error(), "no_such_parameter") {
				t.Errorf("%s(no_such_parameter=None): got %v, want an unexpected keyword error", name, err)
			}
		}
	}
	if checked < 40 {
		t.Errorf("only %d builtins checked", checked)
	}
}

// hostOpenEngine is no engine, except that host and accel functions get
// far enough to unpack their arguments.
type hostOpenEngine struct{ nilEngine }

func (hostOpenEngine) HostAccess(*starlark.Thread, string) error { return nil }

var testExec = accel.New(accel.Options{})

func (hostOpenEngine) Accel(*starlark.Thread) *accel.Exec { return testExec }
