package runtime

import (
	"context"
	"reflect"
	"sync"
)

// spawnerWatch stops the unfinished runs spawned with one context (a
// script's top level, an embedder's context, a parent's body) when it
// ends. One watch serves every run of its context: a spawn_batch of
// 80 000 threads registers 80 000 runs, not 80 000 callbacks that would
// all start at once when a signal comes, and the watch stops the running
// ones first (a body keeps a core busy until it is stopped), then the
// queued ones, with one cause.
type spawnerWatch struct {
	ctx  context.Context
	runs map[*run]struct{}
	stop func() bool // the context.AfterFunc's
}

// spawnerWatches are the runtime's watches, by context.
type spawnerWatches struct {
	mu sync.Mutex
	by map[context.Context]*spawnerWatch
}

// add watches ctx for j and returns what stops watching it: true when j
// was still watched (ctx had not ended yet). A ctx that has already
// ended stops j at once (in another goroutine, as context.AfterFunc).
func (ws *spawnerWatches) add(ctx context.Context, j *run) (unwatch func() bool) {
	if !reflect.ValueOf(ctx).Comparable() {
		// An embedder's context of a type that cannot be a map key (a
		// struct holding a slice, say): a watch of its own for j.
		return context.AfterFunc(ctx, func() { _ = j.stop(spawnerCause(ctx)) })
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.by == nil {
		ws.by = map[context.Context]*spawnerWatch{}
	}
	w := ws.by[ctx]
	if w == nil {
		w = &spawnerWatch{ctx: ctx, runs: map[*run]struct{}{}}
		ws.by[ctx] = w
		w.stop = context.AfterFunc(ctx, func() { ws.ended(w) })
	}
	w.runs[j] = struct{}{}
	return func() bool {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		if _, ok := w.runs[j]; !ok {
			return false // ws.ended took it
		}
		delete(w.runs, j)
		if len(w.runs) == 0 && ws.by[ctx] == w {
			// The last run of ctx ended before ctx did.
			delete(ws.by, ctx)
			w.stop()
		}
		return true
	}
}

// ended stops the runs of w, whose context has ended: the running ones
// first. Runs spawned with that context later get a watch of their own,
// which stops them at once.
func (ws *spawnerWatches) ended(w *spawnerWatch) {
	ws.mu.Lock()
	if ws.by[w.ctx] == w {
		delete(ws.by, w.ctx)
	}
	runs := w.runs
	w.runs = map[*run]struct{}{}
	ws.mu.Unlock()
	cause := spawnerCause(w.ctx)
	queued := make([]*run, 0, len(runs))
	for j := range runs {
		j.mu.Lock()
		running := j.state == stateRunning
		j.mu.Unlock()
		if running {
			_ = j.stop(cause)
		} else {
			queued = append(queued, j)
		}
	}
	for _, j := range queued {
		_ = j.stop(cause)
	}
}
