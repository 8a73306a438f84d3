package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/autonode/autonode/registry"
)

// plan is a validated spawn request: everything but the id, which may be
// chosen inside the transaction that creates the thread.
type plan struct {
	fn       string // builtin name for messages: spawn, spawn_batch, run
	req      *SpawnRequest
	id       *registry.ID
	existing *registry.Thread // the thread this is a new attempt of; nil for a new one
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
	// memoryAsked: the metadata sets max_memory_mb, so the thread waits
	// for that much free memory before it starts (admission).
	memoryAsked bool
	choice      deviceChoice
	cacheKey    string
	cacheWhy    string   // why a caching thread has no key
	parent      *run     // the running thread whose body spawns this one
	notes       []string // history lines about limits applied
	retry       registry.RetryPolicy
	after       []registry.ID
	remote      *remotePlan // the body as it travels to workers (remote.go)
}

// given reports whether the request sets field f (Given nil: every field).
func given(req *SpawnRequest, f string) bool {
	return req.Given == nil || slices.Contains(req.Given, f)
}

// merged returns req with the fields it does not give taken from old, the
// thread it is a new attempt of.
func merged(req *SpawnRequest, old *registry.Thread) *SpawnRequest {
	m := *req
	keep := func(f string, set func()) {
		if !given(req, f) {
			set()
		}
	}
	keep("stage", func() { m.Stage = old.Stage })
	keep("device", func() { m.Device = old.Device })
	keep("sandbox", func() { m.Sandbox = old.Sandbox })
	keep("caching", func() { m.Caching = old.Caching })
	keep("priority", func() { m.Priority = old.Priority })
	keep("ttl", func() { m.TTL = old.TTL })
	keep("metadata", func() { m.Metadata = old.Metadata })
	keep("name", func() { m.Name = old.Name })
	keep("after", func() { m.After = old.After })
	if p := old.Retry; p != nil {
		keep("retries", func() { m.Retries = p.Retries })
		keep("retry_delay", func() { m.RetryDelay = p.Delay })
		keep("backoff", func() { m.Backoff = p.Backoff })
		keep("max_delay", func() { m.MaxDelay = p.MaxDelay })
	}
	return &m
}

