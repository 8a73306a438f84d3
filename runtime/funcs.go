package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// funcIndex remembers, for every Starlark file the runtime has compiled,
// the hash of its source and the names each function's body mentions.
// Spawn uses the names to freeze exactly the module globals a body can
// reach before the body runs on another goroutine (so the top level may
// keep mutating its other globals), and the cache puts the source hash and
// those globals' values in its keys. Files are found by their compiled
// Program (each ExecFile or load compiles its own), or by file name for
// REPL chunks, which get unique names.
type funcIndex struct {
	mu    sync.Mutex
	progs map[*starlark.Program]*fileInfo
	files map[string]*fileInfo
}

// fileInfo is what funcIndex knows about one compiled file.
type fileInfo struct {
	hash  string              // sha256 of the source
	src   []byte              // the source (bodies that travel to workers carry it)
	names map[string][]string // posKey of def/lambda → names mentioned

	// While the file's top level runs (guarded by funcIndex.mu): the
	// context its thread spawns with, and the module's globals as that
	// thread last read them (see globalsReader).
	top  context.Context
	snap starlark.StringDict
}

func newFuncIndex() *funcIndex {
	return &funcIndex{progs: map[*starlark.Program]*fileInfo{}, files: map[string]*fileInfo{}}
}

// posKey identifies a function by the position of its def or lambda.
func posKey(p syntax.Position) string {
	return fmt.Sprintf("%s:%d:%d", p.Filename(), p.Line, p.Col)
}

// add indexes a parsed (not necessarily resolved) file and its source,
// and returns its entry for bind.
func (ix *funcIndex) add(f *syntax.File, src []byte) *fileInfo {
	sum := sha256.Sum256(src)
	fi := &fileInfo{hash: hex.EncodeToString(sum[:]), src: src, names: map[string][]string{}}
	syntax.Walk(f, func(n syntax.Node) bool {
		var pos syntax.Position
		var body []syntax.Node
		locals := map[string]bool{}
		switch x := n.(type) {
		case *syntax.DefStmt:
			pos = x.Def
			for _, s := range x.Body {
				body = append(body, s)
			}
			paramNames(x.Params, locals)
			for _, s := range x.Body {
				assignedNames(s, locals)
			}
		case *syntax.LambdaExpr:
			pos = x.Lambda
			body = []syntax.Node{x.Body}
			paramNames(x.Params, locals)
		default:
			return true
		}
		seen := map[string]bool{}
		for _, b := range body {
			syntax.Walk(b, func(n syntax.Node) bool {
				switch x := n.(type) {
				case *syntax.DotExpr:
					// x.Name is an attribute, not a variable.
					syntax.Walk(x.X, func(n syntax.Node) bool {
						if id, ok := n.(*syntax.Ident); ok {
							seen[id.Name] = true
						}
						return true
					})
					return false
				case *syntax.Ident:
					seen[x.Name] = true
				}
				return true
			})
		}
		// A name the function binds is its local wherever it is used
		// (Starlark has no global statement): not a module global.
		for name := range locals {
			delete(seen, name)
		}
		fi.names[posKey(pos)] = slices.Sorted(maps.Keys(seen))
		return true
	})
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.files[f.Path] = fi
	return fi
}

// paramNames adds the names of a function's parameters to into.
func paramNames(params []syntax.Expr, into map[string]bool) {
	for _, p := range params {
		switch p := p.(type) {
		case *syntax.Ident:
			into[p.Name] = true
		case *syntax.BinaryExpr: // name=default
			if id, ok := p.X.(*syntax.Ident); ok {
				into[id.Name] = true
			}
		case *syntax.UnaryExpr: // *args, **kwargs
			if id, ok := p.X.(*syntax.Ident); ok {
				into[id.Name] = true
			}
		}
	}
}

// assignedNames adds to into the names a statement of a function body
// binds (assignments, for loops, nested defs), in nested blocks too but
// not inside nested functions, which have scopes of their own.
func assignedNames(s syntax.Stmt, into map[string]bool) {
	var targets func(e syntax.Expr)
	targets = func(e syntax.Expr) {
		switch e := e.(type) {
		case *syntax.Ident:
			into[e.Name] = true
		case *syntax.TupleExpr:
			for _, x := range e.List {
				targets(x)
			}
		case *syntax.ListExpr:
			for _, x := range e.List {
				targets(x)
			}
		case *syntax.ParenExpr:
			targets(e.X)
		}
	}
	switch s := s.(type) {
	case *syntax.AssignStmt:
		targets(s.LHS)
	case *syntax.ForStmt:
		targets(s.Vars)
		for _, b := range s.Body {
			assignedNames(b, into)
		}
	case *syntax.WhileStmt:
		for _, b := range s.Body {
			assignedNames(b, into)
		}
	case *syntax.IfStmt:
		for _, b := range s.True {
			assignedNames(b, into)
		}
		for _, b := range s.False {
			assignedNames(b, into)
		}
	case *syntax.DefStmt:
		into[s.Name.Name] = true
	}
}

// bind records that prog was compiled from the file fi describes.
func (ix *funcIndex) bind(prog *starlark.Program, fi *fileInfo) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.progs[prog] = fi
}

