package builtins

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/registry"
)

// storedResult is a Thread value's result when it holds arrays the
// registry stored whole (registry.ResultArray): the arrays are read, on
// first use of .result, into the accel context of the Starlark thread
// that got the value (charged to its memory budget), and put back in
// their places. Until then the value costs nothing.
type storedResult struct {
	once sync.Once
	load func() (starlark.Value, error)
	v    starlark.Value
	err  error
}

func (s *storedResult) value() (starlark.Value, error) {
	s.once.Do(func() { s.v, s.err = s.load() })
	return s.v, s.err
}

// newThreadFor is NewThread for a builtin called on th: a result with
// stored arrays gives them back as arrays (see storedResult).
func newThreadFor(e Engine, th *starlark.Thread, rec *registry.Thread) starlark.Value {
	v := NewThread(rec)
	t, ok := v.(*Thread)
	if !ok {
		return v
	}
	arrays, err := t.rec.ResultArrays()
	if err != nil || len(arrays) == 0 {
		return v
	}
	outs, err := registry.OutputsOf(e.Store())
	if err != nil {
		return v // a store without outputs: the summaries stay
	}
	m := &accelModule{e: e}
	id, result := t.rec.ID, t.rec.Result
	t.stored = &storedResult{load: func() (starlark.Value, error) {
		ex, ctx, err := m.env(th, "result")
		if err != nil {
			return nil, err
		}
		g, err := registry.ResolveResult(result, arrays, func(ra registry.ResultArray) (any, error) {
			rc, err := outs.Results().OpenArray(ctx, ra.SHA256)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			arr, err := ex.ReadNPY(rc)
			if err == nil {
				_, err = io.Copy(io.Discard, rc) // to its end: the digest is checked there
			}
			if err != nil {
				if arr != nil {
					arr.Free()
				}
				return nil, err
			}
			return m.wrap(ex, ctx, arr), nil
		})
		if errors.Is(err, accel.ErrClosed) {
			return nil, fmt.Errorf("thread %s: result: its arrays are read into the thread that got this value, which has ended: call get(%s) again: %w", id, id, err)
		}
		if err != nil {
			return nil, fmt.Errorf("thread %s: result: %w", id, err)
		}
		sv, err := ToStarlark(g)
		if err != nil {
			return nil, fmt.Errorf("thread %s: result: %w", id, err)
		}
		sv.Freeze()
		return sv, nil
	}}
	return t
}
