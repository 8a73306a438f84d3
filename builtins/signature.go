package builtins

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"go.starlark.net/syntax"
)

// ParamKind tells how a parameter is passed.
type ParamKind int

// Parameter kinds, in the order a signature lists them.
const (
	Positional  ParamKind = iota // by position or by keyword
	KeywordOnly                  // after a bare * or *args
	VarArgs                      // *args
	VarKwargs                    // **kwargs
)

// Param is one parameter of a builtin, as its documentation writes it.
type Param struct {
	Name string
	// Default is the default value as written ("None", "10.0"); empty
	// for a required parameter.
	Default string
	Kind    ParamKind
}

// Required reports whether a call must pass the parameter.
func (p Param) Required() bool {
	return p.Default == "" && (p.Kind == Positional || p.Kind == KeywordOnly)
}

// Signature is a builtin's call signature: its name as a script writes it
// ("spawn", "accel.zeros", "array.sum"), its parameters and what it
// returns, read from the first paragraph after the summary of its entry
// in Docs. The documentation is the one place signatures are written;
// `autonode check`, `autonode doc --format json` and the editor stubs
// read them here.
type Signature struct {
	Name    string
	Params  []Param
	Returns string // the text after "->", or ""
	// Text is the signature as the documentation writes it.
	Text string
}

// Param returns the parameter called name.
func (s *Signature) Param(name string) (Param, bool) {
	for _, p := range s.Params {
		if p.Name == name && p.Kind != VarArgs && p.Kind != VarKwargs {
			return p, true
		}
	}
	return Param{}, false
}

// Variadic reports whether the signature takes *args (positional) or
// **kwargs (keyword).
func (s *Signature) Variadic(keyword bool) bool {
	for _, p := range s.Params {
		if (keyword && p.Kind == VarKwargs) || (!keyword && p.Kind == VarArgs) {
			return true
		}
	}
	return false
}

// MaxPositional is how many arguments may be passed by position.
func (s *Signature) MaxPositional() int {
	n := 0
	for _, p := range s.Params {
		if p.Kind == Positional {
			n++
		}
	}
	return n
}

var (
	sigOnce sync.Once
	sigs    map[string]*Signature
	sigErrs []error
)

// Signatures returns the signature of every documented function and
// method, keyed like Docs. Modules, types and the go.starlark.net modules
// (json, math, time) have none.
func Signatures() map[string]*Signature {
	sigOnce.Do(parseSignatures)
	return sigs
}

// signatureErrors lists the entries whose signature paragraph does not
// parse (a test keeps it empty).
func signatureErrors() []error {
	sigOnce.Do(parseSignatures)
	return sigErrs
}

func parseSignatures() {
	sigs = map[string]*Signature{}
	names := make([]string, 0, len(docs))
	for name := range docs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		text, ok := signatureText(name, strings.TrimSpace(docs[name]))
		if !ok {
			continue
		}
		s, err := parseSignature(name, text)
		if err != nil {
			sigErrs = append(sigErrs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		sigs[name] = s
	}
}

// signatureText finds the signature paragraph of a doc entry: the
// paragraph after the summary, when it starts with the name as called
// (array methods are written "a.NAME(").
func signatureText(name, doc string) (string, bool) {
	paras := strings.Split(doc, "\n\n")
	if len(paras) < 2 {
		return "", false
	}
	sig := strings.Join(strings.Fields(paras[1]), " ")
	call := name
	if m, ok := strings.CutPrefix(name, "array."); ok {
		call = "a." + m
	}
	if !strings.HasPrefix(sig, call+"(") {
		return "", false
	}
	return sig, true
}

// parseSignature reads "name(a, b=1, *args, c=None, **kw) -> ret" with
// the Starlark parser, as the header of a def.
func parseSignature(name, text string) (*Signature, error) {
	open := strings.IndexByte(text, '(')
	close := matchingParen(text, open)
	if open < 0 || close < 0 {
		return nil, fmt.Errorf("signature %q: want name(params)", text)
	}
	s := &Signature{Name: name, Text: text}
	if rest := strings.TrimSpace(text[close+1:]); rest != "" {
		ret, ok := strings.CutPrefix(rest, "->")
		if !ok {
			return nil, fmt.Errorf("signature %q: want \"-> result\" after the parameters", text)
		}
		s.Returns = strings.TrimSpace(ret)
	}
	f, err := syntax.Parse(name, "def f"+text[open:close+1]+": pass\n", 0)
	if err != nil {
		return nil, fmt.Errorf("signature %q does not parse: %w", text, err)
	}
	def, ok := f.Stmts[0].(*syntax.DefStmt)
	if !ok {
		return nil, fmt.Errorf("signature %q does not parse as parameters", text)
	}
	// The parser checks the parameters; the default values are kept as
	// the documentation writes them.
	pieces := splitTopLevel(text[open+1 : close])
	if len(pieces) != len(def.Params) {
		return nil, fmt.Errorf("signature %q: %d parameters parsed from %d pieces", text, len(def.Params), len(pieces))
	}
	kind := Positional
	for i, p := range def.Params {
		switch p := p.(type) {
		case *syntax.Ident:
			s.Params = append(s.Params, Param{Name: p.Name, Kind: kind})
		case *syntax.BinaryExpr:
			_, def, _ := strings.Cut(pieces[i], "=")
			s.Params = append(s.Params, Param{Name: p.X.(*syntax.Ident).Name, Default: strings.TrimSpace(def), Kind: kind})
		case *syntax.UnaryExpr:
			if p.X == nil { // a bare *: what follows is keyword-only
				kind = KeywordOnly
				continue
			}
			id := p.X.(*syntax.Ident)
			if p.Op == syntax.STAR {
				s.Params = append(s.Params, Param{Name: id.Name, Kind: VarArgs})
				kind = KeywordOnly
			} else {
				s.Params = append(s.Params, Param{Name: id.Name, Kind: VarKwargs})
			}
		}
	}
	return s, nil
}

// matchingParen returns the index of the parenthesis that closes the one
// at open, skipping quoted strings, or -1.
func matchingParen(text string, open int) int {
	if open < 0 {
		return -1
	}
	end := -1
	outsideStrings(text, open, func(i, depth int) bool {
		if c := text[i]; depth == 0 && (c == ')' || c == ']' || c == '}') {
			end = i
			return false
		}
		return true
	})
	return end
}

// outsideStrings calls visit, from start on, for each byte of text that is
// not inside a quoted string, with the bracket depth once that byte is
// counted, until visit returns false.
func outsideStrings(text string, start int, visit func(i, depth int) bool) {
	depth := 0
	var quote byte
	for i := start; i < len(text); i++ {
		c := text[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		case c == '"' || c == '\'':
			quote = c
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		}
		if !visit(i, depth) {
			return
		}
	}
}

// splitTopLevel splits a parameter list at the commas outside brackets
// and strings.
func splitTopLevel(params string) []string {
	var out []string
	start := 0
	outsideStrings(params, 0, func(i, depth int) bool {
		if params[i] == ',' && depth == 0 {
			out = append(out, strings.TrimSpace(params[start:i]))
			start = i + 1
		}
		return true
	})
	if last := strings.TrimSpace(params[start:]); last != "" {
		out = append(out, last)
	}
	return out
}
