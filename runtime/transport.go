package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// Bodies that travel. A thread left to workers (Options.Remote) carries
// its body in its record as a spec: the files its functions come from
// (by the digest of their source, stored once in the cluster), each
// function by its file and position with the values of the variables it
// captured, the module globals those functions read (their values at
// spawn), the arguments, and retry_on. A worker rebuilds the functions by
// compiling, for each function, a wrapper whose parameters are its
// captured variables and whose body is the function's own definition,
// taken from the file's syntax tree: the rebuilt function has the name,
// position and code of the original, and sees the same values. The
// script's top level never runs again. Values travel when they are data:
// None, bools, ints, floats, strings, bytes, lists, tuples, dicts, sets,
// structs, functions of files the runtime compiled, and the predeclared
// builtins and modules; anything else (arrays, thread handles, values of
// an embedder's types) is refused at spawn with ErrCannotTravel.

// ErrCannotTravel: a thread meant for workers (Options.Remote) has a body,
// argument or captured value that cannot be sent to another machine.
var ErrCannotTravel = errors.New("cannot travel to a worker")

// bodyField is the run-state member (registry.Thread.RunExtra) that holds
// a thread's body spec.
const bodyField = "body"

// bodySpec is a thread's body as it travels.
type bodySpec struct {
	V       int               `json:"v"`
	Files   []specFile        `json:"files,omitempty"`
	Funcs   []specFunc        `json:"funcs,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"` // absent: the default work
	Args    []json.RawMessage `json:"args,omitempty"`
	Kwargs  []specKwarg       `json:"kwargs,omitempty"`
	RetryOn json.RawMessage   `json:"retry_on,omitempty"`
}

type specFile struct {
	Path    string                     `json:"path"`
	Source  string                     `json:"source"` // digest of the source
	Globals map[string]json.RawMessage `json:"globals,omitempty"`
}

type specFunc struct {
	File int    `json:"file"`
	Pos  string `json:"pos"` // line:col of its def or lambda
	Name string `json:"name"`
	// Free are the captured variables, in the function's order.
	Free []specKwarg `json:"free,omitempty"`
}

type specKwarg struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

// specEncoder builds a spec on the spawning side.
type specEncoder struct {
	r       *Runtime
	spec    bodySpec
	files   map[string]int
	funcs   map[*starlark.Function]int
	sources map[string][]byte // digest → source, to store in the cluster
	pre     map[starlark.Value]string
	globals *globalsReader
}

func newSpecEncoder(r *Runtime, gr *globalsReader) *specEncoder {
	return &specEncoder{r: r, spec: bodySpec{V: 1}, files: map[string]int{}, funcs: map[*starlark.Function]int{},
		sources: map[string][]byte{}, globals: gr}
}

// encodeBody returns the spec of req's body, arguments and retry_on.
func (r *Runtime) encodeBody(req *SpawnRequest, gr *globalsReader) (*bodySpec, map[string][]byte, error) {
	e := newSpecEncoder(r, gr)
	if req.Run != nil {
		v, err := e.value(req.Run, 0, "the body")
		if err != nil {
			return nil, nil, err
		}
		e.spec.Body = v
	}
	for i, a := range req.Args {
		v, err := e.value(a, 0, fmt.Sprintf("argument %d", i))
		if err != nil {
			return nil, nil, err
		}
		e.spec.Args = append(e.spec.Args, v)
	}
	for _, kv := range req.Kwargs {
		name, _ := starlark.AsString(kv[0])
		v, err := e.value(kv[1], 0, "keyword argument "+name)
		if err != nil {
			return nil, nil, err
		}
		e.spec.Kwargs = append(e.spec.Kwargs, specKwarg{Name: name, Value: v})
	}
	if req.RetryOn != nil {
		v, err := e.value(req.RetryOn, 0, "retry_on")
		if err != nil {
			return nil, nil, err
		}
		e.spec.RetryOn = v
	}
	return &e.spec, e.sources, nil
}

func travelErr(what, format string, args ...any) error {
	return fmt.Errorf("%s %w: %s", what, ErrCannotTravel, fmt.Sprintf(format, args...))
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps, slices, strings and numbers: cannot fail
	}
	return b
}

