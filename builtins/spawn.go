package builtins

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/autonode/autonode/registry"
)

// spawnParams are spawn's parameters, in order; spawn_batch's specs use
// the same names as dict keys.
var spawnParams = []string{"id", "stage", "device", "token", "sandbox", "caching", "priority", "ttl",
	"metadata", "name", "run", "args", "kwargs", "dry_run", "wait",
	"retries", "retry_delay", "backoff", "max_delay", "retry_on", "after"}

// spawnDefaults are the values of omitted spawn parameters.
func spawnDefaults() map[string]starlark.Value {
	return map[string]starlark.Value{
		"id": starlark.None, "stage": starlark.String(registry.StageBase), "device": starlark.String("cpu"),
		"token": starlark.None, "sandbox": starlark.True, "caching": starlark.True,
		"priority": starlark.MakeInt(registry.DefaultPriority), "ttl": starlark.Float(registry.DefaultTTL),
		"metadata": starlark.None, "name": starlark.None, "run": starlark.None, "args": starlark.Tuple{},
		"kwargs": starlark.None, "dry_run": starlark.False, "wait": starlark.True,
		"retries": starlark.MakeInt(0), "retry_delay": starlark.Float(registry.DefaultRetryDelay),
		"backoff": starlark.Float(registry.DefaultBackoff), "max_delay": starlark.Float(registry.DefaultMaxDelay),
		"retry_on": starlark.None, "after": starlark.None,
	}
}

// runParams are run()'s parameters, in order. For the retry policy, None
// keeps the thread's own.
var runParams = []string{"id", "run", "args", "kwargs", "token", "wait",
	"retries", "retry_delay", "backoff", "max_delay", "retry_on", "after"}

// retryParams are the numbers of the retry policy.
var retryParams = []string{"retries", "retry_delay", "backoff", "max_delay"}

// unpackParams unpacks args and kwargs into vals, whose entries are the
// defaults, for the parameters params (all optional), and returns the
// names the caller gave.
func unpackParams(fn string, args starlark.Tuple, kwargs []starlark.Tuple, params []string, vals map[string]starlark.Value) ([]string, error) {
	ptrs := make([]any, 0, 2*len(params))
	holders := make([]starlark.Value, len(params))
	for i, p := range params {
		holders[i] = vals[p]
		ptrs = append(ptrs, p+"?", &holders[i])
	}
	if err := unpack(fn, args, kwargs, ptrs...); err != nil {
		return nil, err
	}
	given := make([]string, 0, len(args)+len(kwargs))
	for i, p := range params {
		vals[p] = holders[i]
		if i < len(args) {
			given = append(given, p)
		}
	}
	for _, kv := range kwargs {
		if k, ok := starlark.AsString(kv[0]); ok {
			given = append(given, k)
		}
	}
	return given, nil
}

// token() -> str
func builtinToken(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := unpack(fn, args, kwargs); err != nil {
			return nil, err
		}
		tok, err := registry.NewToken()
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return starlark.String(tok), nil
	}
}

// spawn(id=None, stage="BASE", ...) -> Thread or Handle
func builtinSpawn(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		vals := spawnDefaults()
		given, err := unpackParams(fn, args, kwargs, spawnParams, vals)
		if err != nil {
			return nil, err
		}
		req, err := spawnRequest(e, th, fn, "", vals)
		if err != nil {
			return nil, err
		}
		req.Given = given
		return submit(e, th, fn, req)
	}
}

// run(id, run=None, args=(), kwargs=None, token=None, wait=True,
// retries=None, retry_delay=None, backoff=None, max_delay=None,
// retry_on=None, after=None) -> Thread or Handle
func builtinRun(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		vals := spawnDefaults()
		vals["id"] = nil
		for _, p := range retryParams {
			vals[p] = starlark.None
		}
		given, err := unpackParams(fn, args, kwargs, runParams, vals)
		if err != nil {
			return nil, err
		}
		if vals["id"] == nil {
			return nil, errorf(fn, "missing argument for id")
		}
		if isNone(vals["id"]) {
			return nil, typeError(fn, "id", vals["id"], "a thread id (number)")
		}
		var keep []string // None leaves the thread's own value
		for _, p := range given {
			if !isNone(vals[p]) {
				keep = append(keep, p)
			}
		}
		for _, p := range retryParams {
			if isNone(vals[p]) {
				vals[p] = spawnDefaults()[p]
			}
		}
		req, err := spawnRequest(e, th, fn, "", vals)
		if err != nil {
			return nil, err
		}
		req.Rerun, req.Given = true, keep
		return submit(e, th, fn, req)
	}
}

