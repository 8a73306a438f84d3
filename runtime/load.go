package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"go.starlark.net/starlark"
)

// DefaultMaxLoadBytes is the size cap of a module read by load() when
// Options.MaxLoadBytes is 0.
const DefaultMaxLoadBytes = 1 << 20

// LoadFunc resolves load(module) for the module or script named from (a
// name an earlier call returned, the file name given to ExecFile, or
// "<eval>" for a snippet) and returns the module's name and source. The
// name identifies the module (each name is run once and its globals
// shared) and names it in backtraces. An error refuses the load; wrap
// ErrLoadDenied when the load is against the embedder's policy.
type LoadFunc func(ctx context.Context, from, module string) (name string, src []byte, err error)

// resolver finds and reads the module that load(module) means in from.
type resolver interface {
	resolve(ctx context.Context, from, module string) (name string, src []byte, err error)
	close()
}

// newResolver builds the load policy of opts: LoadFunc, else LoadFS, else
// the directories LoadDir and AllowLoad (none: every load is refused).
func newResolver(opts Options) (resolver, error) {
	limit := opts.MaxLoadBytes
	if limit <= 0 {
		limit = DefaultMaxLoadBytes
	}
	switch {
	case opts.LoadFunc != nil:
		return &funcResolver{fn: opts.LoadFunc, limit: limit}, nil
	case opts.LoadFS != nil:
		return &fsResolver{fsys: opts.LoadFS, limit: limit}, nil
	}
	d := &dirResolver{limit: limit}
	dirs := opts.AllowLoad
	if opts.LoadDir != "" {
		dirs = append([]string{opts.LoadDir}, dirs...)
	}
	for _, dir := range dirs {
		if err := d.add(dir); err != nil {
			d.close()
			return nil, err
		}
	}
	return d, nil
}

// loadRoot is a directory load() may read below.
type loadRoot struct {
	dir  string // absolute, symbolic links resolved
	root *os.Root
}

// dirResolver serves load() from directories of the host: a module path is
// resolved against the directory of the loading file (or the first
// directory, for a snippet) and must stay below one of the directories
// after "..", symbolic links and absolute paths are taken into account.
// Files are opened through os.Root, which refuses symbolic links that
// lead out; only regular files up to the size cap are read.
type dirResolver struct {
	roots []loadRoot
	limit int64
}

func (d *dirResolver) add(dir string) error {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return fmt.Errorf("load directory %s: %w", dir, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return fmt.Errorf("load directory %s: %w", dir, err)
	}
	d.roots = append(d.roots, loadRoot{dir: abs, root: root})
	return nil
}

func (d *dirResolver) close() {
	for _, r := range d.roots {
		r.root.Close()
	}
}

func (d *dirResolver) allowed() string {
	dirs := make([]string, len(d.roots))
	for i, r := range d.roots {
		dirs[i] = r.dir
	}
	return strings.Join(dirs, ", ")
}

func (d *dirResolver) resolve(_ context.Context, from, module string) (string, []byte, error) {
	if len(d.roots) == 0 {
		return "", nil, limitf(ErrLoadDenied, "refused: the embedding application allows no loads (it sets none of runtime.Options.LoadDir, LoadFS and LoadFunc)")
	}
	if err := checkModuleName(module); err != nil {
		return "", nil, err
	}
	target := module
	if !filepath.IsAbs(target) {
		base := d.roots[0].dir
		if from != "" && !strings.HasPrefix(from, "<") {
			if b, err := filepath.Abs(filepath.Dir(from)); err == nil {
				if real, err := filepath.EvalSymlinks(b); err == nil {
					b = real
				}
				base = b
			}
		}
		target = filepath.Join(base, target)
	}
	target = filepath.Clean(target)
	for _, r := range d.roots {
		rel, err := filepath.Rel(r.dir, target)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			continue
		}
		src, err := readRegular(module, rel, d.limit, r.root.Stat, func(name string) (fs.File, error) {
			return r.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		})
		if err != nil {
			return "", nil, err
		}
		return target, src, nil
	}
	how := "it is outside"
	if filepath.IsAbs(module) {
		how = "an absolute path outside"
	} else if strings.Contains(module, "..") {
		how = "its .. leads outside"
	}
	return "", nil, limitf(ErrLoadDenied, "refused: %s: %s the directories scripts may load from (%s); allow another with autonode run --allow-load PATH (runtime.Options.AllowLoad when embedded)",
		module, how, d.allowed())
}

// checkModuleName refuses module paths that no policy should see.
func checkModuleName(module string) error {
	if module == "" || strings.ContainsRune(module, 0) {
		return limitf(ErrLoadDenied, "refused: %q is not a module path", module)
	}
	return nil
}

// readRegular reads the module file name (shown as module in errors) if
// it is a regular file of at most limit bytes. stat follows symbolic
// links the way open will; the file is checked again once open, so that
// one replaced in between is not read.
func readRegular(module, name string, limit int64, stat func(string) (fs.FileInfo, error), open func(string) (fs.File, error)) ([]byte, error) {
	fi, err := stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		return nil, notRegular(module, fi)
	}
	var f fs.File
	if err == nil {
		f, err = open(name)
	}
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%s: no such file", module)
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("%s: permission denied", module)
		case errors.As(err, &pe):
			// os.Root's refusal of a symbolic link or .. that leaves it.
			return nil, limitf(ErrLoadDenied, "refused: %s: %v (a symbolic link or .. that leads outside the directories scripts may load from)", module, pe.Err)
		}
		return nil, limitf(ErrLoadDenied, "refused: %s: %v", module, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("%s: %w", module, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(module, fi)
	}
	if fi.Size() > limit {
		return nil, tooLarge(module, fi.Size(), limit)
	}
	src, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", module, err)
	}
	if int64(len(src)) > limit {
		return nil, tooLarge(module, int64(len(src)), limit)
	}
	return src, nil
}

