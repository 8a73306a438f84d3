package builtins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/autonode/autonode/registry"
)

// threadAttrs lists the attributes of a Thread value, in dir() order.
var threadAttrs = []string{
	"after", "attempt", "attempts", "cached", "caching", "device", "device_used", "duration_ms", "error",
	"finished_at", "history", "id", "lineage", "metadata", "name", "parent", "priority", "result", "sandbox",
	"stage", "started_at", "status", "ttl", "version",
}

// Thread is the read-only Starlark value of a thread record: a snapshot
// taken when the builtin returned it. Its attributes are the record's
// fields; it never exposes the token or its hash. Two Thread values are
// equal when they have the same id and the same content; a Thread hashes by
// its id, so it can be a dict key or a set element.
type Thread struct {
	rec    *registry.Thread
	pub    []byte // public JSON, for equality and conversion
	attrs  map[string]starlark.Value
	stored *storedResult // a result with arrays stored whole, or nil
}

var (
	_ starlark.HasAttrs   = (*Thread)(nil)
	_ starlark.Comparable = (*Thread)(nil)
)

// NewThread returns the read-only Thread value of t (a snapshot: later
// changes to t are not seen). A nil t gives None.
func NewThread(t *registry.Thread) starlark.Value {
	if t == nil {
		return starlark.None
	}
	// A record the registry accepted always converts; should a field not,
	// the value keeps what could be converted.
	v, _ := newThread(t)
	return v
}

func newThread(t *registry.Thread) (*Thread, error) {
	rec := t.Clone()
	pub, perr := rec.PublicJSON()
	th := &Thread{rec: rec, pub: pub, attrs: make(map[string]starlark.Value, len(threadAttrs))}
	optStr := func(s string) starlark.Value {
		if s == "" {
			return starlark.None
		}
		return starlark.String(s)
	}
	var firstErr error
	conv := func(name string, v any) starlark.Value {
		s, err := frozen(v)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("thread %s: %s: %w", rec.ID, name, err)
			}
			return starlark.None
		}
		return s
	}
	a := th.attrs
	a["id"] = starlark.Float(rec.ID)
	a["name"] = starlark.String(rec.Name)
	a["stage"] = starlark.String(rec.Stage)
	a["device"] = starlark.String(rec.Device)
	a["priority"] = starlark.MakeInt64(rec.Priority)
	a["ttl"] = starlark.Float(rec.TTL)
	a["sandbox"] = starlark.Bool(rec.Sandbox)
	a["caching"] = starlark.Bool(rec.Caching)
	a["metadata"] = conv("metadata", map[string]any(rec.Metadata))
	if a["metadata"] == starlark.None {
		d := starlark.NewDict(0)
		d.Freeze()
		a["metadata"] = d
	}
	a["history"] = conv("history", rec.History)
	a["parent"] = starlark.None
	if rec.Parent != nil {
		a["parent"] = starlark.Float(*rec.Parent)
	}
	a["lineage"] = conv("lineage", append([]registry.ID{}, rec.Lineage...))
	a["status"] = starlark.String(rec.EffectiveStatus())
	a["result"] = starlark.None
	if len(rec.Result) > 0 {
		if r, err := rawToStarlark(rec.Result); err == nil {
			r.Freeze()
			a["result"] = r
		} else if firstErr == nil {
			firstErr = fmt.Errorf("thread %s: result: %w", rec.ID, err)
		}
	}
	a["error"] = optStr(rec.Error)
	a["started_at"] = optStr(rec.StartedAt)
	a["finished_at"] = optStr(rec.FinishedAt)
	a["duration_ms"] = starlark.None
	if rec.StartedAt != "" || rec.DurationMS != 0 {
		a["duration_ms"] = starlark.Float(rec.DurationMS)
	}
	a["device_used"] = optStr(rec.DeviceUsed)
	a["cached"] = starlark.Bool(rec.Cached)
	a["version"] = starlark.MakeInt64(rec.Version)
	a["after"] = conv("after", slices.Clone(rec.After))
	a["attempt"] = starlark.MakeInt(0)
	if at := rec.LatestAttempt(); at != nil {
		a["attempt"] = starlark.MakeInt(at.N)
	}
	attempts := make([]any, len(rec.Attempts))
	for i, at := range rec.Attempts {
		m := map[string]any{"attempt": int64(at.N), "status": at.Status, "error": nil, "started_at": nil,
			"finished_at": nil, "duration_ms": at.DurationMS, "device_used": nil}
		for k, v := range map[string]string{"error": at.Error, "started_at": at.StartedAt, "finished_at": at.FinishedAt, "device_used": at.DeviceUsed} {
			if v != "" {
				m[k] = v
			}
		}
		attempts[i] = m
	}
	a["attempts"] = conv("attempts", attempts)
	if firstErr == nil {
		firstErr = perr
	}
	return th, firstErr
}