// submit hands req to the engine and returns the Thread once it has ended
// or, with wait=False, its Handle at once.
func submit(e Engine, th *starlark.Thread, fn string, req *SpawnRequest) (starlark.Value, error) {
	ctx := contextOf(e, th)
	h, err := e.Spawn(ctx, req)
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	if h == nil {
		return nil, errorf(fn, "the engine returned no handle")
	}
	hv := &handleValue{h: h, e: e}
	if !req.Wait {
		return hv, nil
	}
	v, err := waitOne(e, th, fn, hv, noTimeout)
	if err == nil {
		err = stopped(ctx, fn)
	}
	return v, err
}

// stopped reports that the caller's context ended while it waited (Ctrl-C,
// its TTL): the script stops there, even if the thread it waited for has
// just ended.
func stopped(ctx context.Context, fn string) error {
	if ctx.Err() == nil {
		return nil
	}
	return errorf(fn, "stopped while waiting: %v", context.Cause(ctx))
}

// spawnRequest checks spawn's arguments (from keyword arguments or a
// spawn_batch spec; prefix names the spec in messages) and builds the
// request, resolving the token and freezing the body and its arguments.
func spawnRequest(e Engine, th *starlark.Thread, fn, prefix string, vals map[string]starlark.Value) (*SpawnRequest, error) {
	param := func(p string) string { return prefix + p }
	conv := func(p string, dst starlark.Unpacker) error { return arg(fn, param(p), vals[p], dst) }
	check := func(p string, err error) error {
		if err != nil {
			return argError(fn, param(p), gotInvalid(vals[p], err).Error())
		}
		return nil
	}
	var (
		id                                 optID
		stage, device                      stringArg
		sandbox, caching, dryRun, wait     boolArg
		priority, retries                  intArg
		ttl, retryDelay, backoff, maxDelay numberArg
		metadata                           optDict
		name                               optString
		tok                                tokenArg
		after                              optIDList
	)
	for _, c := range []struct {
		p   string
		dst starlark.Unpacker
	}{{"id", &id}, {"stage", &stage}, {"device", &device}, {"sandbox", &sandbox}, {"caching", &caching},
		{"dry_run", &dryRun}, {"wait", &wait}, {"priority", &priority}, {"ttl", &ttl},
		{"metadata", &metadata}, {"name", &name}, {"token", &tok}, {"retries", &retries},
		{"retry_delay", &retryDelay}, {"backoff", &backoff}, {"max_delay", &maxDelay}, {"after", &after}} {
		if err := conv(c.p, c.dst); err != nil {
			return nil, err
		}
	}
	req := &SpawnRequest{
		Caller: th, ID: idPtr(id), Stage: strings.ToUpper(string(stage)), Device: strings.ToLower(string(device)),
		Sandbox: bool(sandbox), Caching: bool(caching), DryRun: bool(dryRun), Wait: bool(wait),
		Priority: int64(priority), TTL: float64(ttl), Metadata: metadata.v, Name: string(name.v),
		Retries: int(retries), RetryDelay: float64(retryDelay), Backoff: float64(backoff), MaxDelay: float64(maxDelay),
		After: after.v,
	}
	for _, c := range []struct {
		p   string
		err error
	}{{"stage", registry.ValidateStage(req.Stage)}, {"device", registry.ValidateDevice(req.Device)},
		{"priority", registry.ValidatePriority(req.Priority)}, {"ttl", registry.ValidateTTL(req.TTL)}} {
		if err := check(c.p, c.err); err != nil {
			return nil, err
		}
	}
	policy := registry.RetryPolicy{Retries: req.Retries, Delay: req.RetryDelay, Backoff: req.Backoff, MaxDelay: req.MaxDelay}
	if retries < 0 || retries > registry.MaxRetries {
		policy.Retries = -1 // out of the int range: Validate says what is allowed
	}
	if err := policy.Validate(); err != nil {
		var fe *registry.FieldError
		if errors.As(err, &fe) {
			return nil, check(fe.Field, err)
		}
		return nil, err
	}
	if ro := vals["retry_on"]; !isNone(ro) {
		c, ok := ro.(starlark.Callable)
		if !ok {
			return nil, typeError(fn, param("retry_on"), ro, "a function (error_text) -> bool")
		}
		req.RetryOn = c
	}
	if name.set {
		if err := check("name", registry.ValidateName(req.Name)); err != nil {
			return nil, err
		}
	}
	if run := vals["run"]; !isNone(run) {
		c, ok := run.(starlark.Callable)
		if !ok {
			return nil, typeError(fn, param("run"), run, "a function")
		}
		req.Run = c
	}
	switch a := vals["args"].(type) {
	case starlark.Tuple:
		req.Args = append(starlark.Tuple(nil), a...)
	case *starlark.List:
		req.Args = starlark.Tuple(listItems(a))
	default:
		return nil, typeError(fn, param("args"), a, "a tuple or list of arguments")
	}
	if kw := vals["kwargs"]; !isNone(kw) {
		d, ok := kw.(*starlark.Dict)
		if !ok {
			return nil, typeError(fn, param("kwargs"), kw, "a dict of keyword arguments")
		}
		for _, kv := range d.Items() {
			if _, ok := kv[0].(starlark.String); !ok {
				return nil, valueError(fn, param("kwargs"), kw, "a dict with string keys")
			}
			req.Kwargs = append(req.Kwargs, starlark.Tuple{kv[0], kv[1]})
		}
	}
	if (len(req.Args) > 0 || len(req.Kwargs) > 0) && req.Run == nil {
		return nil, errorf(fn, "%s: arguments were given but no run function to receive them", param("args"))
	}
	var err error
	if req.Token, err = tok.resolve(e, fn, param("token")); err != nil {
		return nil, err
	}
	// The body and its arguments cross to another goroutine: freeze them.
	if req.Run != nil {
		req.Run.Freeze()
	}
	if req.RetryOn != nil {
		req.RetryOn.Freeze()
	}
	req.Args.Freeze()
	for _, kv := range req.Kwargs {
		kv.Freeze()
	}
	return req, nil
}

