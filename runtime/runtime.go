package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
)

// dialect is the Starlark dialect of every file and snippet the runtime
// runs (see Dialect).
var dialect = syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}

// Dialect returns the Starlark dialect of every file and snippet the
// runtime runs: while loops, top-level control flow, global reassignment,
// sets and recursion are allowed. Tools that parse scripts the way the
// runtime does (a checker, a REPL) use it; each call returns a new copy.
func Dialect() *syntax.FileOptions {
	d := dialect
	return &d
}

// Runtime is AutoNode's thread engine and Starlark interpreter: it runs
// scripts, whose builtins (spawn, branch, …) it serves, and runs the
// threads they spawn on bounded worker pools. A Runtime is safe for
// concurrent use; Eval calls are serialized.
type Runtime struct {
	opts     Options
	store    registry.Store
	ownStore bool
	session  string
	owner    string

	stdout, stderr *lockedWriter

	ctx      context.Context // ends when Close begins to cancel
	cancel   context.CancelFunc
	commits  *committer
	cpuPool  *pool
	gpuPool  *pool
	cache    *cacheIndex
	outs     registry.Outputs // logs, metrics and result arrays; nil when the store keeps none
	load     *loadGuard
	funcs    *funcIndex
	loads    *loader
	seq      atomic.Uint64
	active   sync.WaitGroup
	surface  starlark.StringDict // builtins.Predeclared(r), built once
	argv     *starlark.List
	execOnce sync.Once
	topExec  *accel.Exec

	monitor  *monitor
	remote   *remoteState // Options.Remote (remote.go)
	clock    clock
	jitter   func() float64 // uniform in [-1, 1): retry delays' ±10%
	closing  atomic.Bool    // Close has begun: waiting runs stuck on nothing give up
	spawners spawnerWatches // stop the runs of a spawner context that ends

	failMu sync.Mutex
	failed map[registry.ID]*registry.Thread // see Failed

	mu      sync.Mutex
	closed  bool
	runs    map[registry.ID]*run
	hot     map[*run]struct{}   // running and waiting runs: the monitor checks them each tick
	extra   starlark.StringDict // AddBuiltin, AddModule
	kernels map[string]Kernel

	evalMu sync.Mutex
	evals  int // Eval calls, for snippet names
	envMu  sync.Mutex
	env    starlark.StringDict // globals of ExecFile and Eval
}