// predeclaredPaths maps each predeclared value (and each member of a
// predeclared module or struct) to its name: "len", "math", "math.sqrt".
func (e *specEncoder) predeclaredPaths() map[starlark.Value]string {
	if e.pre != nil {
		return e.pre
	}
	e.pre = map[starlark.Value]string{}
	add := func(name string, v starlark.Value) {
		if !hashable(v) {
			return
		}
		if _, ok := e.pre[v]; !ok {
			e.pre[v] = name
		}
	}
	for name, v := range starlark.Universe {
		add(name, v)
	}
	for name, v := range e.r.predeclared() {
		add(name, v)
		if m, ok := v.(starlark.HasAttrs); ok && hashable(v) {
			for _, a := range m.AttrNames() {
				if av, err := m.Attr(a); err == nil && av != nil {
					add(name+"."+a, av)
				}
			}
		}
	}
	return e.pre
}

// hashable reports whether v can key a Go map (pointer-like values).
func hashable(v starlark.Value) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_ = map[starlark.Value]bool{v: true}
	return true
}

// value encodes v; what names it in messages ("argument 0").
func (e *specEncoder) value(v starlark.Value, depth int, what string) (json.RawMessage, error) {
	if depth > 64 {
		return nil, travelErr(what, "it is nested more than 64 deep (or holds itself)")
	}
	items := func(tag string, vs []starlark.Value) (json.RawMessage, error) {
		out := make([]json.RawMessage, len(vs))
		for i, x := range vs {
			enc, err := e.value(x, depth+1, what)
			if err != nil {
				return nil, err
			}
			out[i] = enc
		}
		return raw(map[string]any{tag: out}), nil
	}
	switch x := v.(type) {
	case starlark.NoneType:
		return json.RawMessage("null"), nil
	case starlark.Bool:
		return raw(bool(x)), nil
	case starlark.Int:
		return raw(map[string]string{"i": x.String()}), nil
	case starlark.Float:
		f := float64(x)
		switch {
		case math.IsNaN(f):
			return raw(map[string]string{"f": "nan"}), nil
		case math.IsInf(f, 1):
			return raw(map[string]string{"f": "inf"}), nil
		case math.IsInf(f, -1):
			return raw(map[string]string{"f": "-inf"}), nil
		}
		return raw(map[string]float64{"f": f}), nil
	case starlark.String:
		return raw(string(x)), nil
	case starlark.Bytes:
		return raw(map[string]string{"b": base64.StdEncoding.EncodeToString([]byte(x))}), nil
	case *starlark.List:
		vs := make([]starlark.Value, x.Len())
		for i := range vs {
			vs[i] = x.Index(i)
		}
		return items("l", vs)
	case starlark.Tuple:
		return items("t", x)
	case *starlark.Set:
		var vs []starlark.Value
		it := x.Iterate()
		var el starlark.Value
		for it.Next(&el) {
			vs = append(vs, el)
		}
		it.Done()
		return items("s", vs)
	case *starlark.Dict:
		pairs := make([][2]json.RawMessage, 0, x.Len())
		for _, kv := range x.Items() {
			k, err := e.value(kv[0], depth+1, what)
			if err != nil {
				return nil, err
			}
			val, err := e.value(kv[1], depth+1, what)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, [2]json.RawMessage{k, val})
		}
		return raw(map[string]any{"d": pairs}), nil
	case *starlarkstruct.Struct:
		if x.Constructor() != starlarkstruct.Default {
			return nil, travelErr(what, "a struct made by %s (only struct(...) values travel)", x.Constructor())
		}
		var fields []specKwarg
		for _, name := range x.AttrNames() {
			fv, _ := x.Attr(name)
			enc, err := e.value(fv, depth+1, what)
			if err != nil {
				return nil, err
			}
			fields = append(fields, specKwarg{Name: name, Value: enc})
		}
		return raw(map[string]any{"st": fields}), nil
	case *starlark.Function:
		k, err := e.function(x, depth)
		if err != nil {
			return nil, err
		}
		return raw(map[string]int{"fn": k}), nil
	}
	if hashable(v) {
		if name, ok := e.predeclaredPaths()[v]; ok {
			return raw(map[string]string{"pre": name}), nil
		}
	}
	why := "it is a " + v.Type() + ", which only lives in this process"
	switch v.Type() {
	case "Thread":
		why = "it is a thread handle; pass the thread's id and read it with thread(id)"
	case "array":
		why = "it is an accel array; pass a list (a.tolist()) or make the array in the body"
	}
	return nil, travelErr(what, "%s", why)
}