// contextOf returns the context that ends th's work.
func contextOf(e Engine, th *starlark.Thread) context.Context {
	if ctx := e.Context(th); ctx != nil {
		return ctx
	}
	return context.Background()
}

// spawnFailure is spawn_batch's entry for a refused spec.
func spawnFailure(i int, id *registry.ID, err error) starlark.Value {
	idv := starlark.Value(starlark.None)
	if id != nil {
		idv = starlark.Float(*id)
	}
	s := starlarkstruct.FromStringDict(starlark.String("spawn_failure"), starlark.StringDict{
		"ok": starlark.False, "error": starlark.String(err.Error()), "spec_index": starlark.MakeInt(i), "id": idv,
	})
	s.Freeze()
	return s
}

// spawn_batch(specs, workers=None) -> list
func builtinSpawnBatch(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var specs, workersV starlark.Value = nil, starlark.None
		var w optInt
		if err := unpack(fn, args, kwargs, "specs", &specs, "workers?", &workersV); err != nil {
			return nil, err
		}
		if !isListLike(specs) {
			return nil, typeError(fn, "specs", specs, "a list of dicts with spawn's fields")
		}
		if err := arg(fn, "workers", workersV, &w); err != nil {
			return nil, err
		}
		if w.set && (w.v < 1 || w.v > 1<<20) {
			return nil, valueError(fn, "workers", workersV, "a positive number of workers")
		}
		workers := int(w.v)
		items := listItems(specs)
		out := make([]starlark.Value, len(items))
		var reqs []*SpawnRequest
		var index []int
		ctx := contextOf(e, th)
		for i, it := range items {
			if err := ctx.Err(); err != nil { // Ctrl-C, a TTL: stop converting
				out[i] = spawnFailure(i, specID(it), errorf(fn, "not created: %v", context.Cause(ctx)))
				continue
			}
			req, err := batchSpec(e, th, fn, i, it)
			if err != nil {
				out[i] = spawnFailure(i, specID(it), err)
				continue
			}
			reqs = append(reqs, req)
			index = append(index, i)
		}
		if len(reqs) == 0 {
			return starlark.NewList(out), nil
		}
		results := e.SpawnBatch(ctx, reqs, workers)
		for j, req := range reqs {
			i := index[j]
			if j >= len(results) {
				out[i] = spawnFailure(i, req.ID, errorf(fn, "the engine returned no result for this spec"))
				continue
			}
			r := results[j]
			switch {
			case r.Err != nil:
				out[i] = spawnFailure(i, req.ID, wrapErr(fn, r.Err))
			case r.Handle == nil:
				out[i] = spawnFailure(i, req.ID, errorf(fn, "the engine returned no handle for this spec"))
			case !req.Wait:
				out[i] = &handleValue{h: r.Handle, e: e}
			default:
				v, err := waitOne(e, th, fn, &handleValue{h: r.Handle, e: e}, noTimeout)
				if err != nil {
					id := r.Handle.ID()
					out[i] = spawnFailure(i, &id, err)
				} else {
					out[i] = v
				}
			}
		}
		if err := stopped(ctx, fn); err != nil {
			return nil, err
		}
		return starlark.NewList(out), nil
	}
}

