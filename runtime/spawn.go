package runtime

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/autonode/autonode/registry"
)

// plan is a validated spawn request: everything but the id, which may be
// chosen inside the transaction that creates the thread.
type plan struct {
	fn       string // builtin name for messages: spawn, spawn_batch
	req      *SpawnRequest
	id       *registry.ID
	stage    string
	device   string // as recorded: "gpu" for CRITICAL threads
	switched bool   // CRITICAL moved the thread to the GPU
	name     string
	priority int64
	ttl      float64
	sandbox  bool
	caching  bool
	metadata map[string]any
	tok      string
	budgetMB float64
	budgetTx string
	choice   deviceChoice
	cacheKey string
	cacheWhy string   // why a caching thread has no key
	parent   *run     // the running thread whose body spawns this one
	notes    []string // history lines about limits applied
}

// prepare validates req with DESIGN §3's rules and defaults. Errors name
// the builtin and the parameter: `spawn: stage: got "FAST", want one of
// CRITICAL, CORE, BASE`.
func (r *Runtime) prepare(fn string, req *SpawnRequest) (*plan, error) {
	if req == nil {
		return nil, fmt.Errorf("%s: no request", fn)
	}
	p := &plan{fn: fn, req: req, sandbox: req.Sandbox, caching: req.Caching, priority: req.Priority, ttl: req.TTL, name: req.Name}
	tok, err := r.token(req.Token)
	if err != nil {
		return nil, fmt.Errorf("%s: token: %w", fn, err)
	}
	p.tok = tok
	if req.ID != nil {
		if err := registry.ValidateID(float64(*req.ID)); err != nil {
			return nil, fmt.Errorf("%s: id: %w", fn, err)
		}
		id := *req.ID + 0
		p.id = &id
	}
	p.stage = req.Stage
	if p.stage == "" {
		p.stage = registry.StageBase
	}
	p.device = strings.ToLower(strings.TrimSpace(req.Device))
	if p.device == "" {
		p.device = "cpu"
	}
	for _, err := range []error{registry.ValidateStage(p.stage), registry.ValidateDevice(p.device),
		registry.ValidatePriority(p.priority), registry.ValidateTTL(p.ttl)} {
		if err != nil {
			return nil, invalid(fn, err)
		}
	}
	if p.stage == registry.StageCritical && p.device == "cpu" {
		p.device, p.switched = "gpu", true
	}
	if p.parent = runOf(req.Caller); p.parent != nil {
		if err := p.inherit(); err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
	}
	if p.name != "" {
		if err := registry.ValidateName(p.name); err != nil {
			return nil, invalid(fn, err)
		}
	}
	p.metadata = req.Metadata
	if p.metadata == nil {
		p.metadata = map[string]any{}
	}
	if p.budgetMB, p.budgetTx, err = memoryBudget(p.metadata); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if n := machineNote(p.budgetMB); n != "" {
		p.notes = append(p.notes, n)
	}
	probe := p.record(1)
	if p.id != nil {
		probe.ID = *p.id
	}
	if err := probe.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if !p.sandbox {
		if r.opts.ForbidUnsandboxed {
			return nil, fmt.Errorf("%s: sandbox: %w", fn, ErrUnsandboxedForbidden)
		}
		if p.parent != nil && p.parent.sandbox {
			return nil, fmt.Errorf("%s: sandbox: thread %s is sandboxed and cannot spawn an unsandboxed thread", fn, p.parent.id)
		}
	}
	// The body and its arguments will run on another goroutine: freeze
	// them, and the module globals the body can reach.
	r.funcs.freezeReachable(req.Run)
	for _, a := range req.Args {
		r.funcs.freezeValue(a, 0)
	}
	for _, kv := range req.Kwargs {
		for _, v := range kv {
			r.funcs.freezeValue(v, 0)
		}
	}
	p.choice = chooseDevice(p.device)
	if p.caching && !req.DryRun {
		p.cacheKey, p.cacheWhy = r.cacheKey(req, p.device, p.metadata)
		if p.cacheKey != "" {
			if err := r.cache.ensure(); err != nil {
				p.cacheKey, p.cacheWhy = "", "the registry could not be indexed ("+err.Error()+")"
			}
		}
	}
	return p, nil
}

