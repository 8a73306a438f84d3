package registry

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Merge strategies. The seed spells in-place merges by suffixing the
// strategy ("prefer-left-inplace-left"); ParseStrategy accepts both forms.
const (
	PreferLeft  = "prefer-left"
	PreferRight = "prefer-right"
	Manual      = "manual"
)

var strategies = []string{PreferLeft, PreferRight, Manual}

// Strategies lists the merge strategies.
func Strategies() []string { return slices.Clone(strategies) }

// MergeOptions configures Tx.Merge.
type MergeOptions struct {
	// NewID is the target; nil picks the next free id. Ignored with Inplace.
	NewID *ID
	// Strategy is prefer-left (default), prefer-right or manual, or the
	// seed's prefer-left-inplace-left / prefer-right-inplace-right.
	Strategy string
	// Inplace is "left" or "right" to write the result over that thread, or
	// "" for a new thread.
	Inplace string
	// ConflictKeys limits which keys count as conflicts; other keys take the
	// left value when present, else the right one.
	ConflictKeys []string
	// Resolve gives the value of conflicting keys for the manual strategy.
	Resolve map[string]any
	// ResolveFunc, when set, is called for every conflicting key that
	// Resolve does not cover (manual strategy).
	ResolveFunc func(key string, left, right any) (any, error)
	// Token opens the left thread; RightToken the right one (defaults to
	// Token). A new merged thread is protected by Token, and by Session
	// when it is set (the session token of the program that merges, which
	// then opens the result too).
	Token, RightToken string
	Session           string
	// Name names a new merged thread; by default the name merges like any
	// other key, falling back to Merged-<int(left)>-<int(right)>.
	Name string
}

// Conflict is one key that a manual merge could not decide.
type Conflict struct {
	Key         string
	Left, Right any
}

// ConflictError lists every unresolved key of a manual merge, with both
// values. It matches ErrConflict with errors.Is.
type ConflictError struct {
	Left, Right ID
	Conflicts   []Conflict
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "merge %s and %s: %d unresolved conflict(s); give a resolution for each key:", e.Left, e.Right, len(e.Conflicts))
	for _, c := range e.Conflicts {
		l, _ := marshalValue(c.Left)
		r, _ := marshalValue(c.Right)
		fmt.Fprintf(&b, "\n  %s: left=%s right=%s", c.Key, l, r)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ParseStrategy splits a strategy name into the strategy and the in-place
// side ("", "left" or "right").
func ParseStrategy(s string) (strategy, inplace string, err error) {
	switch s {
	case "", PreferLeft:
		return PreferLeft, "", nil
	case PreferRight, Manual:
		return s, "", nil
	case PreferLeft + "-inplace-left":
		return PreferLeft, "left", nil
	case PreferRight + "-inplace-right":
		return PreferRight, "right", nil
	}
	return "", "", fmt.Errorf("%w: strategy: got %q, want one of %s (or prefer-left-inplace-left, prefer-right-inplace-right)", ErrInvalid, s, strings.Join(strategies, ", "))
}

// mergeable reports whether field k takes part in a merge: id, parent and
// lineage are the merge's own, and the run state never merges.
func mergeable(k string) bool {
	return k != fID && k != fParent && k != fLineage && k != RunStateKey
}

// Merge combines left and right over the union of their keys (DESIGN §3):
// a key on one side only is taken; on both sides objects merge key by key
// with the preferred side winning, arrays concatenate without duplicates
// with the preferred side first, scalars take the preferred side. manual
// takes nothing on faith: every conflicting key needs a resolution, else
// the merge fails with a *ConflictError listing them all.
func (tx *Tx) Merge(left, right ID, o MergeOptions) (*Thread, error) {
	strategy, inplace, err := ParseStrategy(o.Strategy)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if o.Inplace != "" {
		if o.Inplace != "left" && o.Inplace != "right" {
			return nil, fmt.Errorf("merge: %w: inplace: got %q, want \"left\", \"right\" or none", ErrInvalid, o.Inplace)
		}
		if inplace != "" && inplace != o.Inplace {
			return nil, fmt.Errorf("merge: %w: strategy %q writes in place on the %s, but inplace is %q", ErrInvalid, o.Strategy, inplace, o.Inplace)
		}
		inplace = o.Inplace
	}
	if inplace != "" && o.NewID != nil {
		return nil, fmt.Errorf("merge: %w: new_id and an in-place merge exclude each other", ErrInvalid)
	}
	if left == right {
		return nil, fmt.Errorf("merge: %w: cannot merge thread %s with itself", ErrInvalid, left)
	}
	rtok := o.RightToken
	if rtok == "" {
		rtok = o.Token
	}
	l, err := tx.open(left, o.Token)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	r, err := tx.open(right, rtok)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	var target ID
	switch inplace {
	case "left":
		target = left
	case "right":
		target = right
	default:
		if o.NewID != nil {
			target = *o.NewID
		} else {
			target = tx.NextID()
		}
		if err := tx.checkFree(target); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
	}
	lm, err := mergeMap(l)
	if err != nil {
		return nil, err
	}
	rm, err := mergeMap(r)
	if err != nil {
		return nil, err
	}
	out, conflicts, err := mergeMaps(lm, rm, strategy, o)
	if err != nil {
		return nil, fmt.Errorf("merge %s and %s: %w", left, right, err)
	}
	if len(conflicts) > 0 {
		return nil, &ConflictError{Left: left, Right: right, Conflicts: conflicts}
	}
	out[fID] = json.Number(target.Key())
	raw, err := marshalValue(out)
	if err != nil {
		return nil, fmt.Errorf("merge %s and %s: %w", left, right, err)
	}
	m := new(Thread)
	if err := m.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("merge %s and %s: result: %w", left, right, err)
	}
	if o.Name != "" {
		m.Name = o.Name
	} else if _, ok := out[fName]; !ok {
		m.Name = fmt.Sprintf("Merged-%d-%d", left.Int(), right.Int())
	}
	// Lineage is the union of both sides' lineages and the sources; a
	// new merged thread's parents are its sources (MergedFrom), an
	// in-place one keeps its own parent.
	m.Lineage = []ID{}
	for _, id := range append(append(append([]ID(nil), l.Lineage...), r.Lineage...), left, right) {
		if !containsID(m.Lineage, id) && id != target {
			m.Lineage = append(m.Lineage, id)
		}
	}
	m.Parent = nil
	switch inplace {
	case "left":
		m.Parent = l.Parent
	case "right":
		m.Parent = r.Parent
	}
	m.MergedFrom = nil
	for _, id := range []ID{left, right} {
		if id != target {
			m.MergedFrom = append(m.MergedFrom, id)
		}
	}
	m.Status = StatusPending
	markMerged(m, l, r, inplace)
	seedName := strategy
	if inplace != "" {
		seedName = strategy + "-inplace-" + inplace
	}
	m.AddHistory("Merged threads %s and %s into %s with strategy %s.", left, right, target, PyRepr(seedName))
	switch inplace {
	case "left":
		m.copyOwners(l)
	case "right":
		m.copyOwners(r)
	default:
		if err := m.setOwners([]string{o.Token, o.Session}); err != nil {
			return nil, fmt.Errorf("merge %s and %s: %w", left, right, err)
		}
	}
	if err := tx.write(m); err != nil {
		return nil, fmt.Errorf("merge %s and %s: %w", left, right, err)
	}
	return m, nil
}

