package registry

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// applyUpdates sets the fields named in updates on t, converting and
// checking each value, and returns the names it applied, sorted. metadata
// is merged key by key. Fields the engine owns (history, parent,
// lineage, the "autonode" run state) are refused with a message that says
// what to use instead; any other name is the user's own field.
func applyUpdates(t *Thread, updates map[string]any, op string) ([]string, error) {
	keys := make([]string, 0, len(updates))
	for k := range updates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := updates[k]
		var err error
		switch k {
		case fName:
			var s string
			if s, err = wantString(k, v); err == nil {
				err = ValidateName(s)
				t.Name = s
			}
		case fStage:
			err = setChoice(&t.Stage, k, v, strings.ToUpper, stages)
		case fDevice:
			err = setChoice(&t.Device, k, v, strings.ToLower, devices)
		case fSandbox:
			t.Sandbox, err = wantBool(k, v)
		case fCaching:
			t.Caching, err = wantBool(k, v)
		case fPriority:
			f, ok := toFloat(v)
			if _, isBool := v.(bool); !ok || isBool || f != math.Trunc(f) || f < 0 || f > 1<<53 {
				err = fmt.Errorf("%w: priority: got %s, want a non-negative integer", ErrInvalid, describe(v))
			}
			t.Priority = int64(f)
		case fTTL:
			f, ok := toFloat(v)
			if _, isBool := v.(bool); !ok || isBool || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
				err = fmt.Errorf("%w: ttl: got %s, want a positive number of seconds", ErrInvalid, describe(v))
			}
			t.TTL = f
		case fMetadata:
			m, ok := v.(map[string]any)
			if !ok {
				err = fmt.Errorf("%w: metadata: got %s, want a dict", ErrInvalid, describe(v))
				break
			}
			if err = ValidateMetadata(m); err != nil {
				break
			}
			if t.Metadata == nil {
				t.Metadata = map[string]any{}
			}
			for mk, mv := range m {
				t.Metadata[mk] = cloneValue(mv)
			}
		case fParent, fLineage:
			err = fmt.Errorf("%w: %s cannot be changed by %s; use reparent", ErrInvalid, k, op)
		case fHistory:
			err = fmt.Errorf("%w: %s is kept by AutoNode and cannot be changed by %s", ErrInvalid, k, op)
		case RunStateKey:
			err = fmt.Errorf("%w: %s holds AutoNode's run state and cannot be changed by %s (every other field name is yours)", ErrInvalid, k, op)
		default:
			if err = ValidateFieldName(k); err != nil {
				break
			}
			if err = validateJSONValue(k, v, 0); err != nil {
				break
			}
			var raw []byte
			if raw, err = marshalValue(v); err == nil {
				if t.Extra == nil {
					t.Extra = map[string]json.RawMessage{}
				}
				t.Extra[k] = raw
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// setChoice sets *dst to the string v in the case norm gives it and checks
// that it is one of allowed; the error quotes v as it was given.
func setChoice(dst *string, k string, v any, norm func(string) string, allowed []string) error {
	s, err := wantString(k, v)
	if err != nil {
		return err
	}
	*dst = norm(s)
	if !slices.Contains(allowed, *dst) {
		return fmt.Errorf("%w: %s: got %q, want one of %s", ErrInvalid, k, s, strings.Join(allowed, ", "))
	}
	return nil
}

func wantString(k string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %s: got %s, want a string", ErrInvalid, k, describe(v))
	}
	return s, nil
}

func wantBool(k string, v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%w: %s: got %s, want True or False", ErrInvalid, k, describe(v))
	}
	return b, nil
}

// describe names a value and its type for error messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return fmt.Sprintf("%q (a string)", x)
	case bool:
		return fmt.Sprintf("%v (a bool)", x)
	case json.Number:
		return string(x)
	case float64, int, int64:
		return fmt.Sprint(x)
	case map[string]any:
		return "a dict"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("a %T", v)
}