// invalid words a registry validator's refusal for builtin fn, as the
// builtins do: "spawn: stage: got \"FAST\", want one of CRITICAL, CORE,
// BASE". It still matches registry.ErrInvalid.
func invalid(fn string, err error) error {
	var fe *registry.FieldError
	if errors.As(err, &fe) {
		return &wrapError{msg: fn + ": " + fe.Text(), err: err}
	}
	return fmt.Errorf("%s: %w", fn, err)
}

// wrapError is err with another text.
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }

// record builds the new thread's record, with the seed's history lines.
func (p *plan) record(id registry.ID) *registry.Thread {
	t := registry.NewThread(id, p.stage)
	t.Device, t.Sandbox, t.Caching, t.Priority, t.TTL = p.device, p.sandbox, p.caching, p.priority, p.ttl
	t.Metadata = p.metadata
	if p.name != "" {
		t.Name = p.name
	}
	t.History = append(t.History, stamp("Thread '%s' initialized with priority %d.", t.Name, t.Priority))
	if p.switched {
		t.History = append(t.History, stamp("Stage is CRITICAL. Auto-switching to GPU."))
	}
	t.History = append(t.History, stamp("Spawning '%s' | ID: %s | Device: %s | Stage: %s | Priority: %d | TTL: %ss | Metadata: %s",
		t.Name, id, deviceLabel(t.Device), t.Stage, t.Priority, registry.PyFloat(t.TTL), pyRepr(t.Metadata)))
	if p.choice.note != "" {
		t.History = append(t.History, stamp("%s", p.choice.note))
	}
	for _, n := range p.notes {
		t.History = append(t.History, stamp("%s", n))
	}
	if p.caching && p.cacheKey == "" && p.cacheWhy != "" {
		t.History = append(t.History, stamp("Caching skipped: %s.", strings.TrimSuffix(p.cacheWhy, ".")))
	}
	t.Status = registry.StatusPending
	t.CacheKey = p.cacheKey
	return t
}

// newRun makes the run for a plan; it is not yet created or submitted.
// The run is stopped when ctx, its spawner's context, ends: for a thread
// spawned by a body, when that body's thread ends (DESIGN §4).
func (r *Runtime) newRun(ctx context.Context, p *plan) *run {
	j := &run{
		r: r, tok: p.tok, fn: p.req.Run, args: p.req.Args, kwargs: p.req.Kwargs,
		sandbox: p.sandbox, ttl: p.ttl, budgetMB: p.budgetMB, budgetTx: p.budgetTx,
		device: p.choice, cacheKey: p.cacheKey, parentRun: p.parent,
		rank: stageRank(p.stage), priority: p.priority, seq: r.seq.Add(1), heapIdx: -1,
		done: make(chan struct{}), unwatch: func() bool { return false },
	}
	j.spawner = ctx
	j.base, j.cancelBase = context.WithCancelCause(context.WithoutCancel(ctx))
	j.tree = &spawnTree{}
	if p.parent != nil {
		j.tree = p.parent.tree
	}
	j.pool = r.cpuPool
	if p.choice.gpu {
		j.pool = r.gpuPool
	}
	return j
}

// watchSpawner stops j when ctx, its spawner's context, ends. It is
// called once j is created (and tracked), so that the stop finds it.
func (j *run) watchSpawner(ctx context.Context) {
	j.mu.Lock()
	j.unwatch = context.AfterFunc(ctx, func() { _ = j.stop(spawnerCause(ctx)) })
	j.mu.Unlock()
}