// batchSpec checks one spawn_batch spec.
func batchSpec(e Engine, th *starlark.Thread, fn string, i int, spec starlark.Value) (*SpawnRequest, error) {
	name := fmt.Sprintf("specs[%d]", i)
	d, ok := spec.(*starlark.Dict)
	if !ok {
		return nil, typeError(fn, name, spec, "a dict with spawn's fields")
	}
	vals := spawnDefaults()
	given := make([]string, 0, d.Len())
	for _, kv := range d.Items() {
		k, ok := kv[0].(starlark.String)
		if !ok || vals[string(k)] == nil {
			msg := fmt.Sprintf("%s: unexpected key %s%s; allowed are %s", name, repr(kv[0]), SeedKeywordNote(string(k)), strings.Join(spawnParams, ", "))
			return nil, errorf(fn, "%s", msg)
		}
		vals[string(k)] = kv[1]
		given = append(given, string(k))
	}
	req, err := spawnRequest(e, th, fn, name+".", vals)
	if err != nil {
		return nil, err
	}
	req.Given = given
	return req, nil
}

// specID is the id a spec asks for, if it names a valid one.
func specID(spec starlark.Value) *registry.ID {
	d, ok := spec.(*starlark.Dict)
	if !ok {
		return nil
	}
	v, found, _ := d.Get(starlark.String("id"))
	if !found {
		return nil
	}
	var id optID
	if id.Unpack(v) != nil {
		return nil
	}
	return idPtr(id)
}

// wait(handles, timeout=None) -> Thread or list
func builtinWait(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var handles starlark.Value
		timeout := timeoutArg(noTimeout)
		if err := unpack(fn, args, kwargs, "handles", &handles, "timeout?", &timeout); err != nil {
			return nil, err
		}
		d := time.Duration(timeout)
		deadline := time.Now().Add(d)
		one := func(param string, v starlark.Value) (starlark.Value, error) {
			switch x := v.(type) {
			case *handleValue:
				left := noTimeout
				if d >= 0 {
					left = max(time.Until(deadline), 0)
				}
				return waitOne(e, th, fn, x, left)
			case *Thread:
				return x, nil // a Thread value is a finished snapshot
			}
			return nil, typeError(fn, param, v, "a handle from spawn(wait=False) or a Thread")
		}
		if !isListLike(handles) {
			return one("handles", handles)
		}
		items := listItems(handles)
		out := make([]starlark.Value, len(items))
		for i, it := range items {
			v, err := one(fmt.Sprintf("handles[%d]", i), it)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return starlark.NewList(out), nil
	}
}

// cancel(id, token=None)
func builtinCancel(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		id, tok, err := unpackIDToken(e, fn, args, kwargs)
		if err != nil {
			return nil, err
		}
		if err := e.Cancel(id, tok); err != nil {
			return nil, wrapErr(fn, err)
		}
		return starlark.None, nil
	}
}

// current() -> Thread
func builtinCurrent(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := unpack(fn, args, kwargs); err != nil {
			return nil, err
		}
		rec := e.Running(th)
		if rec == nil {
			return nil, errorf(fn, "not inside a thread body: call current() from a function run by spawn(run=...)")
		}
		return NewThread(rec), nil
	}
}

// log(msg)
func builtinLogMetric(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name stringArg
		var value numberArg
		var step optInt
		if err := unpack(fn, args, kwargs, "name", &name, "value", &value, "step?", &step); err != nil {
			return nil, err
		}
		if e.Running(th) == nil {
			return nil, errorf(fn, "not inside a thread body: metrics belong to a thread (log_metric inside a function run by spawn(run=...))")
		}
		var s *int64
		if step.set {
			n := int64(step.v)
			s = &n
		}
		got, err := e.LogMetric(th, string(name), float64(value), s)
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return starlark.MakeInt64(got), nil
	}
}

func builtinLog(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var msg starlark.Value
		if err := unpack(fn, args, kwargs, "msg", &msg); err != nil {
			return nil, err
		}
		text, ok := starlark.AsString(msg)
		if !ok {
			text = msg.String()
		}
		if e.Running(th) == nil {
			return nil, errorf(fn, "not inside a thread body: log() appends to the running thread's history; use print() at top level")
		}
		if err := e.Log(th, text); err != nil {
			return nil, wrapErr(fn, err)
		}
		return starlark.None, nil
	}
}