// function adds fn (its file, captured values and the globals it reads)
// and returns its index.
func (e *specEncoder) function(fn *starlark.Function, depth int) (int, error) {
	if k, ok := e.funcs[fn]; ok {
		return k, nil
	}
	what := fmt.Sprintf("function %s (%s)", fn.Name(), fn.Position())
	fi := e.r.funcs.info(fn)
	names, known := e.r.funcs.refs(fn)
	if fi == nil || fi.src == nil || !known {
		return 0, travelErr(what, "its source is unknown to this runtime")
	}
	path := fn.Position().Filename()
	fk, ok := e.files[path]
	if !ok {
		fk = len(e.spec.Files)
		e.files[path] = fk
		e.spec.Files = append(e.spec.Files, specFile{Path: path, Source: fi.hash, Globals: map[string]json.RawMessage{}})
		e.sources[fi.hash] = fi.src
	} else if e.spec.Files[fk].Source != fi.hash {
		return 0, travelErr(what, "two different sources were run as %s", path)
	}
	k := len(e.spec.Funcs)
	e.funcs[fn] = k
	e.spec.Funcs = append(e.spec.Funcs, specFunc{File: fk, Pos: fmt.Sprintf("%d:%d", fn.Position().Line, fn.Position().Col), Name: fn.Name()})
	for i := 0; i < fn.NumFreeVars(); i++ {
		b, fv := fn.FreeVar(i)
		if fv == nil {
			return 0, travelErr(what, "its captured variable %s has no value yet", b.Name)
		}
		enc, err := e.value(fv, depth+1, what+": captured variable "+b.Name)
		if err != nil {
			return 0, err
		}
		e.spec.Funcs[k].Free = append(e.spec.Funcs[k].Free, specKwarg{Name: b.Name, Value: enc})
	}
	globals, ok := e.globals.of(fn)
	if !ok {
		return 0, travelErr(what, "it was spawned from another thread while the top level of %s was still running, before that top level spawned anything, so the globals it reads could not be read", fn.Position().Filename())
	}
	for _, name := range names {
		if _, done := e.spec.Files[fk].Globals[name]; done {
			continue
		}
		g, ok := globals[name]
		if !ok {
			if name == "argv" { // predeclared, but this process's
				g = e.r.argv
			} else {
				continue
			}
		}
		e.spec.Files[fk].Globals[name] = json.RawMessage("null") // a placeholder while g is encoded
		enc, err := e.value(g, depth+1, what+": global "+name)
		if err != nil {
			return 0, err
		}
		e.spec.Files[fk].Globals[name] = enc
	}
	return k, nil
}

// specDecoder rebuilds a spec's functions in a worker.
type specDecoder struct {
	r      *Runtime
	spec   *bodySpec
	pre    starlark.StringDict   // the worker's predeclared names
	mods   []starlark.StringDict // per file: its defs and wrappers, after Init
	preds  []starlark.StringDict // per file: predeclared + its globals
	direct []map[string]int      // per file: its module-level defs, by name
	funcs  []starlark.Value      // rebuilt functions, by index
	busy   []bool
}

// wrapperName is the global of the wrapper that rebuilds function k.
func wrapperName(k int) string { return "__autonode_fn_" + strconv.Itoa(k) }

// materialized is a spec's rebuilt functions, shared by the threads whose
// specs have the same files and functions (their values are frozen).
type materialized struct {
	funcs []starlark.Value
	dec   *specDecoder
}

// specCache keeps recently rebuilt specs, by the digest of their files
// and functions.
type specCache struct {
	mu sync.Mutex
	m  map[string]*materialized
}

