package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/autonode/autonode/registry"
)

// branch(source, new_id=None, overrides=None, token=None) -> Thread
func builtinBranch(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := refuseSandboxed(e, th, fn); err != nil {
			return nil, err
		}
		var srcV, newV, ovV, tokV starlark.Value = nil, starlark.None, starlark.None, starlark.None
		if err := starlark.UnpackArgs(fn, args, kwargs, "source", &srcV, "new_id?", &newV, "overrides?", &ovV, "token?", &tokV); err != nil {
			return nil, err
		}
		src, err := toID(fn, "source", srcV)
		if err != nil {
			return nil, err
		}
		newID, err := toOptID(fn, "new_id", newV)
		if err != nil {
			return nil, err
		}
		ov, err := toOptDict(fn, "overrides", ovV)
		if err != nil {
			return nil, err
		}
		tok, err := tokenOf(e, fn, "token", tokV)
		if err != nil {
			return nil, err
		}
		var out *registry.Thread
		err = e.Store().Update(func(tx *registry.Tx) error {
			target := tx.NextID()
			if newID != nil {
				target = *newID
			}
			var err error
			if out, err = tx.Branch(src, target, ov, tok); err == nil {
				err = admit(e, out)
			}
			return err
		})
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return NewThread(out), nil
	}
}

// fork(source, new_ids, overrides=None, token=None) -> list of Thread
func builtinFork(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := refuseSandboxed(e, th, fn); err != nil {
			return nil, err
		}
		var srcV, idsV, ovV, tokV starlark.Value = nil, nil, starlark.None, starlark.None
		if err := starlark.UnpackArgs(fn, args, kwargs, "source", &srcV, "new_ids", &idsV, "overrides?", &ovV, "token?", &tokV); err != nil {
			return nil, err
		}
		src, err := toID(fn, "source", srcV)
		if err != nil {
			return nil, err
		}
		ids, err := toIDList(fn, "new_ids", idsV)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, valueError(fn, "new_ids", idsV, "at least one new thread id")
		}
		var ovs []map[string]any
		if !isNone(ovV) {
			if !isListLike(ovV) {
				return nil, typeError(fn, "overrides", ovV, "a list with one dict (or None) per new id")
			}
			items := listItems(ovV)
			if len(items) != len(ids) {
				return nil, errorf(fn, "overrides: got %d entries for %d new_ids; give one dict (or None) per new id", len(items), len(ids))
			}
			ovs = make([]map[string]any, len(items))
			for i, it := range items {
				if ovs[i], err = toOptDict(fn, fmt.Sprintf("overrides[%d]", i), it); err != nil {
					return nil, err
				}
			}
		}
		tok, err := tokenOf(e, fn, "token", tokV)
		if err != nil {
			return nil, err
		}
		var out []*registry.Thread
		err = e.Store().Update(func(tx *registry.Tx) error {
			var err error
			if out, err = tx.Fork(src, ids, ovs, tok); err == nil {
				err = admit(e, out...)
			}
			return err
		})
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return threadList(out), nil
	}
}

// reparent(child, new_parent, token=None) -> Thread
func builtinReparent(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := refuseSandboxed(e, th, fn); err != nil {
			return nil, err
		}
		var childV, parentV, tokV starlark.Value = nil, nil, starlark.None
		if err := starlark.UnpackArgs(fn, args, kwargs, "child", &childV, "new_parent", &parentV, "token?", &tokV); err != nil {
			return nil, err
		}
		child, err := toID(fn, "child", childV)
		if err != nil {
			return nil, err
		}
		parent, err := toID(fn, "new_parent", parentV)
		if err != nil {
			return nil, err
		}
		tok, err := tokenOf(e, fn, "token", tokV)
		if err != nil {
			return nil, err
		}
		return update(e, fn, func(tx *registry.Tx) (*registry.Thread, error) { return tx.Reparent(child, parent, tok) })
	}
}