// createFn is the transaction step that creates j's thread: it picks the
// id when none was given, reuses a cached result when one matches, and
// creates the record owned by the thread's token and the session token.
func (r *Runtime) createFn(p *plan, j *run) func(tx *registry.Tx) error {
	return func(tx *registry.Tx) error {
		if j.spawner.Err() != nil { // interrupted while its batch waited
			return fmt.Errorf("%s: not created: %w", p.fn, spawnerCause(j.spawner))
		}
		var id registry.ID
		if p.id != nil {
			id = *p.id
		} else {
			id = r.commits.nextID(tx)
		}
		t := p.record(id)
		if p.cacheKey != "" {
			if src, ok := r.cache.lookup(tx, p.cacheKey); ok {
				now := nowRFC3339()
				t.Status, t.Cached, t.Result, t.DeviceUsed = registry.StatusCached, true, src.Result, src.DeviceUsed
				t.StartedAt, t.FinishedAt = now, now
				t.History = append(t.History, stamp("Cache hit: reusing the result of thread %s (same body, arguments, device and script source); not run.", src.ID))
			}
		}
		if t.Status == registry.StatusPending {
			t.Owner = r.owner // the process that will run it
		}
		if err := tx.Create(t, p.tok, r.session); err != nil {
			return fmt.Errorf("%s: %w", p.fn, err)
		}
		r.commits.used(id)
		j.id, j.rec = id, t
		if p.parent == nil {
			j.tree.root = id
		}
		return nil
	}
}

// launch starts a created run: a cached one ends at once; any other is
// tracked (so that cancel() finds it) and, with submit, queued.
func (r *Runtime) launch(j *run, submit bool) {
	if j.rec.Status == registry.StatusCached {
		j.state = stateDone
		j.final = j.rec.Clone()
		close(j.done)
		r.active.Done()
		return
	}
	r.mu.Lock()
	r.runs[j.id] = j
	r.mu.Unlock()
	if p := j.parentRun; p != nil {
		p.mu.Lock()
		if p.state == stateRunning {
			p.kids = append(p.kids, j)
			p.mu.Unlock()
		} else {
			p.mu.Unlock()
			_ = j.stop(&parentEndedError{parent: p.id, why: errRunEnded})
		}
	}
	j.watchSpawner(j.spawner) // a spawner already done stops it at once
	if submit {
		j.submitted.Store(true)
		j.pool.submit(j)
	}
}

// forget drops a run that has ended.
func (r *Runtime) forget(j *run) {
	r.mu.Lock()
	if r.runs[j.id] == j {
		delete(r.runs, j.id)
	}
	r.mu.Unlock()
	r.active.Done()
}

// enter registers a thread about to be created; it fails once Close has
// begun.
func (r *Runtime) enter(fn string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("%s: %w", fn, errCommitterClosed)
	}
	r.active.Add(1)
	return nil
}

// dryRun validates only: the handle holds the record the thread would
// get, with status dry_run; nothing is persisted or run.
func (r *Runtime) dryRun(p *plan) (*run, error) {
	id := registry.ID(0)
	if p.id != nil {
		id = *p.id
	} else if err := r.store.View(func(tx *registry.Tx) error { id = tx.NextID(); return nil }); err != nil {
		return nil, fmt.Errorf("%s: %w", p.fn, err)
	}
	t := p.record(id)
	t.Status = registry.StatusDryRun
	t.History = append(t.History, stamp("Dry run: validated; not run or persisted."))
	j := &run{r: r, id: id, rec: t, final: t, state: stateDone, heapIdx: -1, done: make(chan struct{})}
	close(j.done)
	return j, nil
}

// Spawn validates req, refuses when the
// machine is overloaded, persists the thread (pending, or cached when an
// earlier run with the same key can be reused) and queues it. With
// req.Wait it returns once the thread has ended (or ctx is done).
func (r *Runtime) Spawn(ctx context.Context, req *SpawnRequest) (Handle, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	p, err := r.prepare("spawn", req)
	if err != nil {
		return nil, err
	}
	if req.DryRun {
		h, err := r.dryRun(p)
		if err != nil {
			return nil, err
		}
		return h, nil
	}
	if err := r.load.check("spawn"); err != nil {
		return nil, err
	}
	if err := r.reserveSpawn("spawn", p.parent); err != nil {
		return nil, err
	}
	if err := r.enter("spawn"); err != nil {
		releaseSpawn(p.parent)
		return nil, err
	}
	j := r.newRun(ctx, p)
	if err := r.commits.commit1(r.createFn(p, j)); err != nil {
		releaseSpawn(p.parent)
		r.active.Done()
		return nil, err
	}
	r.launch(j, true)
	if req.Wait {
		_, _ = j.Wait(ctx) // a ctx error shows again in the caller's Wait
	}
	return j, nil
}

