package runtime

import (
	"context"
	"fmt"
	"io"
	"sync"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/registry"
)

// A run's outputs beside its record (registry.Outputs): the lines its body
// logs and prints, its metrics, and the arrays of its result. The log and
// metric writers open on first use, so a thread that never logs leaves no
// file, and close before the commit that records the thread's end, so that
// `autonode logs -f` has every line when it sees the end.
type runOutputs struct {
	mu      sync.Mutex
	logs    registry.LogWriter
	metrics registry.MetricWriter
	notes   []registry.LogEntry // the engine's notes, written when the log opens
	failed  bool                // the log could not be opened: said once
	attempt int                 // the attempt whose lines are being written
}

// maxHeldNotes bounds the engine notes kept for a log not yet opened.
const maxHeldNotes = 16

// outputsOf returns the store's outputs, or nil when it keeps none.
func outputsOf(s registry.Store) registry.Outputs {
	outs, err := registry.OutputsOf(s)
	if err != nil {
		return nil
	}
	return outs
}

// logWriter returns the run's log writer, opening it on first use; nil
// when the registry keeps no logs or the log could not be opened (the
// runtime warns once).
func (j *run) logWriter() registry.LogWriter {
	o := &j.outs
	if o.logs != nil || o.failed || j.r.outs == nil {
		return o.logs
	}
	w, err := j.r.outs.Logs().OpenLog(j.r.ctx, j.id, registry.LogOptions{})
	if err != nil {
		o.failed = true
		j.r.warn("thread %s: its log cannot be kept: %v", j.id, err)
		return nil
	}
	o.logs = w
	for _, n := range o.notes {
		_ = o.logs.Write(n)
	}
	o.notes = nil
	return o.logs
}

// logOutput writes a line of the body's output (registry.StreamLog for
// log(), registry.StreamPrint for print) to the thread's log.
func (j *run) logOutput(stream, text string) {
	o := &j.outs
	o.mu.Lock()
	defer o.mu.Unlock()
	if w := j.logWriter(); w != nil {
		if err := w.Write(registry.LogEntry{Stream: stream, Text: text, Attempt: o.attempt}); err != nil && !o.failed {
			o.failed = true
			j.r.warn("thread %s: its log: %v", j.id, err)
		}
	}
}

// logNote writes a note of the engine (an attempt starts or ends) to the
// thread's log; before the body has written anything it is kept, and
// written first when the log opens, so that a silent thread has no log.
func (j *run) logNote(attempt int, format string, args ...any) {
	if j.r.outs == nil {
		return
	}
	o := &j.outs
	o.mu.Lock()
	defer o.mu.Unlock()
	o.attempt = attempt
	e := registry.LogEntry{Stream: registry.StreamAutoNode, Text: fmt.Sprintf(format, args...), Attempt: attempt}
	if o.logs == nil {
		if len(o.notes) < maxHeldNotes {
			o.notes = append(o.notes, e)
		}
		return
	}
	_ = o.logs.Write(e)
}

// logMetric records one point of the thread's metric name.
func (j *run) logMetric(name string, value float64, step *int64) (registry.MetricPoint, error) {
	if j.r.outs == nil {
		return registry.MetricPoint{}, fmt.Errorf("the registry keeps no metrics")
	}
	o := &j.outs
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.metrics == nil {
		w, err := j.r.outs.Metrics().OpenMetrics(j.r.ctx, j.id)
		if err != nil {
			return registry.MetricPoint{}, err
		}
		o.metrics = w
	}
	return o.metrics.Log(name, value, step)
}

// closeOutputs closes the run's log and metric writers (their last lines
// reach the store).
func (j *run) closeOutputs() {
	o := &j.outs
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.logs != nil {
		if err := o.logs.Close(); err != nil {
			j.r.warn("thread %s: closing its log: %v", j.id, err)
		}
		o.logs = nil
	}
	if o.metrics != nil {
		if err := o.metrics.Close(); err != nil {
			j.r.warn("thread %s: closing its metrics: %v", j.id, err)
		}
		o.metrics = nil
	}
	o.notes = nil
}

// storeResultArrays stores every accel array in a body's result v (the
// result itself, or arrays inside dicts and lists) whole, as .npy, in the
// registry's results, and returns where each one is (a JSON Pointer into
// the result) with its reference. The JSON result keeps each array's
// summary. A registry that keeps no results stores nothing.
func (j *run) storeResultArrays(ctx context.Context, v starlark.Value) ([]registry.ResultArray, error) {
	if j.r.outs == nil {
		return nil, nil
	}
	var out []registry.ResultArray
	var walk func(v starlark.Value, path []any, depth int) error
	walk = func(v starlark.Value, path []any, depth int) error {
		if depth > registry.MaxDepth {
			return nil // deeper than a record may be: encodeResult refuses it
		}
		switch x := v.(type) {
		case *builtins.Array:
			arr, err := x.Accel()
			if err != nil {
				return err
			}
			ref, err := j.putArray(ctx, arr)
			if err != nil {
				p := registry.JoinPointer(path...)
				if p == "" {
					p = "the result"
				}
				return fmt.Errorf("storing the array at %s: %w", p, err)
			}
			out = append(out, registry.ResultArray{Pointer: registry.JoinPointer(path...), ArrayRef: ref})
		case *starlark.Dict:
			for _, kv := range x.Items() {
				if k, ok := kv[0].(starlark.String); ok {
					if err := walk(kv[1], append(path, string(k)), depth+1); err != nil {
						return err
					}
				}
			}
		case starlark.Indexable: // list, tuple
			if _, isString := v.(starlark.String); isString {
				return nil
			}
			for i := 0; i < x.Len(); i++ {
				if err := walk(x.Index(i), append(path, i), depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(v, nil, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// putArray streams arr to the results store as .npy.
func (j *run) putArray(ctx context.Context, arr *accel.Array) (registry.ArrayRef, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(accel.WriteNPY(pw, arr)) }()
	ref, err := j.r.outs.Results().PutArray(ctx, pr)
	pr.CloseWithError(err) // a failed put stops the writer
	return ref, err
}