// rename(id, name, token=None) -> Thread
func builtinRename(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := refuseSandboxed(e, th, fn); err != nil {
			return nil, err
		}
		var idV, nameV, tokV starlark.Value = nil, nil, starlark.None
		if err := starlark.UnpackArgs(fn, args, kwargs, "id", &idV, "name", &nameV, "token?", &tokV); err != nil {
			return nil, err
		}
		id, err := toID(fn, "id", idV)
		if err != nil {
			return nil, err
		}
		name, err := toString(fn, "name", nameV)
		if err != nil {
			return nil, err
		}
		if err := registry.ValidateName(name); err != nil {
			return nil, invalid(fn, "name", nameV, err)
		}
		tok, err := tokenOf(e, fn, "token", tokV)
		if err != nil {
			return nil, err
		}
		return update(e, fn, func(tx *registry.Tx) (*registry.Thread, error) { return tx.Rename(id, name, tok) })
	}
}

// mutate(id, updates, safe_fields=None, token=None, if_version=None) -> Thread
func builtinMutate(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := refuseSandboxed(e, th, fn); err != nil {
			return nil, err
		}
		var idV, updV, safeV, tokV, verV starlark.Value = nil, nil, starlark.None, starlark.None, starlark.None
		if err := starlark.UnpackArgs(fn, args, kwargs, "id", &idV, "updates", &updV, "safe_fields?", &safeV, "token?", &tokV, "if_version?", &verV); err != nil {
			return nil, err
		}
		var ifVersion *int64
		if !isNone(verV) {
			v, err := toInt(fn, "if_version", verV)
			if err != nil {
				return nil, err
			}
			if v < 0 {
				return nil, valueError(fn, "if_version", verV, "a non-negative int (a Thread's version)")
			}
			ifVersion = &v
		}
		id, err := toID(fn, "id", idV)
		if err != nil {
			return nil, err
		}
		upd, err := toDict(fn, "updates", updV)
		if err != nil {
			return nil, err
		}
		var safe []string
		if !isNone(safeV) {
			if safe, err = toStringList(fn, "safe_fields", safeV); err != nil {
				return nil, err
			}
			if safe == nil {
				safe = []string{}
			}
		}
		tok, err := tokenOf(e, fn, "token", tokV)
		if err != nil {
			return nil, err
		}
		var dropped []string
		v, err := update(e, fn, func(tx *registry.Tx) (*registry.Thread, error) {
			if ifVersion != nil {
				if _, err := tx.Open(id, tok); err != nil {
					return nil, err
				}
				if err := tx.Expect(id, *ifVersion); err != nil {
					return nil, err
				}
			}
			t, d, err := tx.Mutate(id, upd, safe, tok)
			dropped = d
			if err == nil {
				err = admit(e, t)
			}
			return t, err
		})
		if err != nil {
			return nil, err
		}
		if len(dropped) > 0 {
			list, _ := ToStarlark(dropped)
			msg := fmt.Sprintf("%s: warning: thread %s: fields not in safe_fields were not changed: %s", fn, id, list)
			if th.Print != nil {
				th.Print(th, msg)
			}
		}
		return v, nil
	}
}

// update(id, fn, token=None) -> Thread
//
// fn runs inside the registry transaction, so that nothing can change the
// thread between the read it is given and the write of what it returns:
// an atomic read-modify-write. While it runs, the builtins that use the
// registry or the engine are refused on its thread (they would wait for
// the transaction fn is part of).
func builtinUpdate(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := refuseSandboxed(e, th, fn); err != nil {
			return nil, err
		}
		var idV, fnV, tokV starlark.Value = nil, nil, starlark.None
		if err := starlark.UnpackArgs(fn, args, kwargs, "id", &idV, "fn", &fnV, "token?", &tokV); err != nil {
			return nil, err
		}
		id, err := toID(fn, "id", idV)
		if err != nil {
			return nil, err
		}
		call, ok := fnV.(starlark.Callable)
		if !ok {
			return nil, typeError(fn, "fn", fnV, "a function (thread) -> dict of changes")
		}
		tok, err := tokenOf(e, fn, "token", tokV)
		if err != nil {
			return nil, err
		}
		return update(e, fn, func(tx *registry.Tx) (*registry.Thread, error) {
			cur, err := tx.Open(id, tok)
			if err != nil {
				return nil, err
			}
			th.SetLocal(inUpdateKey, fn)
			res, err := starlark.Call(th, call, starlark.Tuple{NewThread(cur)}, nil)
			th.SetLocal(inUpdateKey, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: fn: %w", fn, err)
			}
			if isNone(res) {
				return cur, nil
			}
			if _, ok := res.(*starlark.Dict); !ok {
				return nil, errorf(fn, "fn returned %s (%s); want a dict of the fields to change (or None for no change)", repr(res), typeName(res))
			}
			changes, err := toDict(fn, "fn's result", res)
			if err != nil {
				return nil, err
			}
			t, _, err := tx.Mutate(id, changes, nil, tok)
			return t, err
		})
	}
}