const specCacheSize = 64

// sourceFetcher returns a source by digest (the cluster's sources bucket).
type sourceFetcher func(ctx context.Context, digest string) ([]byte, error)

// decodeBody rebuilds the body, arguments and retry_on of spec.
func (r *Runtime) decodeBody(ctx context.Context, spec *bodySpec, fetch sourceFetcher, cache *specCache) (fn starlark.Callable, args starlark.Tuple, kwargs []starlark.Tuple, retryOn starlark.Callable, err error) {
	if spec.V != 1 {
		return nil, nil, nil, nil, fmt.Errorf("body spec version %d: this worker reads version 1 (update it)", spec.V)
	}
	key := sha256.Sum256(raw([]any{spec.Files, spec.Funcs}))
	ck := hex.EncodeToString(key[:])
	cache.mu.Lock()
	m := cache.m[ck]
	cache.mu.Unlock()
	if m == nil {
		d := &specDecoder{r: r, spec: spec, pre: r.predeclared()}
		if err := d.build(ctx, fetch); err != nil {
			return nil, nil, nil, nil, err
		}
		m = &materialized{funcs: d.funcs, dec: d}
		cache.mu.Lock()
		if cache.m == nil || len(cache.m) >= specCacheSize {
			cache.m = map[string]*materialized{}
		}
		cache.m[ck] = m
		cache.mu.Unlock()
	}
	d := m.dec
	callable := func(enc json.RawMessage, what string) (starlark.Callable, error) {
		if len(enc) == 0 {
			return nil, nil
		}
		v, err := d.value(enc, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		c, ok := v.(starlark.Callable)
		if !ok {
			return nil, fmt.Errorf("%s: a %s is not callable", what, v.Type())
		}
		return c, nil
	}
	if fn, err = callable(spec.Body, "the body"); err != nil {
		return nil, nil, nil, nil, err
	}
	if retryOn, err = callable(spec.RetryOn, "retry_on"); err != nil {
		return nil, nil, nil, nil, err
	}
	for i, a := range spec.Args {
		v, err := d.value(a, 0)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("argument %d: %w", i, err)
		}
		v.Freeze()
		args = append(args, v)
	}
	for _, kw := range spec.Kwargs {
		v, err := d.value(kw.Value, 0)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("keyword argument %s: %w", kw.Name, err)
		}
		v.Freeze()
		kwargs = append(kwargs, starlark.Tuple{starlark.String(kw.Name), v})
	}
	return fn, args, kwargs, retryOn, nil
}

// build compiles each file's wrappers, then fills in the globals and
// rebuilds every function.
func (d *specDecoder) build(ctx context.Context, fetch sourceFetcher) error {
	d.funcs = make([]starlark.Value, len(d.spec.Funcs))
	d.busy = make([]bool, len(d.spec.Funcs))
	d.mods = make([]starlark.StringDict, len(d.spec.Files))
	d.preds = make([]starlark.StringDict, len(d.spec.Files))
	d.direct = make([]map[string]int, len(d.spec.Files))
	byFile := make([][]int, len(d.spec.Files))
	for k, f := range d.spec.Funcs {
		if f.File < 0 || f.File >= len(d.spec.Files) {
			return fmt.Errorf("body spec: function %d names file %d of %d", k, f.File, len(d.spec.Files))
		}
		byFile[f.File] = append(byFile[f.File], k)
	}
	for i, sf := range d.spec.Files {
		src, err := fetch(ctx, sf.Source)
		if err != nil {
			return fmt.Errorf("the source of %s: %w", sf.Path, err)
		}
		if err := d.compile(i, sf, src, byFile[i]); err != nil {
			return err
		}
	}
	// Globals: plain data first (a function's default values may read
	// them when it is rebuilt), then those that hold functions.
	for pass := 0; pass < 2; pass++ {
		for i, sf := range d.spec.Files {
			for name, enc := range sf.Globals {
				if holdsFunction(enc) != (pass == 1) {
					continue
				}
				v, err := d.value(enc, 0)
				if err != nil {
					return fmt.Errorf("%s: global %s: %w", sf.Path, name, err)
				}
				v.Freeze()
				d.preds[i][name] = v
			}
		}
	}
	for k := range d.spec.Funcs {
		if _, err := d.function(k); err != nil {
			return err
		}
	}
	return nil
}