// New opens the registry (or uses opts.Store), marks threads left running
// by a dead process as crashed, and returns a Runtime ready to run
// scripts. Close it when done.
func New(opts Options) (*Runtime, error) {
	r := &Runtime{
		opts: opts, session: opts.SessionToken, owner: owner.Self().String(),
		stdout: &lockedWriter{w: opts.Stdout}, stderr: &lockedWriter{w: opts.Stderr},
		runs: map[registry.ID]*run{}, extra: starlark.StringDict{}, kernels: map[string]Kernel{},
		env: starlark.StringDict{}, funcs: newFuncIndex(), hot: map[*run]struct{}{},
		failed: map[registry.ID]*registry.Thread{}, clock: realClock{}, jitter: jitterUniform,
	}
	r.monitor = newMonitor(r)
	if r.session != "" {
		if err := registry.ValidateToken(r.session); err != nil {
			return nil, fmt.Errorf("session token: %w", err)
		}
	}
	res, err := newResolver(opts)
	if err != nil {
		return nil, err
	}
	r.store = opts.Store
	if r.store == nil {
		var err error
		if opts.NATS != "" {
			r.store, err = natsstore.Open(natsstore.Options{URL: opts.NATS, Bucket: opts.NATSBucket})
		} else {
			r.store, err = registry.OpenFile(opts.RegistryPath, nil)
		}
		if err != nil {
			res.close()
			return nil, err
		}
		r.ownStore = true
	}
	r.outs = outputsOf(r.store)
	var crashed []registry.ID
	err = r.store.Update(func(tx *registry.Tx) error {
		ids, err := tx.MarkCrashed(r.alive)
		crashed = ids
		return err
	})
	if err != nil {
		if r.ownStore {
			_ = r.store.Close()
		}
		res.close()
		return nil, fmt.Errorf("mark crashed threads: %w", err)
	}
	if len(crashed) > 0 {
		r.warn("marked %d thread(s) crashed: the process running them is gone: %s", len(crashed), registry.JoinIDs(crashed))
	}
	cpus := opts.CPUWorkers
	if cpus <= 0 {
		cpus = goruntime.NumCPU()
	}
	gpus := opts.GPUWorkers
	if gpus <= 0 {
		gpus = 1
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.cpuPool, r.gpuPool = newPool("cpu", cpus), newPool("gpu", gpus)
	r.commits = newCommitter(r.store, r.warn)
	r.cache = newCacheIndex(r.store)
	r.load = newLoadGuard(opts.LoadSampler)
	r.loads = newLoader(r, res)
	watch.acquire()
	argv := make([]starlark.Value, len(opts.Argv))
	for i, a := range opts.Argv {
		argv[i] = starlark.String(a)
	}
	r.argv = starlark.NewList(argv)
	r.argv.Freeze()
	r.surface = builtins.Predeclared(engine{r})
	if opts.Remote {
		if err := r.openRemote(); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// lockedWriter serializes writes from concurrent thread bodies.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	if l.w == nil {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// warn writes a notice to Stderr.
func (r *Runtime) warn(format string, args ...any) {
	fmt.Fprintf(r.stderr, "autonode: "+format+"\n", args...)
}

// Close waits for every pending and running thread to end (their TTLs
// bound the wait; cancel the context given to ExecFile, Eval or Spawn to
// stop them sooner), then stops the runtime and closes the registry,
// which compacts it, unless it was given as Options.Store.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.closing.Store(true)
	r.monitor.wake()
	r.active.Wait()
	r.monitor.close()
	r.closeRemote()
	r.cancel()
	r.commits.close()
	r.load.close()
	r.execOnce.Do(func() {}) // no Exec is made after this
	if r.topExec != nil {
		r.topExec.Close()
	}
	r.loads.res.close()
	watch.release()
	if r.ownStore {
		return r.store.Close()
	}
	return nil
}

// Store returns the registry the runtime reads and writes.
func (r *Runtime) Store() registry.Store { return r.store }

// noTokenError says how to get a token; it matches registry.ErrTokenRequired.
type noTokenError struct{}

func (noTokenError) Error() string {
	return "no token: pass token=..., set AUTONODE_TOKEN, or use --token (create one with autonode token)"
}
func (noTokenError) Is(target error) bool { return target == registry.ErrTokenRequired }

// token returns tok, or the session token when tok is
// empty; a malformed token is an error.
func (r *Runtime) token(tok string) (string, error) {
	if tok == "" {
		tok = r.session
	}
	if tok == "" {
		return "", noTokenError{}
	}
	if err := registry.ValidateToken(tok); err != nil {
		return "", err
	}
	return tok, nil
}

// Thread-local keys. Values: *run for thread bodies, *topLevel for
// scripts' top levels, the script's file name for both.
const (
	localRun    = "autonode.run"
	localTop    = "autonode.top"
	localScript = "autonode.script"
)

// runKey marks a run's context (see run.Wait).
type runKey struct{}

// topLevel is the state of a top-level thread (ExecFile, Eval, Call, load).
type topLevel struct {
	// ctx is the context the thread's builtins spawn with: derived from
	// the caller's, so that it is this thread's alone (funcIndex.running
	// tells its spawns from those of other threads by it), with this
	// topLevel as its topCtxKey value.
	ctx context.Context
	mem *memAccount // the thread's memory account; nil for load()
}

// topCtxKey marks each top-level thread's own context (see topLevel.ctx).
type topCtxKey struct{}

// newTopLevel returns the state of a top-level thread run under ctx.
func newTopLevel(ctx context.Context, mem *memAccount) *topLevel {
	t := &topLevel{mem: mem}
	t.ctx = context.WithValue(ctx, topCtxKey{}, t)
	return t
}

func runOf(th *starlark.Thread) *run {
	if th == nil {
		return nil
	}
	j, _ := th.Local(localRun).(*run)
	return j
}

func topOf(th *starlark.Thread) *topLevel {
	if th == nil {
		return nil
	}
	t, _ := th.Local(localTop).(*topLevel)
	return t
}

// setupThread is the one place that gives a new Starlark thread its print,
// load, guard (step budget, memory) and cancellation by ctx; it returns
// the guard and a function that stops watching ctx. onStop, if not nil,
// is told why the guard stopped the thread, once.
func (r *Runtime) setupThread(th *starlark.Thread, ctx context.Context, mem *memAccount, onStop func(why error)) (*guard, func() bool) {
	th.Print = r.print
	th.Load = r.loads.load
	g := &guard{maxSteps: r.opts.MaxSteps, mem: mem, onStop: onStop, ctx: ctx}
	g.install(th)
	if ctx.Err() != nil { // done already: stop before the first step
		g.stop(th, context.Cause(ctx))
	}
	return g, context.AfterFunc(ctx, func() { g.stop(th, context.Cause(ctx)) })
}

// newTopThread returns a thread for a script's top level, and a function
// to call when it is done. The top level takes part in the process's
// memory emergencies (see memory.go) with its globals.
func (r *Runtime) newTopThread(ctx context.Context, name, script string) (*starlark.Thread, *guard, func()) {
	th := &starlark.Thread{Name: name}
	who := "the top level of " + name
	if script != "" {
		who = "the top level of " + script
	}
	mem := newMemAccount(who, nil, "", true)
	top := newTopLevel(ctx, mem)
	ctx = top.ctx
	th.SetLocal(localTop, top)
	if script != "" {
		th.SetLocal(localScript, script)
	}
	g, stop := r.setupThread(th, ctx, mem, nil)
	watch.register(mem)
	return th, g, func() {
		stop()
		watch.unregister(mem)
	}
}

// newBodyThread returns the thread that runs j's body: one new Thread per
// run (Threads are not safe for concurrent use, and a reused one keeps its
// step count and cancellation). Its guard charges the body's values to
// the run's budget and stops it by cancelling the run's context.
func (r *Runtime) newBodyThread(j *run, ctx context.Context, cancel context.CancelCauseFunc) (*starlark.Thread, func()) {
	th := &starlark.Thread{Name: "thread " + j.id.String()}
	th.SetLocal(localRun, j)
	if f, ok := j.fn.(*starlark.Function); ok {
		th.SetLocal(localScript, f.Position().Filename())
	}
	mem := newMemAccount("thread "+j.id.String(), j.ex.Budget(), j.budgetTx, false)
	slot, _ := ctx.Value(attemptKey{}).(*attemptAccount)
	if slot != nil {
		slot.mem.Store(mem)
	}
	_, stop := r.setupThread(th, ctx, mem, func(why error) { cancel(why) })
	th.Print = func(th *starlark.Thread, msg string) { // to the script's output and the thread's log
		r.print(th, msg)
		j.logOutput(registry.StreamPrint, msg)
	}
	watch.register(mem)
	return th, func() {
		stop()
		watch.unregister(mem)
		mem.release()
		if slot != nil {
			slot.mem.CompareAndSwap(mem, nil)
		}
	}
}

func (r *Runtime) print(_ *starlark.Thread, msg string) {
	fmt.Fprintln(r.stdout, msg)
}

// predeclared returns the names every file and snippet sees: the
// builtins, argv, the kernels module and what AddBuiltin and AddModule
// added. It is a fresh dictionary, so later additions never race with
// running code.
func (r *Runtime) predeclared() starlark.StringDict {
	d := make(starlark.StringDict, len(r.surface)+8)
	maps.Copy(d, r.surface)
	d["argv"] = r.argv
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.kernels) > 0 {
		d["kernels"] = r.kernelModule()
	}
	maps.Copy(d, r.extra)
	if _, ok := d["json"]; !ok {
		d["json"] = json.Module
	}
	return d
}

// readSource returns the bytes of src (string, []byte or io.Reader), or of
// the file when src is nil.
func readSource(filename string, src any) ([]byte, error) {
	switch s := src.(type) {
	case nil:
		return os.ReadFile(filename)
	case string:
		return []byte(s), nil
	case []byte:
		return s, nil
	case io.Reader:
		return io.ReadAll(s)
	}
	return nil, fmt.Errorf("%s: source of type %T; want nil, string, []byte or io.Reader", filename, src)
}

// ExecFile runs a Starlark file (src nil reads filename; otherwise a
// string, []byte or io.Reader) and returns its frozen globals, which also
// become visible to Eval and Call. Runtime errors are *starlark.EvalError
// (print err.Backtrace()); syntax errors are syntax.Error. Threads the
// script spawned with wait=False may still run when it returns; Close
// waits for them.
func (r *Runtime) ExecFile(ctx context.Context, filename string, src any) (starlark.StringDict, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	data, err := readSource(filename, src)
	if err != nil {
		return nil, err
	}
	f, err := dialect.Parse(filename, data, 0)
	if err != nil {
		return nil, err
	}
	fi := r.funcs.add(f, data)
	pre := r.predeclared()
	prog, err := starlark.FileProgram(f, pre.Has)
	if err != nil {
		return nil, err
	}
	r.funcs.bind(prog, fi)
	th, guard, done := r.newTopThread(ctx, "exec "+filename, filename)
	finished := r.funcs.running(fi, topOf(th).ctx)
	g, err := prog.Init(th, pre)
	finished()
	done()
	g.Freeze()
	if err != nil {
		return g, guard.wrap(err)
	}
	r.envMu.Lock()
	maps.Copy(r.env, g)
	r.envMu.Unlock()
	return g, nil
}

// Eval runs a snippet as a REPL does: an expression returns its value;
// statements run (returning None) and their globals persist for later
// Eval and Call calls.
func (r *Runtime) Eval(ctx context.Context, src string) (starlark.Value, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	r.evalMu.Lock()
	defer r.evalMu.Unlock()
	// Each snippet gets its own file name, so that functions from
	// different snippets never share a position.
	r.evals++
	name := "<eval>"
	if r.evals > 1 {
		name = fmt.Sprintf("<eval#%d>", r.evals)
	}
	f, err := dialect.Parse(name, src, 0)
	if err != nil {
		return nil, err
	}
	fi := r.funcs.add(f, []byte(src))
	pre := r.predeclared()
	env := make(starlark.StringDict, len(pre)+len(r.env))
	maps.Copy(env, pre)
	r.envMu.Lock()
	maps.Copy(env, r.env)
	r.envMu.Unlock()
	th, guard, done := r.newTopThread(ctx, "eval", name)
	defer done()
	defer r.funcs.running(fi, topOf(th).ctx)()
	if len(f.Stmts) == 1 {
		if es, ok := f.Stmts[0].(*syntax.ExprStmt); ok {
			v, err := starlark.EvalExprOptions(&dialect, th, es.X, env)
			return v, guard.wrap(err)
		}
	}
	err = guard.wrap(starlark.ExecREPLChunk(f, th, env))
	r.envMu.Lock()
	for k, v := range env {
		if pv, ok := pre[k]; !ok || pv != v {
			r.env[k] = v
		}
	}
	r.envMu.Unlock()
	if err != nil {
		return nil, err
	}
	return starlark.None, nil
}

// Call calls the global function name (from ExecFile or Eval) with args,
// on a new top-level thread bound to ctx.
func (r *Runtime) Call(ctx context.Context, name string, args ...starlark.Value) (starlark.Value, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	r.envMu.Lock()
	fn, ok := r.env[name]
	r.envMu.Unlock()
	if !ok {
		fn, ok = r.predeclared()[name]
	}
	if !ok {
		return nil, fmt.Errorf("call %s: no such global", name)
	}
	script := ""
	if f, ok := fn.(*starlark.Function); ok {
		script = f.Position().Filename()
	}
	th, guard, done := r.newTopThread(ctx, "call "+name, script)
	defer done()
	v, err := starlark.Call(th, fn, args, nil)
	return v, guard.wrap(err)
}

// Globals returns a copy of the globals defined by ExecFile and Eval.
func (r *Runtime) Globals() starlark.StringDict {
	r.envMu.Lock()
	defer r.envMu.Unlock()
	return maps.Clone(r.env)
}

// AddBuiltin makes a Go function callable from Starlark as name. Starlark
// resolves names when it compiles, so add builtins before running the code
// that uses them. The function may run on several goroutines at once.
func (r *Runtime) AddBuiltin(name string, fn func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extra[name] = starlark.NewBuiltin(name, fn)
}

// AddModule predeclares a module: a value whose attributes are members
// (name.member in Starlark). The members are frozen, since every thread
// shares them.
func (r *Runtime) AddModule(name string, members starlark.StringDict) {
	m := maps.Clone(members)
	m.Freeze()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extra[name] = &starlarkstruct.Module{Name: name, Members: m}
}

// Cancel stops a pending, waiting or running thread; tok (or the session
// token) must open it. A thread of this runtime stops at once (a running
// one at its next instruction). For a thread of another process the
// request is recorded in its record (registry.Tx.RequestCancel): a
// pending or waiting one is cancelled at once, a running one is stopped by
// its process within a second. A thread that has ended is an error.
func (r *Runtime) Cancel(id registry.ID, tok string) error {
	tok, err := r.token(tok)
	if err != nil {
		return fmt.Errorf("cancel: token: %w", err)
	}
	if err := r.authorize(id, tok); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	r.mu.Lock()
	j := r.runs[id]
	r.mu.Unlock()
	if j != nil {
		if err := j.cancelRun(); err != nil {
			return fmt.Errorf("cancel: %w", err)
		}
		return nil
	}
	by := "cancel() in " + r.owner
	return r.store.Update(func(tx *registry.Tx) error {
		_, _, err := tx.RequestCancel(id, tok, by, r.alive)
		return err
	})
}

// errCheckOnly aborts a transaction used only to check a token.
var errCheckOnly = errors.New("check only")

// authorize reports whether tok opens thread id, writing nothing.
func (r *Runtime) authorize(id registry.ID, tok string) error {
	err := r.store.Update(func(tx *registry.Tx) error {
		t, err := tx.Get(id)
		if err != nil {
			return fmt.Errorf("thread %s: %w", id, registry.ErrAccess)
		}
		if err := tx.Put(t, tok); err != nil {
			return err
		}
		return errCheckOnly
	})
	if errors.Is(err, errCheckOnly) {
		return nil
	}
	return err
}

// running returns the record of the thread whose body runs on th.
func (r *Runtime) running(th *starlark.Thread) *registry.Thread {
	if j := runOf(th); j != nil {
		return j.snapshot()
	}
	return nil
}

// logLine: msg is appended to the running thread's
// history at once and persisted with the next registry commit.
func (r *Runtime) logLine(th *starlark.Thread, msg string) error {
	j := runOf(th)
	if j == nil {
		return fmt.Errorf("log: not inside a thread body")
	}
	j.mu.Lock()
	state := j.state
	j.mu.Unlock()
	if state != stateRunning {
		return fmt.Errorf("log: thread %s is not running", j.id)
	}
	j.appendLine(stamp("%s", msg))
	j.logOutput(registry.StreamLog, msg)
	return nil
}

// logMetric records a point of the running thread's metric.
func (r *Runtime) logMetric(th *starlark.Thread, name string, value float64, step *int64) (int64, error) {
	j := runOf(th)
	if j == nil {
		return 0, fmt.Errorf("not inside a thread body")
	}
	p, err := j.logMetric(name, value, step)
	if err != nil {
		return 0, err
	}
	return p.Step, nil
}

// hostAccess decides host access (DESIGN §6; builtins.Engine.HostAccess). fn is the host
// function's name ("read_file"); the error does not repeat it, since the
// builtin prefixes its own name ("host.read_file: refused: ...").
func (r *Runtime) hostAccess(th *starlark.Thread, fn string) error {
	full := fn
	if !strings.Contains(full, ".") { // "read_file"; "accel.save" stays itself
		full = "host." + fn
	}
	if j := runOf(th); j != nil {
		if j.sandbox {
			return fmt.Errorf("refused: thread %s is sandboxed; spawn it with sandbox=False to allow host access", j.id)
		}
		j.mu.Lock()
		first := !j.elevated[full]
		if first {
			if j.elevated == nil {
				j.elevated = map[string]bool{}
			}
			j.elevated[full] = true
		}
		j.mu.Unlock()
		if first {
			j.appendLine(stamp("Elevated: the unsandboxed body called %s.", full))
		}
		return nil
	}
	if topOf(th) != nil {
		if r.opts.TopLevelHost {
			return nil
		}
		return fmt.Errorf("refused: the embedding application does not allow host access from a script's top level")
	}
	return fmt.Errorf("refused: the caller is neither a script's top level nor a thread body")
}

// checkRecord: under Options.ForbidUnsandboxed
// a lineage operation may not write an unsandboxed record.
func (r *Runtime) checkRecord(t *registry.Thread) error {
	if r.opts.ForbidUnsandboxed && !t.Sandbox {
		return fmt.Errorf("thread %s would be unsandboxed (sandbox=False): %w", t.ID, ErrUnsandboxedForbidden)
	}
	return nil
}

// accelExec: a thread body gets its run's Exec (its
// device and memory budget, closed when the run ends); a top level gets
// the session's CPU Exec, which lives until Close.
func (r *Runtime) accelExec(th *starlark.Thread) *accel.Exec {
	if j := runOf(th); j != nil {
		j.mu.Lock()
		ex := j.ex
		j.mu.Unlock()
		if ex != nil {
			return ex
		}
	}
	r.execOnce.Do(func() { r.topExec = accel.New(accel.Options{Busy: busyFor}) })
	return r.topExec
}

// context returns the context that ends th's work.
func (r *Runtime) contextOf(th *starlark.Thread) context.Context {
	if j := runOf(th); j != nil {
		j.mu.Lock()
		ctx := j.ctx
		j.mu.Unlock()
		if ctx != nil {
			return ctx
		}
	}
	if t := topOf(th); t != nil {
		return t.ctx
	}
	return r.ctx
}

// Threads returns the ids of the threads pending or running in this
// runtime, in id order.
func (r *Runtime) Threads() []registry.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.runs))
}
