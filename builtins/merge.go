package builtins

import (
	"errors"
	"fmt"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/registry"
)

// merge(left, right, new_id=None, strategy="prefer-left", conflict_keys=None,
// resolve=None, inplace=None, token=None) -> Thread
//
// A resolve function is Starlark code, and a registry transaction must not
// run Starlark (the code could call a builtin that opens another
// transaction). So a manual merge with a resolve function first runs the
// merge without it, which fails without writing anything and lists the
// conflicts; the function is then called for each conflict on the
// caller's thread, and the merge runs again with the answers.
func builtinMerge(e Engine) builtinFunc {
	return func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var leftA, rightA idArg
		var newID optID
		strat := stringArg(registry.PreferLeft)
		var ck optStringList
		var inpl optString
		var resV starlark.Value = starlark.None
		var tokV starlark.Value = starlark.None
		if err := unpack(fn, args, kwargs, "left", &leftA, "right", &rightA, "new_id?", &newID,
			"strategy?", &strat, "conflict_keys?", &ck, "resolve?", &resV, "inplace?", &inpl, "token?", &tokV); err != nil {
			return nil, err
		}
		left, right := leftA.id(), rightA.id()
		o := registry.MergeOptions{NewID: idPtr(newID), Strategy: string(strat), Inplace: string(inpl.v)}
		strategy, seedInplace, err := registry.ParseStrategy(o.Strategy)
		if err != nil {
			return nil, valueError(fn, "strategy", starlark.String(strat), "one of prefer-left, prefer-right, manual (or prefer-left-inplace-left, prefer-right-inplace-right)")
		}
		if ck.set {
			o.ConflictKeys = append([]string{}, ck.v...)
		}
		if inpl.set {
			if o.Inplace != "left" && o.Inplace != "right" {
				return nil, valueError(fn, "inplace", starlark.String(inpl.v), "one of left, right")
			}
			if seedInplace != "" && seedInplace != o.Inplace {
				return nil, errorf(fn, "inplace: got %q, but strategy %q writes in place on the %s", o.Inplace, o.Strategy, seedInplace)
			}
		}
		if (o.Inplace != "" || seedInplace != "") && o.NewID != nil {
			return nil, errorf(fn, "new_id: an in-place merge writes over left or right; give new_id or inplace, not both")
		}
		var resolveFn starlark.Callable
		switch r := resV.(type) {
		case starlark.NoneType:
		case *starlark.Dict:
			var d dictArg
			if err := arg(fn, "resolve", r, &d); err != nil {
				return nil, err
			}
			o.Resolve = d
		case starlark.Callable:
			resolveFn = r
		default:
			return nil, typeError(fn, "resolve", resV, "a dict {key: value} or a function (key, left, right) -> value")
		}
		if !isNone(resV) && strategy != registry.Manual {
			return nil, errorf(fn, "resolve: only strategy \"manual\" uses resolve; got strategy %q", o.Strategy)
		}
		if o.Token, o.RightToken, err = mergeTokens(e, fn, tokV); err != nil {
			return nil, err
		}
		if s := sessionToken(e); len(s) > 0 {
			o.Session = s[0]
		}
		run := func() (*registry.Thread, error) {
			var out *registry.Thread
			err := e.Store().Update(func(tx *registry.Tx) error {
				var err error
				if out, err = tx.Merge(left, right, o); err == nil {
					err = admit(e, out)
				}
				return err
			})
			return out, err
		}
		out, err := run()
		var ce *registry.ConflictError
		if err != nil && resolveFn != nil && errors.As(err, &ce) {
			if o.Resolve == nil {
				o.Resolve = map[string]any{}
			}
			for _, c := range ce.Conflicts {
				v, err := callResolve(th, fn, resolveFn, c)
				if err != nil {
					return nil, err
				}
				o.Resolve[c.Key] = v
			}
			out, err = run()
		}
		if err != nil {
			return nil, wrapErr(fn, err)
		}
		return NewThread(out), nil
	}
}

// callResolve asks the resolve function for the value of one conflicting
// key: resolve(key, left, right).
func callResolve(th *starlark.Thread, fn string, resolve starlark.Callable, c registry.Conflict) (any, error) {
	l, err := frozen(c.Left)
	if err != nil {
		return nil, errorf(fn, "resolve: key %q: left value: %v", c.Key, err)
	}
	r, err := frozen(c.Right)
	if err != nil {
		return nil, errorf(fn, "resolve: key %q: right value: %v", c.Key, err)
	}
	v, err := starlark.Call(th, resolve, starlark.Tuple{starlark.String(c.Key), l, r}, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: resolve(%q, ...): %w", fn, c.Key, err)
	}
	g, err := FromStarlark(v)
	if err != nil {
		return nil, errorf(fn, "resolve(%q, ...) returned %s: %v", c.Key, repr(v), err)
	}
	return g, nil
}

// mergeTokens resolves merge's token argument: None (the session token),
// one string for both sides, or a list or tuple of two (left, right).
func mergeTokens(e Engine, fn string, v starlark.Value) (left, right string, err error) {
	one := func(param string, v starlark.Value) (string, error) {
		var t tokenArg
		if err := arg(fn, param, v, &t); err != nil {
			return "", err
		}
		return t.resolve(e, fn, param)
	}
	if !isListLike(v) {
		tok, err := one("token", v)
		return tok, tok, err
	}
	items := listItems(v)
	if len(items) != 2 {
		return "", "", valueError(fn, "token", v, "a token, or a list of two tokens (left, right)")
	}
	if left, err = one("token[0]", items[0]); err != nil {
		return "", "", err
	}
	if right, err = one("token[1]", items[1]); err != nil {
		return "", "", err
	}
	return left, right, nil
}