// holdsFunction reports whether an encoded value holds a function.
func holdsFunction(enc json.RawMessage) bool { return strings.Contains(string(enc), `{"fn":`) }

// funcNode is a def or lambda of a parsed file, and whether it is nested
// in another function (a closure) or at the module's level.
type funcNode struct {
	node   syntax.Node
	nested bool
}

// funcNodes indexes the defs and lambdas of f by the position of their
// def or lambda keyword.
func funcNodes(f *syntax.File) map[string]funcNode {
	out := map[string]funcNode{}
	var collect func(n syntax.Node, nested bool)
	collect = func(n syntax.Node, nested bool) {
		syntax.Walk(n, func(n syntax.Node) bool {
			switch x := n.(type) {
			case *syntax.DefStmt:
				out[fmt.Sprintf("%d:%d", x.Def.Line, x.Def.Col)] = funcNode{x, nested}
				for _, p := range x.Params {
					collect(p, nested) // defaults are evaluated where the def is
				}
				for _, st := range x.Body {
					collect(st, true)
				}
				return false
			case *syntax.LambdaExpr:
				out[fmt.Sprintf("%d:%d", x.Lambda.Line, x.Lambda.Col)] = funcNode{x, nested}
				for _, p := range x.Params {
					collect(p, nested)
				}
				collect(x.Body, true)
				return false
			}
			return true
		})
	}
	for _, st := range f.Stmts {
		collect(st, false)
	}
	return out
}

// compile builds file i's program from the definitions of the spec's
// functions in that file: a def at the module's level as it is (so that
// it finds itself, and the module's other functions, as globals), and a
// closure or lambda inside a wrapper whose parameters are the variables
// it captured.
func (d *specDecoder) compile(i int, sf specFile, src []byte, ks []int) error {
	f, err := dialect.Parse(sf.Path, src, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", sf.Path, err)
	}
	fi := d.r.funcs.add(f, src)
	nodes := funcNodes(f)
	synth := &syntax.File{Path: f.Path, Options: f.Options}
	pred := make(starlark.StringDict, len(d.pre)+len(sf.Globals))
	for name, v := range d.pre {
		pred[name] = v
	}
	for name := range sf.Globals {
		pred[name] = starlark.None // filled in once the functions exist
	}
	direct := map[string]int{}
	for _, k := range ks {
		sfn := d.spec.Funcs[k]
		fn, ok := nodes[sfn.Pos]
		if !ok {
			return fmt.Errorf("%s: no function %s at %s in its source", sf.Path, sfn.Name, sfn.Pos)
		}
		if def, ok := fn.node.(*syntax.DefStmt); ok && def.Name.Name != sfn.Name {
			return fmt.Errorf("%s: the function at %s is %s, not %s", sf.Path, sfn.Pos, def.Name.Name, sfn.Name)
		}
		if def, ok := fn.node.(*syntax.DefStmt); ok && !fn.nested {
			if other, taken := direct[sfn.Name]; taken {
				return fmt.Errorf("%w: %s defines %s twice (at %s and %s) and both are used", ErrCannotTravel, sf.Path, sfn.Name, d.spec.Funcs[other].Pos, sfn.Pos)
			}
			if g, ok := sf.Globals[sfn.Name]; ok && string(g) != fmt.Sprintf(`{"fn":%d}`, k) {
				return fmt.Errorf("%w: in %s the global %s was bound to another value after def %s", ErrCannotTravel, sf.Path, sfn.Name, sfn.Name)
			}
			direct[sfn.Name] = k
			for _, fv := range sfn.Free { // names load() bound in the module
				pred[fv.Name] = starlark.None
			}
			synth.Stmts = append(synth.Stmts, def)
			continue
		}
		var params []syntax.Expr
		for _, fv := range sfn.Free {
			params = append(params, &syntax.Ident{Name: fv.Name})
		}
		var body []syntax.Stmt
		var pos syntax.Position
		switch x := fn.node.(type) {
		case *syntax.DefStmt:
			pos = x.Def
			body = []syntax.Stmt{x, &syntax.ReturnStmt{Return: x.Def, Result: &syntax.Ident{NamePos: x.Def, Name: x.Name.Name}}}
		case *syntax.LambdaExpr:
			pos = x.Lambda
			body = []syntax.Stmt{&syntax.ReturnStmt{Return: x.Lambda, Result: x}}
		}
		synth.Stmts = append(synth.Stmts, &syntax.DefStmt{Def: pos, Name: &syntax.Ident{NamePos: pos, Name: wrapperName(k)}, Params: params, Body: body})
	}
	prog, err := starlark.FileProgram(synth, pred.Has)
	if err != nil {
		return fmt.Errorf("%s: the functions that run on the worker do not compile without the rest of the script: %w", sf.Path, err)
	}
	d.r.funcs.bind(prog, fi)
	th := &starlark.Thread{Name: "rebuild " + sf.Path}
	mod, err := prog.Init(th, pred)
	if err != nil {
		return fmt.Errorf("%s: %w", sf.Path, err)
	}
	d.mods[i], d.preds[i], d.direct[i] = mod, pred, direct
	return nil
}

