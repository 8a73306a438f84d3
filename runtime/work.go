package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/builtins"
	"github.com/autonode/autonode/registry"
)

// defaultN is the size of the default work's matrices (the seed's).
const defaultN = 512

// sentence ends msg with a period, as the seed's history lines do.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// errorText returns an error's message and the text to store in the
// record's error field (the backtrace for Starlark errors).
func errorText(err error) (msg, detail string) {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return ee.Msg, ee.Backtrace()
	}
	return err.Error(), err.Error()
}

// outcome is what a body produced.
type outcome struct {
	result json.RawMessage
	arrays []registry.ResultArray // the result's arrays, stored whole
	notes  []string               // history lines to add before the completion line
	err    error
}

// body runs the thread's work: its Starlark function, or the default
// work. cancel cancels ctx, the run's context (the guard stops the body
// with it when a limit is reached).
func (j *run) body(ctx context.Context, cancel context.CancelCauseFunc) (out outcome) {
	defer func() {
		if p := recover(); p != nil {
			out = outcome{err: builtins.Panicked("", p)} // counted: autonode run fails
		}
	}()
	if j.fn == nil {
		return j.defaultWork(ctx)
	}
	th, done := j.r.newBodyThread(j, ctx, cancel)
	v, err := starlark.Call(th, j.fn, j.args, j.kwargs)
	done()
	if err != nil {
		return outcome{err: err}
	}
	res, err := encodeResult(v)
	if err != nil {
		return outcome{err: fmt.Errorf("result of %s: %w", j.fn.Name(), err)}
	}
	arrays, err := j.storeResultArrays(ctx, v) // before the run's Exec closes
	if err != nil {
		return outcome{err: fmt.Errorf("result of %s: %w", j.fn.Name(), err)}
	}
	return outcome{result: res, arrays: arrays}
}

// encodeResult converts a body's return value to the JSON stored as the
// thread's result; None stores nothing.
func encodeResult(v starlark.Value) (json.RawMessage, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	g, err := builtins.FromStarlark(v)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := writeJSON(&b, g, 0); err != nil {
		return nil, err
	}
	raw := json.RawMessage(b.Bytes())
	if len(raw) > registry.MaxRecordBytes/2 {
		return nil, fmt.Errorf("the result is %d bytes as JSON; at most %d are allowed", len(raw), registry.MaxRecordBytes/2)
	}
	return raw, nil
}

// defaultWork is the seed's CPU work, done for real: a 512×512 float64
// matrix product, checked first against the memory budget (3·n²·8 bytes).
func (j *run) defaultWork(ctx context.Context) outcome {
	j.mu.Lock()
	ex := j.ex // this attempt's: a body left running after its attempt must not take the next one's
	j.mu.Unlock()
	n := defaultN
	need := int64(3 * n * n * 8)
	if err := ex.Budget().Check(need); err != nil {
		return outcome{err: &seedError{fmt.Sprintf("Thread %s exceeds memory budget. Needs %.2fMB, allowed %sMB", j.id, float64(need)/(1<<20), j.budgetTx), err}}
	}
	start := time.Now()
	a, err := ex.Rand(accel.Float64, 1, n, n)
	if err != nil {
		return outcome{err: err}
	}
	b, err := ex.Rand(accel.Float64, 2, n, n)
	if err != nil {
		return outcome{err: err}
	}
	c, err := ex.Matmul(ctx, a, b)
	if err != nil {
		return outcome{err: err}
	}
	sum, err := ex.Sum(ctx, c)
	if err != nil {
		return outcome{err: err}
	}
	secs := time.Since(start).Seconds()
	gflops := 0.0
	if secs > 0 {
		gflops = 2 * float64(n) * float64(n) * float64(n) / secs / 1e9
	}
	res := map[string]any{
		"kernel": "matmul", "n": n, "dtype": "float64", "device": ex.Device().Name(),
		"checksum": sum, "seconds": round(secs, 6), "gflops": round(gflops, 3),
	}
	var raw bytes.Buffer
	if err := writeJSON(&raw, res, 0); err != nil {
		return outcome{err: err}
	}
	note := stamp("Matmul %dx%d float64: checksum %s, %.3f GFLOP/s (%.1f ms).", n, n, registry.PyFloat(sum), gflops, secs*1000)
	return outcome{result: raw.Bytes(), notes: []string{note}}
}

// seedError is an error with the seed's wording and a cause errors.Is
// can find.
type seedError struct {
	msg   string
	cause error
}

func (e *seedError) Error() string { return e.msg }
func (e *seedError) Unwrap() error { return e.cause }

func round(f float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	return float64(int64(f*p+0.5)) / p
}

// writeJSON encodes a JSON-compatible Go value with sorted keys, writing
// floats as Python does (1000.0, 1e-05) so that a float result reads back
// as a float.
func writeJSON(b *bytes.Buffer, v any, depth int) error {
	if depth > registry.MaxDepth {
		return fmt.Errorf("nested deeper than %d levels", registry.MaxDepth)
	}
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%v has no JSON form", x)
		}
		b.WriteString(registry.PyFloat(x))
	case float32:
		return writeJSON(b, float64(x), depth)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := slices.Sorted(maps.Keys(x))
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, k, depth+1); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := writeJSON(b, x[k], depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	return nil
}