// info returns what is known about the file fn was compiled from.
func (ix *funcIndex) info(fn *starlark.Function) *fileInfo {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if m := fn.Module(); m != nil {
		if fi, ok := ix.progs[m.Program()]; ok {
			return fi
		}
	}
	return ix.files[fn.Position().Filename()]
}

// refs returns the names mentioned by fn's body.
func (ix *funcIndex) refs(fn *starlark.Function) ([]string, bool) {
	fi := ix.info(fn)
	if fi == nil {
		return nil, false
	}
	n, ok := fi.names[posKey(fn.Position())]
	return n, ok
}

// source returns the hash of fn's file's source, or "".
func (ix *funcIndex) source(fn *starlark.Function) string {
	if fi := ix.info(fn); fi != nil {
		return fi.hash
	}
	return ""
}

// fileSource returns the hash of the source last run under a file name.
func (ix *funcIndex) fileSource(file string) string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if fi := ix.files[file]; fi != nil {
		return fi.hash
	}
	return ""
}

// running records that fi's top level has started on the thread whose
// spawns carry ctx (topLevel.ctx, which no other thread is given); the
// returned function records that it has returned.
func (ix *funcIndex) running(fi *fileInfo, ctx context.Context) func() {
	ix.mu.Lock()
	fi.top, fi.snap = ctx, nil
	ix.mu.Unlock()
	return func() {
		ix.mu.Lock()
		fi.top, fi.snap = nil, nil
		ix.mu.Unlock()
	}
}

// globalsReader reads module globals for one spawn. Reading a module's
// globals copies every slot, which races with a top level that is still
// assigning them, so while a file's top level runs only its own thread
// reads them; a spawn made on another thread (from a body the top level
// started) gets the copy the top level's thread made at its last spawn —
// taken after every function that spawn could reach was defined.
type globalsReader struct {
	ix  *funcIndex
	ctx context.Context // the context the spawn was made with
	got map[*starlark.Module]starlark.StringDict
}

// reader returns a globalsReader for a spawn made with ctx.
func (ix *funcIndex) reader(ctx context.Context) *globalsReader {
	return &globalsReader{ix: ix, ctx: ctx, got: map[*starlark.Module]starlark.StringDict{}}
}

// of returns the globals of fn's module; ok is false when they cannot be
// read safely (the top level is running on another thread and has not
// spawned yet).
func (g *globalsReader) of(fn *starlark.Function) (globals starlark.StringDict, ok bool) {
	mod := fn.Module()
	if d, done := g.got[mod]; done {
		return d, d != nil
	}
	fi := g.ix.info(fn)
	g.ix.mu.Lock()
	var top context.Context
	if fi != nil {
		top, globals = fi.top, fi.snap
	}
	g.ix.mu.Unlock()
	switch top {
	case nil: // the top level has returned: nothing assigns them any more
		globals = fn.Globals()
	case g.ctx: // on the top level's own thread
		globals = fn.Globals()
		g.ix.mu.Lock()
		if fi.top == top {
			fi.snap = globals
		}
		g.ix.mu.Unlock()
	}
	g.got[mod] = globals
	return globals, globals != nil
}

// freezeReachable freezes fn and the module globals its body (and the
// bodies of the module functions it mentions) can reach. A function the
// index does not know has every global of its module frozen.
func (ix *funcIndex) freezeReachable(fn starlark.Callable, gr *globalsReader) {
	seen := map[*starlark.Function]bool{}
	var visit func(f *starlark.Function)
	visit = func(f *starlark.Function) {
		if seen[f] {
			return
		}
		seen[f] = true
		f.Freeze()
		globals, _ := gr.of(f)
		names, ok := ix.refs(f)
		if !ok {
			globals.Freeze()
			return
		}
		for _, name := range names {
			v, ok := globals[name]
			if !ok {
				continue
			}
			if g, ok := v.(*starlark.Function); ok {
				visit(g)
				continue
			}
			v.Freeze()
		}
		for i := 0; i < f.NumFreeVars(); i++ {
			if _, v := f.FreeVar(i); v != nil {
				if g, ok := v.(*starlark.Function); ok {
					visit(g)
				}
			}
		}
	}
	switch f := fn.(type) {
	case *starlark.Function:
		visit(f)
	case nil:
	default:
		f.Freeze()
	}
}

// freezeValue freezes v, and the globals reachable from any function
// among its elements.
// Only small containers are searched for functions (large data rarely
// holds any, and walking it on every spawn would cost more than the run).
func (ix *funcIndex) freezeValue(v starlark.Value, depth int, gr *globalsReader) {
	const maxSearch = 256
	if depth > 8 {
		v.Freeze()
		return
	}
	switch x := v.(type) {
	case *starlark.Function:
		ix.freezeReachable(x, gr)
		return
	case starlark.Tuple:
		if len(x) <= maxSearch {
			for _, e := range x {
				ix.freezeValue(e, depth+1, gr)
			}
		}
	case *starlark.List:
		if x.Len() <= maxSearch {
			for i := 0; i < x.Len(); i++ {
				ix.freezeValue(x.Index(i), depth+1, gr)
			}
		}
	case *starlark.Dict:
		if x.Len() <= maxSearch {
			for _, kv := range x.Items() {
				ix.freezeValue(kv[1], depth+1, gr)
			}
		}
	}
	v.Freeze()
}