// mergeMap is the thread as a JSON object restricted to mergeable keys.
func mergeMap(t *Thread) (map[string]any, error) {
	raw, err := t.PublicJSON()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := decodeJSON(raw, &m); err != nil {
		return nil, fmt.Errorf("thread %s: %w", t.ID, err)
	}
	for k := range m {
		if !mergeable(k) {
			delete(m, k)
		}
	}
	return m, nil
}

func mergeMaps(l, r map[string]any, strategy string, o MergeOptions) (map[string]any, []Conflict, error) {
	keys := make([]string, 0, len(l)+len(r))
	for k := range l {
		keys = append(keys, k)
	}
	for k := range r {
		if _, ok := l[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make(map[string]any, len(keys))
	var conflicts []Conflict
	for _, k := range keys {
		lv, inL := l[k]
		rv, inR := r[k]
		switch {
		case !inR:
			out[k] = lv
			continue
		case !inL:
			out[k] = rv
			continue
		case o.ConflictKeys != nil && !slices.Contains(o.ConflictKeys, k):
			out[k] = lv
			continue
		}
		switch strategy {
		case PreferLeft:
			out[k] = combine(lv, rv)
		case PreferRight:
			out[k] = combine(rv, lv)
		case Manual:
			if reflect.DeepEqual(lv, rv) {
				out[k] = lv
				continue
			}
			if v, ok := o.Resolve[k]; ok {
				out[k] = v
				continue
			}
			if o.ResolveFunc != nil {
				v, err := o.ResolveFunc(k, lv, rv)
				if err != nil {
					return nil, nil, fmt.Errorf("resolve %s: %w", k, err)
				}
				out[k] = v
				continue
			}
			conflicts = append(conflicts, Conflict{Key: k, Left: lv, Right: rv})
		}
	}
	return out, conflicts, nil
}

// combine merges a preferred value with the other side's.
func combine(pref, other any) any {
	switch p := pref.(type) {
	case map[string]any:
		if o, ok := other.(map[string]any); ok {
			m := make(map[string]any, len(p)+len(o))
			for k, v := range o {
				m[k] = v
			}
			for k, v := range p {
				m[k] = v
			}
			return m
		}
	case []any:
		if o, ok := other.([]any); ok {
			out := append([]any(nil), p...)
			for _, v := range o {
				dup := false
				for _, e := range out {
					if reflect.DeepEqual(e, v) {
						dup = true
						break
					}
				}
				if !dup {
					out = append(out, v)
				}
			}
			return out
		}
	}
	return pref
}

// markMerged marks the history lines the merge result m took from a
// source as inherited from it; an in-place merge's own lines stay its own.
func markMerged(m, l, r *Thread, inplace string) {
	own := map[string]bool{}
	switch inplace {
	case "left":
		own = lineSet(l.History)
	case "right":
		own = lineSet(r.History)
	}
	fromL, fromR := lineSet(l.History), lineSet(r.History)
	for i, h := range m.History {
		switch {
		case own[h]:
		case fromL[h]:
			m.History[i] = markLine(h, l.ID)
		case fromR[h]:
			m.History[i] = markLine(h, r.ID)
		}
	}
}

func lineSet(lines []string) map[string]bool {
	s := make(map[string]bool, len(lines))
	for _, h := range lines {
		s[h] = true
	}
	return s
}