// Record returns a copy of the registry record the value was made from.
func (t *Thread) Record() *registry.Thread { return t.rec.Clone() }

// String returns a compact description:
// <Thread 1.0 'YourCoreThread' CORE cpu succeeded>.
func (t *Thread) String() string {
	return fmt.Sprintf("<Thread %s %s %s %s %s>", t.rec.ID, registry.PyRepr(t.rec.Name), t.rec.Stage, t.rec.Device, t.rec.EffectiveStatus())
}

// Type returns "Thread".
func (t *Thread) Type() string { return "Thread" }

// Freeze does nothing: a Thread value is immutable.
func (t *Thread) Freeze() {}

// Truth returns True.
func (t *Thread) Truth() starlark.Bool { return starlark.True }

// Hash hashes the thread id.
func (t *Thread) Hash() (uint32, error) { return starlark.Float(t.rec.ID).Hash() }

// Attr returns the record field called name.
func (t *Thread) Attr(name string) (starlark.Value, error) {
	if name == "result" && t.stored != nil {
		return t.stored.value()
	}
	if v, ok := t.attrs[name]; ok {
		return v, nil
	}
	return nil, nil
}

// AttrNames lists the attributes.
func (t *Thread) AttrNames() []string { return slices.Clone(threadAttrs) }

// CompareSameType implements == and != (same id and same content).
func (t *Thread) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	u := y.(*Thread)
	eq := t.rec.ID == u.rec.ID && bytes.Equal(t.pub, u.pub)
	switch op {
	case syntax.EQL:
		return eq, nil
	case syntax.NEQ:
		return !eq, nil
	}
	return false, fmt.Errorf("%s %s %s: threads compare only with == and != (compare t.priority or t.id to order them)", t.Type(), op, u.Type())
}

// record returns the thread's public record as JSON-compatible Go values.
func (t *Thread) record() (any, error) {
	d := json.NewDecoder(bytes.NewReader(t.pub))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("thread %s: %v", t.rec.ID, err)
	}
	return m, nil
}

// handleValue is the Starlark value of a submitted thread (spawn with
// wait=False): .id, .done and .wait(timeout=None).
type handleValue struct {
	h Handle
	e Engine
}

var _ starlark.HasAttrs = (*handleValue)(nil)

// String returns <Handle 3.0 running> or <Handle 3.0 done>.
func (h *handleValue) String() string {
	state := "running"
	if h.h.Done() {
		state = "done"
	}
	return fmt.Sprintf("<Handle %s %s>", h.h.ID(), state)
}

// Type returns "Handle".
func (h *handleValue) Type() string          { return "Handle" }
func (h *handleValue) Freeze()               {}
func (h *handleValue) Truth() starlark.Bool  { return starlark.True }
func (h *handleValue) Hash() (uint32, error) { return starlark.Float(h.h.ID()).Hash() }
func (h *handleValue) AttrNames() []string   { return []string{"done", "id", "wait"} }
func (h *handleValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "id":
		return starlark.Float(h.h.ID()), nil
	case "done":
		return starlark.Bool(h.h.Done()), nil
	case "wait":
		return newBuiltin(h.e, "Handle.wait", func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			timeout := timeoutArg(noTimeout)
			if err := unpack(fn, args, kwargs, "timeout?", &timeout); err != nil {
				return nil, err
			}
			return waitOne(h.e, th, fn, h, time.Duration(timeout))
		}), nil
	}
	return nil, nil
}

// waitOne waits for one handle (d >= 0 bounds the wait) and returns the
// final record as a Thread.
func waitOne(e Engine, th *starlark.Thread, fn string, h *handleValue, d time.Duration) (starlark.Value, error) {
	ctx := e.Context(th)
	if ctx == nil {
		ctx = context.Background()
	}
	if d >= 0 && !h.h.Done() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	rec, err := h.h.Wait(ctx)
	if err != nil {
		if d >= 0 && ctx.Err() == context.DeadlineExceeded {
			return nil, errorf(fn, "thread %s did not end within %s", h.h.ID(), d)
		}
		return nil, wrapErr(fn, err)
	}
	return newThreadFor(e, th, rec), nil
}

// threadList is a Starlark list of Thread values.
func threadList(ts []*registry.Thread) *starlark.List {
	vals := make([]starlark.Value, len(ts))
	for i, t := range ts {
		vals[i] = NewThread(t)
	}
	return starlark.NewList(vals)
}