// SpawnBatch: every request is validated and
// created (in one registry transaction), then run concurrently, at most
// workers at a time when workers > 0. One result per request, in order;
// a refused request carries its error and never stops the others.
func (r *Runtime) SpawnBatch(ctx context.Context, reqs []*SpawnRequest, workers int) []BatchResult {
	if ctx == nil {
		ctx = context.Background()
	}
	const fn = "spawn_batch"
	out := make([]BatchResult, len(reqs))
	var (
		fns  []func(tx *registry.Tx) error
		jobs []*run
		idx  []int
	)
	for i, req := range reqs {
		if ctx.Err() != nil {
			out[i].Err = fmt.Errorf("%s: not created: %w", fn, spawnerCause(ctx))
			continue
		}
		p, err := r.prepare(fn, req)
		if err != nil {
			out[i].Err = err
			continue
		}
		if req.DryRun {
			h, err := r.dryRun(p)
			out[i] = BatchResult{Handle: h, Err: err}
			if err != nil {
				out[i].Handle = nil
			}
			continue
		}
		if err := r.load.check(fn); err != nil {
			out[i].Err = err
			continue
		}
		if err := r.reserveSpawn(fn, p.parent); err != nil {
			out[i].Err = err
			continue
		}
		if err := r.enter(fn); err != nil {
			releaseSpawn(p.parent)
			out[i].Err = err
			continue
		}
		j := r.newRun(ctx, p)
		fns = append(fns, r.createFn(p, j))
		jobs = append(jobs, j)
		idx = append(idx, i)
	}
	if len(fns) == 0 {
		return out
	}
	errs := r.commits.commit(fns...)
	var created []*run
	for k, j := range jobs {
		if errs[k] != nil {
			out[idx[k]].Err = errs[k]
			releaseSpawn(j.parentRun)
			r.active.Done()
			continue
		}
		out[idx[k]].Handle = j
		created = append(created, j)
	}
	r.reportProgress("spawn_batch", created)
	if workers <= 0 || workers >= len(created) {
		for _, j := range created {
			r.launch(j, true)
		}
		return out
	}
	f := &feeder{limit: workers}
	for _, j := range created {
		r.launch(j, false)
		if j.rec.Status != registry.StatusCached {
			f.jobs = append(f.jobs, j)
		}
	}
	sort.SliceStable(f.jobs, func(a, b int) bool { return runQueue(f.jobs).Less(a, b) })
	f.feed()
	return out
}

// reportProgress tells Options.Progress how the runs of a batch end.
func (r *Runtime) reportProgress(label string, runs []*run) {
	report := r.opts.Progress
	if report == nil || len(runs) == 0 {
		return
	}
	report(label, 0, len(runs))
	go func() {
		for i, j := range runs {
			j.Wait(context.Background())
			report(label, i+1, len(runs))
		}
	}()
}

// feeder submits a batch's runs at most limit at a time, in scheduling
// order, submitting the next as each ends.
type feeder struct {
	mu       sync.Mutex
	jobs     []*run
	next     int
	inflight int
	limit    int
}

func (f *feeder) feed() {
	var submit []*run
	f.mu.Lock()
	for f.inflight < f.limit && f.next < len(f.jobs) {
		j := f.jobs[f.next]
		f.next++
		j.mu.Lock()
		if j.state != statePending { // cancelled while it waited here
			j.mu.Unlock()
			continue
		}
		j.onEnd = f.ended
		j.submitted.Store(true)
		j.mu.Unlock()
		f.inflight++
		submit = append(submit, j)
	}
	f.mu.Unlock()
	for _, j := range submit {
		j.pool.submit(j)
	}
}

func (f *feeder) ended() {
	f.mu.Lock()
	f.inflight--
	f.mu.Unlock()
	f.feed()
}