func notRegular(module string, fi fs.FileInfo) error {
	kind := "not a regular file"
	switch m := fi.Mode(); {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	}
	return limitf(ErrLoadDenied, "refused: %s is %s; load() reads only regular files", module, kind)
}

func tooLarge(module string, size, limit int64) error {
	return limitf(ErrLoadTooLarge, "refused: %s is larger than the %d bytes a module may have (runtime.Options.MaxLoadBytes); it has %d or more", module, limit, size)
}

// fsResolver serves load() from an fs.FS: module paths are slash-separated,
// resolved against the loading module's directory within the FS (the
// FS's root for a script's top level), and may not leave it.
type fsResolver struct {
	fsys  fs.FS
	limit int64
}

func (r *fsResolver) close() {}

func (r *fsResolver) resolve(_ context.Context, from, module string) (string, []byte, error) {
	if err := checkModuleName(module); err != nil {
		return "", nil, err
	}
	if strings.HasPrefix(module, "/") || filepath.IsAbs(module) {
		return "", nil, limitf(ErrLoadDenied, "refused: %s: an absolute path; modules are paths within the embedding application's file system", module)
	}
	base := "."
	if f := filepath.ToSlash(from); fs.ValidPath(f) {
		base = path.Dir(f)
	}
	name := path.Join(base, module)
	if !fs.ValidPath(name) {
		return "", nil, limitf(ErrLoadDenied, "refused: %s: its .. leads outside the embedding application's file system", module)
	}
	src, err := readRegular(module, name, r.limit,
		func(n string) (fs.FileInfo, error) { return fs.Stat(r.fsys, n) },
		func(n string) (fs.File, error) { return r.fsys.Open(n) })
	if err != nil {
		return "", nil, err
	}
	return name, src, nil
}

// funcResolver serves load() with the embedder's LoadFunc.
type funcResolver struct {
	fn    LoadFunc
	limit int64
}

func (r *funcResolver) close() {}

func (r *funcResolver) resolve(ctx context.Context, from, module string) (string, []byte, error) {
	name, src, err := r.fn(ctx, from, module)
	if err != nil {
		return "", nil, err
	}
	if int64(len(src)) > r.limit {
		return "", nil, tooLarge(module, int64(len(src)), r.limit)
	}
	if name == "" {
		name = module
	}
	return name, src, nil
}

// loader implements load(): the resolver finds the module, which runs
// once with the runtime's predeclared names on a top-level thread of the
// same context; its frozen globals are shared by every later load of the
// same module.
type loader struct {
	r   *Runtime
	res resolver
	mu  sync.Mutex
	m   map[string]*loadEntry
}

type loadEntry struct {
	ready   chan struct{}
	globals starlark.StringDict
	err     error
}

func newLoader(r *Runtime, res resolver) *loader {
	return &loader{r: r, res: res, m: map[string]*loadEntry{}}
}

// localLoading is the thread-local chain of modules being loaded, for
// cycle detection.
const localLoading = "autonode.loading"

func (l *loader) load(th *starlark.Thread, module string) (starlark.StringDict, error) {
	from := ""
	if s, ok := th.Local(localScript).(string); ok {
		from = s
	}
	ctx := l.r.contextOf(th)
	name, data, err := l.res.resolve(ctx, from, module)
	if err != nil {
		return nil, err
	}
	chain, _ := th.Local(localLoading).([]string)
	for _, c := range chain {
		if c == name {
			return nil, fmt.Errorf("cycle in load graph: %s", strings.Join(append(chain, name), " -> "))
		}
	}
	l.mu.Lock()
	e, ok := l.m[name]
	if !ok {
		e = &loadEntry{ready: make(chan struct{})}
		l.m[name] = e
	}
	l.mu.Unlock()
	if ok {
		<-e.ready
		return e.globals, e.err
	}
	e.globals, e.err = l.exec(ctx, th, module, name, data, chain)
	close(e.ready)
	return e.globals, e.err
}

// exec runs a module's source on a new thread.
func (l *loader) exec(ctx context.Context, th *starlark.Thread, module, name string, data []byte, chain []string) (starlark.StringDict, error) {
	f, err := dialect.Parse(name, data, 0)
	if err != nil {
		return nil, err
	}
	fi := l.r.funcs.add(f, data)
	pre := l.r.predeclared()
	prog, err := starlark.FileProgram(f, pre.Has)
	if err != nil {
		return nil, err
	}
	l.r.funcs.bind(prog, fi)
	lt := &starlark.Thread{Name: "load " + module}
	top := newTopLevel(ctx, nil)
	ctx = top.ctx
	lt.SetLocal(localTop, top)
	lt.SetLocal(localScript, name)
	lt.SetLocal(localLoading, append(slices.Clone(chain), name))
	if j := runOf(th); j != nil {
		lt.SetLocal(localRun, j)
	}
	g, stop := l.r.setupThread(lt, ctx, nil, nil)
	// Its builtins spawn with the context contextOf gives them (a body's,
	// when the body loads).
	finished := l.r.funcs.running(fi, l.r.contextOf(lt))
	globals, err := prog.Init(lt, pre)
	finished()
	stop()
	globals.Freeze()
	return globals, g.wrap(err)
}