// function rebuilds function k: its wrapper called with its captured
// values.
func (d *specDecoder) function(k int) (starlark.Value, error) {
	if k < 0 || k >= len(d.funcs) {
		return nil, fmt.Errorf("body spec: no function %d", k)
	}
	if d.funcs[k] != nil {
		return d.funcs[k], nil
	}
	if d.busy[k] {
		return nil, fmt.Errorf("%w: function %s captures a function that captures it (mutually recursive closures)", ErrCannotTravel, d.spec.Funcs[k].Name)
	}
	d.busy[k] = true
	sfn := d.spec.Funcs[k]
	if dk, ok := d.direct[sfn.File][sfn.Name]; ok && dk == k {
		// A module-level def: its captured variables (names load()
		// bound) are the module's predeclared names.
		for _, fv := range sfn.Free {
			v, err := d.value(fv.Value, 0)
			if err != nil {
				return nil, fmt.Errorf("function %s: %s: %w", sfn.Name, fv.Name, err)
			}
			v.Freeze()
			d.preds[sfn.File][fv.Name] = v
		}
		v := d.mods[sfn.File][sfn.Name]
		d.funcs[k] = v
		return v, nil
	}
	args := make(starlark.Tuple, len(sfn.Free))
	for i, fv := range sfn.Free {
		v, err := d.value(fv.Value, 0)
		if err != nil {
			return nil, fmt.Errorf("function %s: captured variable %s: %w", sfn.Name, fv.Name, err)
		}
		v.Freeze()
		args[i] = v
	}
	th := &starlark.Thread{Name: "rebuild " + sfn.Name}
	v, err := starlark.Call(th, d.mods[sfn.File][wrapperName(k)], args, nil)
	if err != nil {
		return nil, fmt.Errorf("rebuild function %s: %w", sfn.Name, err)
	}
	v.Freeze()
	d.funcs[k] = v
	return v, nil
}

// value decodes an encoded value.
func (d *specDecoder) value(enc json.RawMessage, depth int) (starlark.Value, error) {
	if depth > 64 {
		return nil, fmt.Errorf("body spec: a value nested more than 64 deep")
	}
	var x any
	dec := json.NewDecoder(strings.NewReader(string(enc)))
	dec.UseNumber()
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("body spec: %w", err)
	}
	switch v := x.(type) {
	case nil:
		return starlark.None, nil
	case bool:
		return starlark.Bool(v), nil
	case string:
		return starlark.String(v), nil
	case map[string]any:
		if len(v) != 1 {
			break
		}
		var tag string
		for t := range v {
			tag = t
		}
		return d.tagged(tag, enc, depth)
	}
	return nil, fmt.Errorf("body spec: a value of an unknown form: %.80s", enc)
}

