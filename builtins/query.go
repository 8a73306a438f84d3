package builtins

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
)

// get(id) -> Thread or None
func builtinGet(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var idA idArg
		if err := unpack(fn, args, kwargs, "id", &idA); err != nil {
			return nil, err
		}
		id := idA.id()
		var rec *registry.Thread
		err := e.Store().View(func(tx *registry.Tx) error {
			var err error
			rec, err = tx.Get(id)
			if isNotFound(err) {
				rec, err = nil, nil
			}
			return err
		})
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		if rec == nil {
			return starlark.None, nil
		}
		(&owner.Checker{}).Apply(rec)
		return newThreadFor(e, th, rec), nil
	}
}

// threads(stage=None, device=None, status=None, parent=None) -> list
func builtinThreads(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var stage, device, status optString
		var parent optID
		if err := unpack(fn, args, kwargs, "stage?", &stage, "device?", &device, "status?", &status, "parent?", &parent); err != nil {
			return nil, err
		}
		f := registry.Filter{Stage: strings.ToUpper(string(stage.v)), Device: strings.ToLower(string(device.v)),
			Status: string(status.v), Parent: idPtr(parent)}
		if stage.set {
			if err := registry.ValidateStage(f.Stage); err != nil {
				return nil, invalid(fn, "stage", starlark.String(stage.v), err)
			}
		}
		if device.set {
			if err := registry.ValidateDevice(f.Device); err != nil {
				return nil, invalid(fn, "device", starlark.String(device.v), err)
			}
		}
		if allowed := append(registry.Statuses(), registry.StatusUnknown); status.set && !slices.Contains(allowed, f.Status) {
			return nil, valueError(fn, "status", starlark.String(status.v), "one of "+strings.Join(allowed, ", "))
		}
		// A thread whose owner process is gone reads as crashed, so a
		// status that may be stale is filtered after that reading.
		want := f.Status
		if owner.MayBeStale(want) {
			f.Status = ""
		}
		var list []*registry.Thread
		err := e.Store().View(func(tx *registry.Tx) error {
			var err error
			list, err = tx.List(f)
			return err
		})
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		alive := &owner.Checker{}
		out := make([]starlark.Value, 0, len(list))
		for _, t := range list {
			alive.Apply(t)
			if want == "" || t.EffectiveStatus() == want {
				out = append(out, newThreadFor(e, th, t))
			}
		}
		return starlark.NewList(out), nil
	}
}

// query(path) -> value
func builtinQuery(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var pathA stringArg
		if err := unpack(fn, args, kwargs, "path", &pathA); err != nil {
			return nil, err
		}
		path := string(pathA)
		var raw string
		var found bool
		err := e.Store().View(func(tx *registry.Tx) error {
			res, err := tx.Query(path)
			if err != nil {
				return err
			}
			found = res.Exists()
			raw = res.Raw
			if found && raw == "" {
				b, err := json.Marshal(res.Value())
				if err != nil {
					return err
				}
				raw = string(b)
			}
			return nil
		})
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		if !found {
			return starlark.None, nil
		}
		v, err := rawToStarlark([]byte(raw))
		if err != nil {
			return nil, errorf(fn, "result of %q: %v", path, err)
		}
		return v, nil
	}
}

// summarize() -> dict
func builtinSummarize(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := unpack(fn, args, kwargs); err != nil {
			return nil, err
		}
		var s registry.Summary
		err := e.Store().View(func(tx *registry.Tx) error {
			s = tx.Summarize()
			return nil
		})
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return summaryValue(s), nil
	}
}

// summaryValue converts a registry summary into a dict, with ids as floats
// like everywhere else.
func summaryValue(s registry.Summary) starlark.Value {
	counts := func(m map[string]int) starlark.Value {
		d := starlark.NewDict(len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			d.SetKey(starlark.String(k), starlark.MakeInt(m[k]))
		}
		return d
	}
	ids := func(list []registry.ID) starlark.Value {
		v, _ := ToStarlark(append([]registry.ID{}, list...))
		return v
	}
	most := make([]starlark.Value, len(s.Lineage.MostChildren))
	for i, c := range s.Lineage.MostChildren {
		d := starlark.NewDict(2)
		d.SetKey(starlark.String("id"), starlark.Float(c.ID))
		d.SetKey(starlark.String("children"), starlark.MakeInt(c.Children))
		most[i] = d
	}
	lin := starlark.NewDict(4)
	lin.SetKey(starlark.String("roots"), ids(s.Lineage.Roots))
	lin.SetKey(starlark.String("orphans"), ids(s.Lineage.Orphans))
	lin.SetKey(starlark.String("deepest_chain"), ids(s.Lineage.DeepestChain))
	lin.SetKey(starlark.String("most_children"), starlark.NewList(most))
	d := starlark.NewDict(6)
	d.SetKey(starlark.String("total"), starlark.MakeInt(s.Total))
	d.SetKey(starlark.String("archived"), starlark.MakeInt(s.Archived))
	d.SetKey(starlark.String("by_stage"), counts(s.ByStage))
	d.SetKey(starlark.String("by_device"), counts(s.ByDevice))
	d.SetKey(starlark.String("by_status"), counts(s.ByStatus))
	d.SetKey(starlark.String("lineage"), lin)
	return d
}

// info(id)
func builtinInfo(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var idA idArg
		if err := unpack(fn, args, kwargs, "id", &idA); err != nil {
			return nil, err
		}
		id := idA.id()
		var rec *registry.Thread
		deletedAt := ""
		err := e.Store().View(func(tx *registry.Tx) error {
			var err error
			if rec, err = tx.Get(id); err == nil || !isNotFound(err) {
				return err
			}
			if a, aerr := tx.Archived(id); aerr == nil {
				rec, deletedAt = a.Thread, a.DeletedAt
				return nil
			}
			return err
		})
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		if deletedAt == "" {
			if note := (&owner.Checker{}).Apply(rec); note != "" {
				rec.Status += " (" + note + ")" // as autonode show prints it
			}
		}
		var b strings.Builder
		if err := registry.WriteInfo(&b, rec, deletedAt); err != nil {
			return nil, wrapErr(fn, err)
		}
		text := strings.TrimSuffix(b.String(), "\n")
		if th.Print != nil {
			th.Print(th, text)
		} else {
			fmt.Println(text)
		}
		return starlark.None, nil
	}
}
