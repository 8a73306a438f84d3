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
		var src idArg
		var newID optID
		var ov optDict
		var tokA tokenArg
		if err := unpack(fn, args, kwargs, "source", &src, "new_id?", &newID, "overrides?", &ov, "token?", &tokA); err != nil {
			return nil, err
		}
		tok, err := tokA.resolve(e, fn, "token")
		if err != nil {
			return nil, err
		}
		var out *registry.Thread
		err = e.Store().Update(func(tx *registry.Tx) error {
			target := tx.NextID()
			if newID.set {
				target = newID.v.id()
			}
			var err error
			if out, err = tx.Branch(src.id(), target, ov.v, tok, sessionToken(e)...); err == nil {
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
		var src idArg
		var idsV, ovV starlark.Value
		var ids idList
		var tokA tokenArg
		if err := unpack(fn, args, kwargs, "source", &src, "new_ids", &idsV, "overrides?", &ovV, "token?", &tokA); err != nil {
			return nil, err
		}
		if err := arg(fn, "new_ids", idsV, &ids); err != nil {
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
				var o optDict
				if err := arg(fn, fmt.Sprintf("overrides[%d]", i), it, &o); err != nil {
					return nil, err
				}
				ovs[i] = o.v
			}
		}
		tok, err := tokA.resolve(e, fn, "token")
		if err != nil {
			return nil, err
		}
		var out []*registry.Thread
		err = e.Store().Update(func(tx *registry.Tx) error {
			var err error
			if out, err = tx.Fork(src.id(), ids, ovs, tok, sessionToken(e)...); err == nil {
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
		var child, parent idArg
		var tokA tokenArg
		if err := unpack(fn, args, kwargs, "child", &child, "new_parent", &parent, "token?", &tokA); err != nil {
			return nil, err
		}
		tok, err := tokA.resolve(e, fn, "token")
		if err != nil {
			return nil, err
		}
		return update(e, fn, func(tx *registry.Tx) (*registry.Thread, error) { return tx.Reparent(child.id(), parent.id(), tok) })
	}
}

// rename(id, name, token=None) -> Thread
func builtinRename(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var id idArg
		var name stringArg
		var tokA tokenArg
		if err := unpack(fn, args, kwargs, "id", &id, "name", &name, "token?", &tokA); err != nil {
			return nil, err
		}
		if err := registry.ValidateName(string(name)); err != nil {
			return nil, invalid(fn, "name", starlark.String(name), err)
		}
		tok, err := tokA.resolve(e, fn, "token")
		if err != nil {
			return nil, err
		}
		return update(e, fn, func(tx *registry.Tx) (*registry.Thread, error) { return tx.Rename(id.id(), string(name), tok) })
	}
}

// mutate(id, updates, safe_fields=None, token=None, if_version=None) -> Thread
func builtinMutate(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var idA idArg
		var upd dictArg
		var safeA optStringList
		var tokA tokenArg
		var ver optInt
		if err := unpack(fn, args, kwargs, "id", &idA, "updates", &upd, "safe_fields?", &safeA, "token?", &tokA, "if_version?", &ver); err != nil {
			return nil, err
		}
		if ver.set && ver.v < 0 {
			return nil, valueError(fn, "if_version", starlark.MakeInt64(int64(ver.v)), "a non-negative int (a Thread's version)")
		}
		id := idA.id()
		var safe []string
		if safeA.set {
			safe = append([]string{}, safeA.v...)
		}
		tok, err := tokA.resolve(e, fn, "token")
		if err != nil {
			return nil, err
		}
		var dropped []string
		v, err := update(e, fn, func(tx *registry.Tx) (*registry.Thread, error) {
			if ver.set {
				if _, err := tx.Open(id, tok); err != nil {
					return nil, err
				}
				if err := tx.Expect(id, int64(ver.v)); err != nil {
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
		var idA idArg
		var fnV starlark.Value
		var tokA tokenArg
		if err := unpack(fn, args, kwargs, "id", &idA, "fn", &fnV, "token?", &tokA); err != nil {
			return nil, err
		}
		id := idA.id()
		call, ok := fnV.(starlark.Callable)
		if !ok {
			return nil, typeError(fn, "fn", fnV, "a function (thread) -> dict of changes")
		}
		tok, err := tokA.resolve(e, fn, "token")
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
			var changes dictArg
			if err := arg(fn, "fn's result", res, &changes); err != nil {
				return nil, err
			}
			t, _, err := tx.Mutate(id, changes, nil, tok)
			return t, err
		})
	}
}

// inUpdateKey marks a Starlark thread running the fn of update().
const inUpdateKey = "autonode.update"

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
		var tokA tokenArg
		if err := unpack(fn, nil, kwargs, "token?", &tokA); err != nil {
			return nil, err
		}
		if len(args) == 0 {
			return nil, errorf(fn, "no thread ids given; call delete(id, ...)")
		}
		var ids idList
		if err := arg(fn, "ids", args, &ids); err != nil {
			return nil, err
		}
		tok, err := tokA.resolve(e, fn, "token")
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
		id, tok, err := unpackIDToken(e, fn, args, kwargs)
		if err != nil {
			return nil, err
		}
		return update(e, fn, func(tx *registry.Tx) (*registry.Thread, error) { return tx.Restore(id, tok) })
	}
}

// lineage(id) -> struct(ancestors=[...], descendants=[...])
func builtinLineage(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var idA idArg
		if err := unpack(fn, args, kwargs, "id", &idA); err != nil {
			return nil, err
		}
		id := idA.id()
		var anc, desc []registry.ID
		err := e.Store().View(func(tx *registry.Tx) error {
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

// sessionToken is the engine's session token, as the extra owner of a
// thread a lineage operation derives (branch, fork, merge): the program
// that made it opens it, as it opens the threads it spawns. None when the
// session has no token.
func sessionToken(e Engine) []string {
	if tok, err := e.Token(""); err == nil && tok != "" {
		return []string{tok}
	}
	return nil
}