// prepare validates req with DESIGN §3's rules and defaults; old is the
// thread it is a new attempt of (nil for a new thread), whose fields fill
// in what req does not give. Errors name the builtin and the parameter:
// `spawn: stage: got "FAST", want one of CRITICAL, CORE, BASE`.
func (r *Runtime) prepare(ctx context.Context, fn string, req *SpawnRequest, old *registry.Thread) (*plan, error) {
	if req == nil {
		return nil, fmt.Errorf("%s: no request", fn)
	}
	if old != nil {
		req = merged(req, old)
	}
	p := &plan{fn: fn, req: req, existing: old, sandbox: req.Sandbox, caching: req.Caching, priority: req.Priority, ttl: req.TTL, name: req.Name}
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
	p.retry = registry.RetryPolicy{Retries: req.Retries, Delay: req.RetryDelay, Backoff: req.Backoff, MaxDelay: req.MaxDelay}
	if p.retry.Retries != 0 || req.RetryOn != nil {
		if err := p.retry.Validate(); err != nil {
			return nil, invalid(fn, err)
		}
	}
	for i, a := range req.After {
		if err := registry.ValidateID(float64(a)); err != nil {
			return nil, fmt.Errorf("%s: after[%d]: %w", fn, i, err)
		}
		if p.id != nil && a == *p.id {
			return nil, fmt.Errorf("%s: after[%d]: thread %s cannot wait for itself", fn, i, a)
		}
		if !slices.Contains(p.after, a+0) {
			p.after = append(p.after, a+0)
		}
	}
	if p.parent = runOf(req.Caller); p.parent != nil {
		if old != nil && p.parent.sandbox {
			return nil, fmt.Errorf("%s: refused: thread %s is sandboxed and may spawn only new threads; running thread %s again changes the registry (spawn it with sandbox=False)", fn, p.parent.id, old.ID)
		}
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
	_, p.memoryAsked = p.metadata["max_memory_mb"]
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
	gr := r.funcs.reader(ctx)
	r.funcs.freezeReachable(req.Run, gr)
	r.funcs.freezeReachable(req.RetryOn, gr)
	for _, a := range req.Args {
		r.funcs.freezeValue(a, 0, gr)
	}
	for _, kv := range req.Kwargs {
		for _, v := range kv {
			r.funcs.freezeValue(v, 0, gr)
		}
	}
	p.choice = chooseDevice(p.device)
	if p.caching && !req.DryRun {
		p.cacheKey, p.cacheWhy = r.cacheKey(req, p.device, p.metadata, gr)
		if p.cacheKey != "" {
			if err := r.cache.ensure(); err != nil {
				p.cacheKey, p.cacheWhy = "", "the registry could not be indexed ("+err.Error()+")"
			}
		}
	}
	if err := r.planRemote(p, gr); err != nil {
		return nil, err
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

// spawnLines are the seed's history lines of a spawn, and AutoNode's notes
// on the device, limits and caching.
func (p *plan) spawnLines(t *registry.Thread) []string {
	lines := []string{stamp("Spawning '%s' | ID: %s | Device: %s | Stage: %s | Priority: %d | TTL: %ss | Metadata: %s",
		t.Name, t.ID, deviceLabel(t.Device), t.Stage, t.Priority, registry.PyFloat(t.TTL), pyRepr(t.Metadata))}
	if p.choice.note != "" {
		lines = append(lines, stamp("%s", p.choice.note))
	}
	for _, n := range p.notes {
		lines = append(lines, stamp("%s", n))
	}
	if p.caching && p.cacheKey == "" && p.cacheWhy != "" {
		lines = append(lines, stamp("Caching skipped: %s.", strings.TrimSuffix(p.cacheWhy, ".")))
	}
	if p.retry.Retries > 0 {
		lines = append(lines, stamp("Retries: up to %d, after %ss, times %s each retry, at most %ss.",
			p.retry.Retries, registry.PyFloat(p.retry.Delay), registry.PyFloat(p.retry.Backoff), registry.PyFloat(p.retry.MaxDelay)))
	}
	if len(p.after) > 0 {
		lines = append(lines, stamp("Runs after %s succeed.", registry.JoinIDs(p.after)))
	}
	return lines
}

// apply sets the plan's run fields on t: pending (or waiting for its
// dependencies), no result yet, the plan's retry policy, dependencies and
// cache key.
func (p *plan) apply(t *registry.Thread) {
	t.Status = registry.StatusPending
	if len(p.after) > 0 {
		t.Status = registry.StatusWaiting
	}
	t.Result, t.Error, t.StartedAt, t.FinishedAt, t.DurationMS, t.DeviceUsed = nil, "", "", "", 0, ""
	t.Cached, t.CancelRequest = false, nil
	t.CacheKey = p.cacheKey
	t.After = slices.Clone(p.after)
	t.Retry = nil
	if p.retry.Retries > 0 {
		r := p.retry
		t.Retry = &r
	}
}

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
	t.History = append(t.History, p.spawnLines(t)...)
	p.apply(t)
	return t
}

// again builds the record of a new attempt of old: the plan's fields
// (what the caller changed is said in the history), the history kept.
func (p *plan) again(old *registry.Thread) *registry.Thread {
	t := old.Clone()
	var changed []string
	set := func(field string, differs bool, from, to string) {
		if differs {
			changed = append(changed, fmt.Sprintf("%s %s -> %s", field, from, to))
		}
	}
	set("stage", t.Stage != p.stage, t.Stage, p.stage)
	set("device", t.Device != p.device, t.Device, p.device)
	set("sandbox", t.Sandbox != p.sandbox, pyRepr(t.Sandbox), pyRepr(p.sandbox))
	set("caching", t.Caching != p.caching, pyRepr(t.Caching), pyRepr(p.caching))
	set("priority", t.Priority != p.priority, fmt.Sprint(t.Priority), fmt.Sprint(p.priority))
	set("ttl", t.TTL != p.ttl, registry.PyFloat(t.TTL), registry.PyFloat(p.ttl))
	if a, b := pyRepr(t.Metadata), pyRepr(p.metadata); a != b {
		set("metadata", true, a, b)
	}
	var was registry.RetryPolicy
	if t.Retry != nil {
		was = *t.Retry
	}
	if was.Retries != p.retry.Retries || p.retry.Retries > 0 && was != p.retry {
		set("retries", true, retryText(was), retryText(p.retry))
	}
	if a, b := registry.JoinIDs(t.After), registry.JoinIDs(p.after); a != b {
		set("after", true, "["+a+"]", "["+b+"]")
	}
	if p.name != "" && p.name != t.Name {
		set("name", true, registry.PyRepr(t.Name), registry.PyRepr(p.name))
		t.Name = p.name
	}
	t.Stage, t.Device, t.Sandbox, t.Caching, t.Priority, t.TTL = p.stage, p.device, p.sandbox, p.caching, p.priority, p.ttl
	t.Metadata = p.metadata
	how := "Spawned again by spawn(id=" + t.ID.String() + ")"
	if p.req.Rerun {
		how = "Run again by run()"
	}
	if len(changed) > 0 {
		how += ", with changed fields: " + strings.Join(changed, ", ")
	} else {
		how += ", fields unchanged"
	}
	if c := t.CancelRequest; c != nil && !registry.Final(t.Status) {
		how += fmt.Sprintf("; the cancel request of %s by %s is cleared", c.At, c.By)
	}
	t.History = append(t.History, stamp("%s (it was %s; attempt %d follows).", how, t.EffectiveStatus(), len(t.Attempts)+1))
	t.History = append(t.History, p.spawnLines(t)...)
	p.apply(t)
	return t
}

// retryText describes a retry policy for history lines.
func retryText(p registry.RetryPolicy) string {
	if p.Retries == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (delay %ss, backoff %s, at most %ss)", p.Retries, registry.PyFloat(p.Delay), registry.PyFloat(p.Backoff), registry.PyFloat(p.MaxDelay))
}

// newRun makes the run for a plan; it is not yet created or submitted.
// The run is stopped when ctx, its spawner's context, ends: for a thread
// spawned by a body, when that body's thread ends (DESIGN §4).
func (r *Runtime) newRun(ctx context.Context, p *plan) *run {
	j := &run{
		r: r, tok: p.tok, fn: p.req.Run, args: p.req.Args, kwargs: p.req.Kwargs,
		sandbox: p.sandbox, ttl: p.ttl, budgetMB: p.budgetMB, budgetTx: p.budgetTx, memoryAsked: p.memoryAsked,
		device: p.choice, cacheKey: p.cacheKey, parentRun: p.parent, retry: p.retry, retryOn: p.req.RetryOn,
		after: p.after, rank: stageRank(p.stage), priority: p.priority, seq: r.seq.Add(1), heapIdx: -1,
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
	j.unwatch = j.r.spawners.add(ctx, j)
	j.mu.Unlock()
}

// lookupExisting returns the record of the thread req names, when it
// exists (nil otherwise). A run() of a thread that does not exist is an
// error that says so (and where a deleted one is).
func (r *Runtime) lookupExisting(fn string, req *SpawnRequest) (*registry.Thread, error) {
	if req == nil {
		return nil, nil
	}
	if req.ID == nil || registry.ValidateID(float64(*req.ID)) != nil {
		if req.Rerun && req.ID == nil {
			return nil, fmt.Errorf("%s: id: missing; name the thread to run", fn)
		}
		return nil, nil // prepare says what is wrong with the id
	}
	id := *req.ID
	var out *registry.Thread
	var missing error
	err := r.store.View(func(tx *registry.Tx) error {
		t, err := tx.Get(id)
		switch {
		case err == nil:
			out = t
		case !errors.Is(err, registry.ErrNotFound):
			return err
		case req.Rerun:
			if _, aerr := tx.Archived(id); aerr == nil {
				missing = fmt.Errorf("%s: thread %s is in the archive (deleted); restore() it first", fn, id)
			} else {
				missing = fmt.Errorf("%s: thread %s: %w", fn, id, registry.ErrNotFound)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return out, missing
}

// activeError refuses a new attempt of a thread that is pending, waiting
// or running in a live process.
func (r *Runtime) activeError(fn string, t *registry.Thread) error {
	r.mu.Lock()
	_, here := r.runs[t.ID]
	r.mu.Unlock()
	if here {
		return fmt.Errorf("%s: thread %s is %s in this process; wait for it, or cancel it, before running it again", fn, t.ID, t.EffectiveStatus())
	}
	if err := r.queuedError(fn, t); err != nil {
		return err
	}
	if registry.Final(t.Status) || t.Status == "" || t.Owner == "" && t.Status != registry.StatusRunning || !r.alive(t.Owner) {
		return nil // ended, never queued (a branch), or its process is gone
	}
	return fmt.Errorf("%s: thread %s is %s in another process (%s); wait for it, or cancel it (autonode cancel %s), before running it again", fn, t.ID, t.Status, t.Owner, t.ID)
}

// createFn is the transaction step that creates j's thread, or its new
// attempt: it picks the id when none was given, checks the token and the
// dependencies, reuses a cached result when one matches, and writes the
// record owned by the thread's token and the session token.
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
		var t *registry.Thread
		if p.existing != nil {
			old, err := tx.Open(id, p.tok)
			if err != nil {
				return fmt.Errorf("%s: %w", p.fn, err)
			}
			if err := r.activeError(p.fn, old); err != nil {
				return err
			}
			t = p.again(old)
		} else {
			t = p.record(id)
		}
		deps, err := r.checkAfter(tx, p, id)
		if err != nil {
			return err
		}
		if p.cacheKey != "" && len(p.after) == 0 {
			if src, ok := r.cache.lookup(tx, p.cacheKey); ok {
				cacheHit(t, src)
			}
		}
		if !registry.Final(t.Status) {
			t.Owner = r.owner // the process that will run it
		}
		r.markRemote(p, j, t)
		if p.existing != nil {
			err = tx.Put(t, p.tok)
		} else {
			err = tx.Create(t, p.tok, r.session)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.fn, err)
		}
		r.commits.used(id)
		j.id, j.rec, j.deps = id, t, deps
		if p.parent == nil {
			j.tree.root = id
		}
		return nil
	}
}

// cacheHit makes t reuse the result of src, a succeeded thread with the
// same cache key: status cached, not run.
func cacheHit(t, src *registry.Thread) {
	now := nowRFC3339()
	t.Status, t.Cached, t.Result, t.DeviceUsed = registry.StatusCached, true, src.Result, src.DeviceUsed
	if arrays, err := src.ResultArrays(); err == nil {
		_ = t.SetResultArrays(arrays) // the stored arrays themselves, by reference
	}
	t.StartedAt, t.FinishedAt = now, now
	t.History = append(t.History, stamp("Cache hit: reusing the result of thread %s (same body, arguments, device and script source); not run.", src.ID))
}

// launch starts a created run: a cached one ends at once; any other is
// tracked (so that cancel() finds it), and either waits for its
// dependencies or, with submit, is queued.
func (r *Runtime) launch(j *run, submit bool) {
	if j.rec.Status == registry.StatusCached {
		j.state = stateDone
		j.final = j.rec.Clone()
		close(j.done)
		r.noteEnd(j.final)
		r.active.Done()
		return
	}
	if r.launchRemote(j) {
		return
	}
	r.mu.Lock()
	r.runs[j.id] = j
	r.mu.Unlock()
	r.monitor.start()
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
	if len(j.after) > 0 {
		j.mu.Lock()
		waiting := j.state == statePending
		if waiting {
			j.state = stateWaiting
		}
		j.mu.Unlock()
		if waiting { // else stopped already (its spawner had ended)
			r.waitDeps(j)
		}
		return
	}
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
	var t *registry.Thread
	if p.existing != nil {
		t = p.again(p.existing)
	} else {
		t = p.record(id)
	}
	t.Status = registry.StatusDryRun
	t.History = append(t.History, stamp("Dry run: validated; not run or persisted."))
	j := &run{r: r, id: id, rec: t, final: t, state: stateDone, heapIdx: -1, done: make(chan struct{})}
	close(j.done)
	return j, nil
}

// spawnName is the builtin a request stands for, in messages.
func spawnName(req *SpawnRequest, batch bool) string {
	switch {
	case req != nil && req.Rerun:
		return "run"
	case batch:
		return "spawn_batch"
	}
	return "spawn"
}

// Spawn validates req, persists the thread (pending, waiting for the
// threads in req.After, or cached when an earlier run with the same key
// can be reused) and queues it. When req.ID names an existing thread
// (req.Rerun requires one) it is a new attempt of that thread: its token
// must open it, and only req.Given fields replace its own. A busy CPU
// never refuses a thread: it queues. With req.Wait it returns once the
// thread has ended, retries included (or ctx is done).
func (r *Runtime) Spawn(ctx context.Context, req *SpawnRequest) (Handle, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	fn := spawnName(req, false)
	old, err := r.lookupExisting(fn, req)
	if err != nil {
		return nil, err
	}
	p, err := r.prepare(ctx, fn, req, old)
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
	if err := r.reserveSpawn(fn, p.parent); err != nil {
		return nil, err
	}
	if err := r.enter(fn); err != nil {
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

// SpawnBatch: every request is validated and created (in one registry
// transaction), then run concurrently, at most workers at a time when
// workers > 0. One result per request, in order; a refused request
// carries its error and never stops the others.
func (r *Runtime) SpawnBatch(ctx context.Context, reqs []*SpawnRequest, workers int) []BatchResult {
	if ctx == nil {
		ctx = context.Background()
	}
	const fn = "spawn_batch"
	out := make([]BatchResult, len(reqs))
	olds, err := r.lookupBatch(fn, reqs)
	if err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
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
		if olds[i].err != nil {
			out[i].Err = olds[i].err
			continue
		}
		p, err := r.prepare(ctx, fn, req, olds[i].t)
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
		if j.rec.Status != registry.StatusCached {
			j.feeder = f
			if len(j.after) == 0 {
				f.jobs = append(f.jobs, j)
			}
		}
		r.launch(j, false)
	}
	sort.SliceStable(f.jobs, func(a, b int) bool { return runQueue(f.jobs).Less(a, b) })
	f.feed()
	return out
}

// existingThread is what lookupBatch found for one request.
type existingThread struct {
	t   *registry.Thread
	err error
}

// lookupBatch is lookupExisting for a batch: one registry read, an error
// per request.
func (r *Runtime) lookupBatch(fn string, reqs []*SpawnRequest) ([]existingThread, error) {
	out := make([]existingThread, len(reqs))
	err := r.store.View(func(tx *registry.Tx) error {
		for i, req := range reqs {
			if req == nil || req.ID == nil || registry.ValidateID(float64(*req.ID)) != nil {
				continue
			}
			t, err := tx.Get(*req.ID)
			switch {
			case err == nil:
				out[i].t = t
			case !errors.Is(err, registry.ErrNotFound):
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return out, nil
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
// order, submitting the next as each ends. Runs that waited for their
// dependencies join when they are released.
type feeder struct {
	mu       sync.Mutex
	jobs     []*run
	next     int
	late     []*run // released after waiting (after=), in release order
	inflight int
	limit    int
}

func (f *feeder) feed() {
	var submit []*run
	f.mu.Lock()
	for f.inflight < f.limit {
		var j *run
		switch {
		case len(f.late) > 0:
			j, f.late = f.late[0], f.late[1:]
		case f.next < len(f.jobs):
			j = f.jobs[f.next]
			f.next++
		}
		if j == nil {
			break
		}
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

// ready adds a run released from waiting.
func (f *feeder) ready(j *run) {
	f.mu.Lock()
	f.late = append(f.late, j)
	f.mu.Unlock()
	f.feed()
}

func (f *feeder) ended() {
	f.mu.Lock()
	f.inflight--
	f.mu.Unlock()
	f.feed()
}
