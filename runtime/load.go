package runtime

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"go.starlark.net/starlark"
)

// loader implements load(): a module path is resolved against the
// directory of the file that loads it, run once with the runtime's
// predeclared names on a top-level thread of the same context, and its
// frozen globals are shared by every later load of the same file.
type loader struct {
	r  *Runtime
	mu sync.Mutex
	m  map[string]*loadEntry
}

type loadEntry struct {
	ready   chan struct{}
	globals starlark.StringDict
	err     error
}

func newLoader(r *Runtime) *loader { return &loader{r: r, m: map[string]*loadEntry{}} }

// localLoading is the thread-local chain of files being loaded, for
// cycle detection.
const localLoading = "autonode.loading"

func (l *loader) load(th *starlark.Thread, module string) (starlark.StringDict, error) {
	from := ""
	if s, ok := th.Local(localScript).(string); ok {
		from = s
	}
	path := module
	if !filepath.IsAbs(path) && from != "" && !strings.HasPrefix(from, "<") {
		path = filepath.Join(filepath.Dir(from), module)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	chain, _ := th.Local(localLoading).([]string)
	for _, c := range chain {
		if c == path {
			return nil, fmt.Errorf("cycle in load graph: %s", strings.Join(append(chain, path), " -> "))
		}
	}
	l.mu.Lock()
	e, ok := l.m[path]
	if !ok {
		e = &loadEntry{ready: make(chan struct{})}
		l.m[path] = e
	}
	l.mu.Unlock()
	if ok {
		<-e.ready
		return e.globals, e.err
	}
	ctx := l.r.Context(th)
	data, err := readSource(path, nil)
	if err == nil {
		f, perr := Dialect.Parse(path, data, 0)
		err = perr
		if err == nil {
			fi := l.r.funcs.add(f, data)
			pre := l.r.predeclared()
			prog, perr := starlark.FileProgram(f, pre.Has)
			if perr != nil {
				err = perr
			} else {
				l.r.funcs.bind(prog, fi)
				lt, stop := l.r.newTopThread(ctx, "load "+module, path)
				lt.SetLocal(localLoading, append(append([]string(nil), chain...), path))
				if j := runOf(th); j != nil {
					lt.SetLocal(localRun, j)
				}
				e.globals, err = prog.Init(lt, pre)
				e.globals.Freeze()
				stop()
			}
		}
	}
	e.err = err
	close(e.ready)
	return e.globals, e.err
}