// inUpdateKey marks a Starlark thread running the fn of update().
const inUpdateKey = "autonode.update"

// refuseInUpdate refuses a builtin that uses the registry or the engine
// inside update's fn: the transaction fn runs in holds the registry.
func refuseInUpdate(th *starlark.Thread, fn string) error {
	if outer, ok := th.Local(inUpdateKey).(string); ok && outer != "" {
		return errorf(fn, "refused inside the function given to %s: it runs inside the registry transaction, so it may only compute and return the changes", outer)
	}
	return nil
}

// update runs op in a registry write transaction and returns its thread.
func update(e Engine, fn string, op func(tx *registry.Tx) (*registry.Thread, error)) (starlark.Value, error) {
	var out *registry.Thread
	err := e.Store().Update(func(tx *registry.Tx) error {
		var err error
		out, err = op(tx)
		return err
	})
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	return NewThread(out), nil
}

// delete(*ids, token=None) -> list
func builtinDelete(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := refuseSandboxed(e, th, fn); err != nil {
			return nil, err
		}
		var tokV starlark.Value = starlark.None
		if err := starlark.UnpackArgs(fn, nil, kwargs, "token?", &tokV); err != nil {
			return nil, err
		}
		if len(args) == 0 {
			return nil, errorf(fn, "no thread ids given; call delete(id, ...)")
		}
		ids := make([]registry.ID, len(args))
		for i, a := range args {
			id, err := toID(fn, fmt.Sprintf("ids[%d]", i), a)
			if err != nil {
				return nil, err
			}
			ids[i] = id
		}
		tok, err := tokenOf(e, fn, "token", tokV)
		if err != nil {
			return nil, err
		}
		var out []*registry.Thread
		err = e.Store().Update(func(tx *registry.Tx) error {
			for _, id := range ids {
				t, err := tx.Delete(id, tok)
				if err != nil {
					return err
				}
				out = append(out, t)
			}
			return nil
		})
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return threadList(out), nil
	}
}

// restore(id, token=None) -> Thread
func builtinRestore(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := refuseSandboxed(e, th, fn); err != nil {
			return nil, err
		}
		var idV, tokV starlark.Value = nil, starlark.None
		if err := starlark.UnpackArgs(fn, args, kwargs, "id", &idV, "token?", &tokV); err != nil {
			return nil, err
		}
		id, err := toID(fn, "id", idV)
		if err != nil {
			return nil, err
		}
		tok, err := tokenOf(e, fn, "token", tokV)
		if err != nil {
			return nil, err
		}
		return update(e, fn, func(tx *registry.Tx) (*registry.Thread, error) { return tx.Restore(id, tok) })
	}
}

// lineage(id) -> struct(ancestors=[...], descendants=[...])
func builtinLineage(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var idV starlark.Value
		if err := starlark.UnpackArgs(fn, args, kwargs, "id", &idV); err != nil {
			return nil, err
		}
		id, err := toID(fn, "id", idV)
		if err != nil {
			return nil, err
		}
		if err := refuseSandboxedRead(e, th, fn, &id); err != nil {
			return nil, err
		}
		var anc, desc []registry.ID
		err = e.Store().View(func(tx *registry.Tx) error {
			var err error
			if anc, err = tx.Ancestors(id); err != nil {
				return err
			}
			desc, err = tx.Descendants(id)
			return err
		})
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		a, _ := frozen(append([]registry.ID{}, anc...))
		d, _ := frozen(append([]registry.ID{}, desc...))
		s := starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{"ancestors": a, "descendants": d})
		s.Freeze()
		return s, nil
	}
}