// tagged decodes a tagged value {"<tag>": ...}.
func (d *specDecoder) tagged(tag string, enc json.RawMessage, depth int) (starlark.Value, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(enc, &m); err != nil {
		return nil, fmt.Errorf("body spec: %w", err)
	}
	body := m[tag]
	list := func() ([]starlark.Value, error) {
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("body spec: %s: %w", tag, err)
		}
		out := make([]starlark.Value, len(items))
		for i, it := range items {
			v, err := d.value(it, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	var s string
	switch tag {
	case "i":
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, fmt.Errorf("body spec: int: %w", err)
		}
		b, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("body spec: int %q", s)
		}
		return starlark.MakeBigInt(b), nil
	case "f":
		if json.Unmarshal(body, &s) == nil {
			switch s {
			case "nan":
				return starlark.Float(math.NaN()), nil
			case "inf":
				return starlark.Float(math.Inf(1)), nil
			case "-inf":
				return starlark.Float(math.Inf(-1)), nil
			}
			return nil, fmt.Errorf("body spec: float %q", s)
		}
		var f float64
		if err := json.Unmarshal(body, &f); err != nil {
			return nil, fmt.Errorf("body spec: float: %w", err)
		}
		return starlark.Float(f), nil
	case "b":
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, fmt.Errorf("body spec: bytes: %w", err)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("body spec: bytes: %w", err)
		}
		return starlark.Bytes(b), nil
	case "l":
		vs, err := list()
		if err != nil {
			return nil, err
		}
		return starlark.NewList(vs), nil
	case "t":
		vs, err := list()
		if err != nil {
			return nil, err
		}
		return starlark.Tuple(vs), nil
	case "s":
		vs, err := list()
		if err != nil {
			return nil, err
		}
		set := starlark.NewSet(len(vs))
		for _, v := range vs {
			if err := set.Insert(v); err != nil {
				return nil, fmt.Errorf("body spec: set: %w", err)
			}
		}
		return set, nil
	case "d":
		var pairs [][2]json.RawMessage
		if err := json.Unmarshal(body, &pairs); err != nil {
			return nil, fmt.Errorf("body spec: dict: %w", err)
		}
		dict := starlark.NewDict(len(pairs))
		for _, p := range pairs {
			k, err := d.value(p[0], depth+1)
			if err != nil {
				return nil, err
			}
			v, err := d.value(p[1], depth+1)
			if err != nil {
				return nil, err
			}
			if err := dict.SetKey(k, v); err != nil {
				return nil, fmt.Errorf("body spec: dict: %w", err)
			}
		}
		return dict, nil
	case "st":
		var fields []specKwarg
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, fmt.Errorf("body spec: struct: %w", err)
		}
		kw := make([]starlark.Tuple, len(fields))
		for i, f := range fields {
			v, err := d.value(f.Value, depth+1)
			if err != nil {
				return nil, err
			}
			kw[i] = starlark.Tuple{starlark.String(f.Name), v}
		}
		return starlarkstruct.FromKeywords(starlarkstruct.Default, kw), nil
	case "fn":
		var k int
		if err := json.Unmarshal(body, &k); err != nil {
			return nil, fmt.Errorf("body spec: function: %w", err)
		}
		return d.function(k)
	case "pre":
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, fmt.Errorf("body spec: predeclared: %w", err)
		}
		return d.predeclared(s)
	}
	return nil, fmt.Errorf("body spec: a value tagged %q", tag)
}

// predeclared looks up a predeclared name ("len", "math.sqrt") in the
// worker.
func (d *specDecoder) predeclared(path string) (starlark.Value, error) {
	head, rest, _ := strings.Cut(path, ".")
	v, ok := d.pre[head]
	if !ok {
		v, ok = starlark.Universe[head]
	}
	if !ok {
		return nil, fmt.Errorf("the worker has no predeclared %s (an embedder's builtin?)", head)
	}
	if rest == "" {
		return v, nil
	}
	m, ok := v.(starlark.HasAttrs)
	if !ok {
		return nil, fmt.Errorf("the worker's %s has no member %s", head, rest)
	}
	a, err := m.Attr(rest)
	if err != nil || a == nil {
		return nil, fmt.Errorf("the worker's %s has no member %s", head, rest)
	}
	return a, nil
}
