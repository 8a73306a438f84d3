// Package registrytest is the conformance suite for registry.Store
// implementations: every operation and every error path, run against the
// Store interface so that a new backend passes the same tests as the JSON
// file.
package registrytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/autonode/autonode/registry"
)

// Tokens used by the suite.
const (
	TokA = "token-aaaaaaaaaaaaaaaa"
	TokB = "token-bbbbbbbbbbbbbbbb"
	TokX = "token-xxxxxxxxxxxxxxxx"
)

// Factory makes stores for the suite. New returns an empty store; Reopen
// closes s and opens the same registry again (to check durability).
type Factory struct {
	New    func(t *testing.T) registry.Store
	Reopen func(t *testing.T, s registry.Store) registry.Store
}

// Run runs every conformance test against stores made by f.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"CreateGet", testCreateGet},
		{"Validation", testValidation},
		{"Put", testPut},
		{"TokenErrorsIndistinguishable", testTokenErrors},
		{"Branch", testBranch},
		{"Fork", testFork},
		{"MergePrefer", testMergePrefer},
		{"MergeManual", testMergeManual},
		{"MergeInplace", testMergeInplace},
		{"Reparent", testReparent},
		{"RenameMutate", testRenameMutate},
		{"DeleteRestore", testDeleteRestore},
		{"Transactions", testTransactions},
		{"LargeTransaction", testLargeTransaction},
		{"Lineage", testLineage},
		{"Summarize", testSummarize},
		{"Query", testQuery},
		{"List", testList},
		{"MarkCrashed", testMarkCrashed},
		{"Durable", testDurable},
		{"Concurrent", testConcurrent},
		{"Versions", testVersions},
		{"TxClosed", testTxClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

// errResolverSaysNo is what the manual-merge test's failing resolver returns.
var errResolverSaysNo = errors.New("the resolver refuses")

func id(f float64) registry.ID { return registry.ID(f) }

func idp(f float64) *registry.ID { i := registry.ID(f); return &i }

func newThread(i float64, stage string) *registry.Thread {
	return registry.NewThread(id(i), stage)
}

// seed creates threads 1.0 (CORE, TokA) and 2.0 (BASE, TokB).
func seed(t *testing.T, s registry.Store) {
	t.Helper()
	must(t, s.Update(func(tx *registry.Tx) error {
		a := newThread(1, "CORE")
		a.Priority = 2
		a.TTL = 15
		a.Metadata = map[string]any{"max_memory_mb": json.Number("1000"), "lr": json.Number("0.1")}
		a.AddHistory("Thread 'a' initialized with priority 2.")
		if err := tx.Create(a, TokA); err != nil {
			return err
		}
		b := newThread(2, "BASE")
		b.Metadata = map[string]any{"lr": json.Number("0.5"), "tags": []any{"x"}}
		b.AddHistory("Thread 'b' initialized with priority 1.")
		return tx.Create(b, TokB)
	}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

func get(t *testing.T, s registry.Store, i float64) *registry.Thread {
	t.Helper()
	var th *registry.Thread
	must(t, s.View(func(tx *registry.Tx) error {
		var err error
		th, err = tx.Get(id(i))
		return err
	}))
	return th
}

func lastHistory(th *registry.Thread) string {
	if len(th.History) == 0 {
		return ""
	}
	h := th.History[len(th.History)-1]
	if i := strings.Index(h, "] "); i >= 0 {
		return h[i+2:]
	}
	return h
}

func testCreateGet(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	a := get(t, s, 1)
	if a.Name != "Thread-1-core" || a.Stage != "CORE" || a.Priority != 2 || a.TTL != 15 || !a.Sandbox || !a.Caching || a.Device != "cpu" {
		t.Errorf("thread 1.0 = %+v", a)
	}
	if a.Metadata["lr"] != json.Number("0.1") || a.Status != registry.StatusPending || !a.Protected() {
		t.Errorf("thread 1.0 metadata/status = %v %q protected=%v", a.Metadata, a.Status, a.Protected())
	}
	err := s.Update(func(tx *registry.Tx) error { return tx.Create(newThread(1, ""), TokA) })
	wantErr(t, err, registry.ErrExists)
	err = s.Update(func(tx *registry.Tx) error { return tx.Create(newThread(3, "")) })
	wantErr(t, err, registry.ErrTokenRequired)
	err = s.View(func(tx *registry.Tx) error { _, err := tx.Get(42); return err })
	wantErr(t, err, registry.ErrNotFound)
	err = s.View(func(tx *registry.Tx) error { return tx.Create(newThread(3, ""), TokA) })
	wantErr(t, err, registry.ErrReadOnly)
	raw, err := get(t, s, 1).PublicJSON()
	must(t, err)
	if strings.Contains(string(raw), "hash") || strings.Contains(string(raw), TokA) {
		t.Errorf("public JSON leaks the token: %s", raw)
	}
}

func testValidation(t *testing.T, f Factory) {
	s := f.New(t)
	deep := map[string]any{}
	cur := deep
	for i := 0; i < 40; i++ {
		n := map[string]any{}
		cur["k"] = n
		cur = n
	}
	cases := []struct {
		name string
		edit func(*registry.Thread)
		want string
	}{
		{"stage", func(th *registry.Thread) { th.Stage = "FAST" }, `stage: got "FAST", want one of CRITICAL, CORE, BASE`},
		{"device", func(th *registry.Thread) { th.Device = "tpu" }, `device: got "tpu"`},
		{"priority", func(th *registry.Thread) { th.Priority = -1 }, "priority: got -1, want a non-negative integer"},
		{"ttl", func(th *registry.Thread) { th.TTL = 0 }, "ttl: got 0.0, want a positive number"},
		{"name control", func(th *registry.Thread) { th.Name = "a\x07b" }, "control character"},
		{"name empty", func(th *registry.Thread) { th.Name = " " }, "name is empty"},
		{"name long", func(th *registry.Thread) { th.Name = strings.Repeat("n", 300) }, "at most 256"},
		{"metadata deep", func(th *registry.Thread) { th.Metadata = deep }, "nested deeper than"},
		{"metadata huge", func(th *registry.Thread) { th.Metadata = map[string]any{"s": strings.Repeat("x", 2<<20)} }, "bytes long"},
		{"metadata key control", func(th *registry.Thread) { th.Metadata = map[string]any{"a\x00": 1} }, "control character"},
	}
	for _, c := range cases {
		err := s.Update(func(tx *registry.Tx) error {
			th := newThread(5, "")
			c.edit(th)
			return tx.Create(th, TokA)
		})
		if !errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrInvalid mentioning %q", c.name, err, c.want)
		}
	}
	for _, bad := range []float64{-1, 1e300} {
		err := s.Update(func(tx *registry.Tx) error { return tx.Create(newThread(bad, ""), TokA) })
		wantErr(t, err, registry.ErrInvalid)
	}
	err := s.Update(func(tx *registry.Tx) error { return tx.Create(newThread(5, ""), "short") })
	wantErr(t, err, registry.ErrInvalid)
	must(t, s.View(func(tx *registry.Tx) error {
		if n := tx.Len(); n != 0 {
			t.Errorf("invalid creates left %d threads", n)
		}
		return nil
	}))
}

func testPut(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	a := get(t, s, 1)
	a.Status = registry.StatusSucceeded
	a.Result = json.RawMessage(`{"sum": 3}`)
	a.AddHistory("CPU computation complete.")
	must(t, s.Update(func(tx *registry.Tx) error { return tx.Put(a, TokA) }))
	b := get(t, s, 1)
	if b.Status != registry.StatusSucceeded || string(b.Result) != `{"sum":3}` || len(b.History) != 2 {
		t.Errorf("after put: %+v", b)
	}
	// A replacement without the old history keeps it.
	n := newThread(1, "CORE")
	n.AddHistory("fresh")
	must(t, s.Update(func(tx *registry.Tx) error { return tx.Put(n, TokA) }))
	if h := get(t, s, 1).History; len(h) != 3 || !strings.HasSuffix(h[2], "fresh") {
		t.Errorf("history after put = %q", h)
	}
	wantErr(t, s.Update(func(tx *registry.Tx) error { return tx.Put(n, TokB) }), registry.ErrAccess)
	// Put of a new id creates it.
	must(t, s.Update(func(tx *registry.Tx) error { return tx.Put(newThread(7, ""), TokB) }))
	if !get(t, s, 7).Protected() {
		t.Error("thread created by Put is unprotected")
	}
}

func testTokenErrors(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	ops := map[string]func(tx *registry.Tx, i registry.ID, tok string) error{
		"mutate": func(tx *registry.Tx, i registry.ID, tok string) error {
			_, _, err := tx.Mutate(i, map[string]any{"priority": 3}, nil, tok)
			return err
		},
		"rename": func(tx *registry.Tx, i registry.ID, tok string) error { _, err := tx.Rename(i, "x", tok); return err },
		"delete": func(tx *registry.Tx, i registry.ID, tok string) error { _, err := tx.Delete(i, tok); return err },
		"branch": func(tx *registry.Tx, i registry.ID, tok string) error {
			_, err := tx.Branch(i, 50, nil, tok)
			return err
		},
		"reparent": func(tx *registry.Tx, i registry.ID, tok string) error { _, err := tx.Reparent(i, 2, tok); return err },
		"fork": func(tx *registry.Tx, i registry.ID, tok string) error {
			_, err := tx.Fork(i, []registry.ID{60, 61}, nil, tok)
			return err
		},
		"merge": func(tx *registry.Tx, i registry.ID, tok string) error {
			_, err := tx.Merge(i, 2, registry.MergeOptions{Token: tok, RightToken: TokB})
			return err
		},
	}
	for name, op := range ops {
		var wrong, missing error
		wrong = s.Update(func(tx *registry.Tx) error { return op(tx, 1, TokX) })
		missing = s.Update(func(tx *registry.Tx) error { return op(tx, 99, TokX) })
		wantErr(t, wrong, registry.ErrAccess)
		wantErr(t, missing, registry.ErrAccess)
		if strings.ReplaceAll(missing.Error(), "99.0", "1.0") != wrong.Error() {
			t.Errorf("%s: missing thread says %q but wrong token says %q", name, missing, wrong)
		}
		if strings.Contains(wrong.Error(), TokX) || strings.Contains(wrong.Error(), "sha256") {
			t.Errorf("%s: error leaks a token or hash: %v", name, wrong)
		}
	}
	// The empty token opens nothing protected.
	wantErr(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Rename(1, "x", ""); return err }), registry.ErrAccess)
	// A second owner (the session token) opens the thread too.
	must(t, s.Update(func(tx *registry.Tx) error { return tx.Create(newThread(8, ""), TokA, TokB) }))
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Rename(8, "by-session", TokB); return err }))
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Rename(8, "by-thread", TokA); return err }))
}

func testBranch(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	var br *registry.Thread
	must(t, s.Update(func(tx *registry.Tx) error {
		var err error
		br, err = tx.Branch(1, 10, map[string]any{"id": 77, "priority": 5, "metadata": map[string]any{"lr": json.Number("0.01"), "seed": 1}}, TokA)
		return err
	}))
	if br.ID != 10 || br.Name != "Thread-10-core" || br.Priority != 5 || br.TTL != 15 || br.Stage != "CORE" {
		t.Errorf("branch = %+v", br)
	}
	if br.Metadata["max_memory_mb"] != json.Number("1000") || fmt.Sprint(br.Metadata["lr"]) != "0.01" || fmt.Sprint(br.Metadata["seed"]) != "1" {
		t.Errorf("branch metadata = %v (want merged key by key)", br.Metadata)
	}
	if br.Parent == nil || *br.Parent != 1 || !reflect.DeepEqual(br.Lineage, []registry.ID{1}) {
		t.Errorf("branch parent/lineage = %v %v", br.Parent, br.Lineage)
	}
	if got := lastHistory(br); got != "Branched from 1.0 into 10.0." {
		t.Errorf("history = %q", got)
	}
	if len(br.History) != 2 {
		t.Errorf("branch did not copy history: %q", br.History)
	}
	// A branch of a branch has its source as parent (the seed recorded the grandparent).
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Branch(10, 11, nil, TokA); return err }))
	b2 := get(t, s, 11)
	if *b2.Parent != 10 || !reflect.DeepEqual(b2.Lineage, []registry.ID{1, 10}) || b2.Priority != 5 {
		t.Errorf("branch of branch = parent %v lineage %v priority %d", *b2.Parent, b2.Lineage, b2.Priority)
	}
	wantErr(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Branch(1, 2, nil, TokA); return err }), registry.ErrExists)
	wantErr(t, s.Update(func(tx *registry.Tx) error {
		_, err := tx.Branch(1, 12, map[string]any{"stage": "FAST"}, TokA)
		return err
	}), registry.ErrInvalid)
	wantErr(t, s.Update(func(tx *registry.Tx) error {
		_, err := tx.Branch(1, 12, map[string]any{"history": []any{}}, TokA)
		return err
	}), registry.ErrInvalid)
	// Naming override is kept.
	must(t, s.Update(func(tx *registry.Tx) error {
		_, err := tx.Branch(1, 13, map[string]any{"name": "mine", "stage": "base"}, TokA)
		return err
	}))
	if b := get(t, s, 13); b.Name != "mine" || b.Stage != "BASE" {
		t.Errorf("override name/stage = %q %q", b.Name, b.Stage)
	}
}

func testFork(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	var kids []*registry.Thread
	must(t, s.Update(func(tx *registry.Tx) error {
		var err error
		kids, err = tx.Fork(2, []registry.ID{20, 21, 22}, []map[string]any{{"metadata": map[string]any{"seed": 0}}, {"metadata": map[string]any{"seed": 1}}, nil}, TokB)
		return err
	}))
	if len(kids) != 3 || fmt.Sprint(get(t, s, 21).Metadata["seed"]) != "1" || get(t, s, 22).Metadata["seed"] != nil {
		t.Errorf("fork children wrong: %v", kids)
	}
	for _, k := range []float64{20, 21, 22} {
		if th := get(t, s, k); *th.Parent != 2 || lastHistory(th) != fmt.Sprintf("Branched from 2.0 into %.1f.", k) {
			t.Errorf("child %v: parent %v history %q", k, *th.Parent, lastHistory(th))
		}
	}
	err := s.Update(func(tx *registry.Tx) error {
		_, err := tx.Fork(2, []registry.ID{30, 31}, []map[string]any{nil}, TokB)
		return err
	})
	if !errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), "1 overrides for 2 new ids") {
		t.Errorf("override count mismatch: %v", err)
	}
	// All or nothing: 21 exists, so 40 must not be created.
	err = s.Update(func(tx *registry.Tx) error { _, err := tx.Fork(2, []registry.ID{40, 21}, nil, TokB); return err })
	wantErr(t, err, registry.ErrExists)
	wantErr(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Fork(2, []registry.ID{41, 41}, nil, TokB); return err }), registry.ErrInvalid)
	must(t, s.View(func(tx *registry.Tx) error {
		if tx.Exists(40) || tx.Exists(41) {
			t.Error("a failed fork left children behind")
		}
		return nil
	}))
}

func testMergePrefer(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	var m *registry.Thread
	must(t, s.Update(func(tx *registry.Tx) error {
		var err error
		m, err = tx.Merge(1, 2, registry.MergeOptions{NewID: idp(30), Token: TokA, RightToken: TokB})
		return err
	}))
	if m.Stage != "CORE" || m.Priority != 2 || m.Name != "Thread-1-core" || m.TTL != 15 {
		t.Errorf("prefer-left scalars = %+v", m)
	}
	if fmt.Sprint(m.Metadata["lr"]) != "0.1" || fmt.Sprint(m.Metadata["max_memory_mb"]) != "1000" || !reflect.DeepEqual(m.Metadata["tags"], []any{"x"}) {
		t.Errorf("prefer-left metadata = %v", m.Metadata)
	}
	if len(m.History) != 3 || !reflect.DeepEqual(m.Lineage, []registry.ID{1, 2}) || !reflect.DeepEqual(m.MergedFrom, []registry.ID{1, 2}) {
		t.Errorf("history %q lineage %v merged_from %v", m.History, m.Lineage, m.MergedFrom)
	}
	if lastHistory(m) != "Merged threads 1.0 and 2.0 into 30.0 with strategy 'prefer-left'." {
		t.Errorf("merge history = %q", lastHistory(m))
	}
	must(t, s.Update(func(tx *registry.Tx) error {
		var err error
		m, err = tx.Merge(1, 2, registry.MergeOptions{Strategy: "prefer-right", Token: TokA, RightToken: TokB})
		return err
	}))
	if m.ID != 31 || m.Stage != "BASE" || fmt.Sprint(m.Metadata["lr"]) != "0.5" || m.Metadata["max_memory_mb"] == nil || m.Name != "Thread-2-base" {
		t.Errorf("prefer-right (next id) = %+v", m)
	}
	// conflict_keys: only priority is a conflict; stage takes left even with prefer-right.
	must(t, s.Update(func(tx *registry.Tx) error {
		var err error
		m, err = tx.Merge(1, 2, registry.MergeOptions{Strategy: "prefer-right", ConflictKeys: []string{"priority"}, Name: "mm", Token: TokA, RightToken: TokB})
		return err
	}))
	if m.Stage != "CORE" || m.Priority != 1 || m.Name != "mm" || fmt.Sprint(m.Metadata["lr"]) != "0.1" {
		t.Errorf("conflict_keys merge = %+v", m)
	}
	wantErr(t, s.Update(func(tx *registry.Tx) error {
		_, err := tx.Merge(1, 2, registry.MergeOptions{Strategy: "newest", Token: TokA, RightToken: TokB})
		return err
	}), registry.ErrInvalid)
	wantErr(t, s.Update(func(tx *registry.Tx) error {
		_, err := tx.Merge(1, 2, registry.MergeOptions{NewID: idp(1), Token: TokA, RightToken: TokB})
		return err
	}), registry.ErrExists)
	wantErr(t, s.Update(func(tx *registry.Tx) error {
		_, err := tx.Merge(1, 2, registry.MergeOptions{Token: TokA})
		return err
	}), registry.ErrAccess)
	wantErr(t, s.Update(func(tx *registry.Tx) error {
		_, err := tx.Merge(1, 1, registry.MergeOptions{Token: TokA})
		return err
	}), registry.ErrInvalid)
}

func testMergeManual(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	err := s.Update(func(tx *registry.Tx) error {
		_, err := tx.Merge(1, 2, registry.MergeOptions{Strategy: "manual", Token: TokA, RightToken: TokB})
		return err
	})
	var ce *registry.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("manual merge without resolutions: %v", err)
	}
	var keys []string
	for _, c := range ce.Conflicts {
		keys = append(keys, c.Key)
	}
	for _, k := range []string{"history", "metadata", "name", "priority", "stage", "ttl"} {
		if !strings.Contains(strings.Join(keys, ","), k) {
			t.Errorf("conflict list %v lacks %s", keys, k)
		}
	}
	if !strings.Contains(err.Error(), `stage: left="CORE" right="BASE"`) {
		t.Errorf("conflict message lacks both values: %v", err)
	}
	resolve := map[string]any{"stage": "CRITICAL", "priority": 9, "name": "manual", "ttl": 3.5, "metadata": map[string]any{"k": "v"}}
	var m *registry.Thread
	must(t, s.Update(func(tx *registry.Tx) error {
		var err error
		m, err = tx.Merge(1, 2, registry.MergeOptions{Strategy: "manual", Resolve: resolve, Token: TokA, RightToken: TokB,
			ResolveFunc: func(key string, l, r any) (any, error) {
				if key != "history" {
					return nil, fmt.Errorf("unexpected key %s", key)
				}
				return append(l.([]any), r.([]any)...), nil
			}})
		return err
	}))
	if m.Stage != "CRITICAL" || m.Priority != 9 || m.TTL != 3.5 || m.Name != "manual" || !reflect.DeepEqual(m.Metadata, map[string]any{"k": "v"}) || len(m.History) != 3 {
		t.Errorf("manual merge = %+v", m)
	}
	// A failing resolver fails the merge.
	err = s.Update(func(tx *registry.Tx) error {
		_, err := tx.Merge(1, 2, registry.MergeOptions{Strategy: "manual", Token: TokA, RightToken: TokB,
			ResolveFunc: func(string, any, any) (any, error) { return nil, errResolverSaysNo }})
		return err
	})
	if !errors.Is(err, errResolverSaysNo) {
		t.Errorf("resolver error: %v, want %v", err, errResolverSaysNo)
	}
	// A resolution that is not a valid value is refused.
	err = s.Update(func(tx *registry.Tx) error {
		r := map[string]any{"stage": "FAST", "priority": 1, "name": "n", "ttl": 1, "metadata": map[string]any{}, "history": []any{}}
		_, err := tx.Merge(1, 2, registry.MergeOptions{Strategy: "manual", Resolve: r, Token: TokA, RightToken: TokB})
		return err
	})
	wantErr(t, err, registry.ErrInvalid)
}

func testMergeInplace(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	var m *registry.Thread
	must(t, s.Update(func(tx *registry.Tx) error {
		var err error
		m, err = tx.Merge(1, 2, registry.MergeOptions{Strategy: "prefer-right-inplace-right", ConflictKeys: []string{"priority", "metadata"}, Token: TokA, RightToken: TokB})
		return err
	}))
	if m.ID != 2 || m.Stage != "CORE" || m.Priority != 1 || fmt.Sprint(m.Metadata["lr"]) != "0.5" || m.Metadata["max_memory_mb"] == nil {
		t.Errorf("in-place right = %+v", m)
	}
	if lastHistory(m) != "Merged threads 1.0 and 2.0 into 2.0 with strategy 'prefer-right-inplace-right'." {
		t.Errorf("history = %q", lastHistory(m))
	}
	// The in-place target keeps its own token.
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Rename(2, "still-b", TokB); return err }))
	must(t, s.Update(func(tx *registry.Tx) error {
		var err error
		m, err = tx.Merge(1, 2, registry.MergeOptions{Inplace: "left", Token: TokA, RightToken: TokB})
		return err
	}))
	if m.ID != 1 || m.Name != "Thread-1-core" {
		t.Errorf("in-place left = %+v", m)
	}
	wantErr(t, s.Update(func(tx *registry.Tx) error {
		_, err := tx.Merge(1, 2, registry.MergeOptions{Inplace: "left", NewID: idp(9), Token: TokA, RightToken: TokB})
		return err
	}), registry.ErrInvalid)
	wantErr(t, s.Update(func(tx *registry.Tx) error {
		_, err := tx.Merge(1, 2, registry.MergeOptions{Inplace: "middle", Token: TokA, RightToken: TokB})
		return err
	}), registry.ErrInvalid)
}

func testReparent(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	must(t, s.Update(func(tx *registry.Tx) error {
		if _, err := tx.Branch(1, 10, nil, TokA); err != nil {
			return err
		}
		_, err := tx.Branch(10, 11, nil, TokA)
		return err
	}))
	err := s.Update(func(tx *registry.Tx) error { _, err := tx.Reparent(1, 11, TokA); return err })
	wantErr(t, err, registry.ErrCycle)
	wantErr(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Reparent(1, 1, TokA); return err }), registry.ErrCycle)
	wantErr(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Reparent(11, 99, TokA); return err }), registry.ErrNotFound)
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Reparent(11, 2, TokA); return err }))
	th := get(t, s, 11)
	if *th.Parent != 2 || !reflect.DeepEqual(th.Lineage, []registry.ID{1, 10, 2}) || lastHistory(th) != "Reparented to 2.0." {
		t.Errorf("reparent: parent %v lineage %v history %q", *th.Parent, th.Lineage, lastHistory(th))
	}
}

func testRenameMutate(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Rename(2, "renamed-2", TokB); return err }))
	if th := get(t, s, 2); th.Name != "renamed-2" || lastHistory(th) != "Renamed from 'Thread-2-base' to 'renamed-2'." {
		t.Errorf("rename: %q %q", th.Name, lastHistory(th))
	}
	wantErr(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Rename(2, "bad\nname", TokB); return err }), registry.ErrInvalid)
	var dropped []string
	must(t, s.Update(func(tx *registry.Tx) error {
		var err error
		_, dropped, err = tx.Mutate(2, map[string]any{"priority": 7, "metadata": map[string]any{"x": 1}, "stage": "CORE", "id": 2.0}, []string{"priority", "metadata"}, TokB)
		return err
	}))
	th := get(t, s, 2)
	if !reflect.DeepEqual(dropped, []string{"stage"}) || th.Priority != 7 || th.Stage != "BASE" || fmt.Sprint(th.Metadata["x"]) != "1" || fmt.Sprint(th.Metadata["lr"]) != "0.5" {
		t.Errorf("mutate: dropped %v thread %+v", dropped, th)
	}
	if lastHistory(th) != "Mutated fields: ['metadata', 'priority']." {
		t.Errorf("mutate history = %q", lastHistory(th))
	}
	for _, bad := range []map[string]any{{"id": 3}, {"autonode": map[string]any{"status": "succeeded"}}, {"lineage": []any{}}, {"priority": "high"}, {"priority": 1.5}, {"sandbox": "yes"}, {"ttl": -1}, {"metadata": 3}} {
		err := s.Update(func(tx *registry.Tx) error { _, _, err := tx.Mutate(2, bad, nil, TokB); return err })
		wantErr(t, err, registry.ErrInvalid)
	}
	// Unknown fields are kept as extra fields.
	must(t, s.Update(func(tx *registry.Tx) error {
		_, _, err := tx.Mutate(2, map[string]any{"owner_team": "ml"}, nil, TokB)
		return err
	}))
	if string(get(t, s, 2).Extra["owner_team"]) != `"ml"` {
		t.Errorf("extra field lost: %v", get(t, s, 2).Extra)
	}
	// The user's own fields may carry the names of AutoNode's run state:
	// they are the user's, and AutoNode's status is untouched.
	must(t, s.Update(func(tx *registry.Tx) error {
		_, _, err := tx.Mutate(2, map[string]any{"status": "reviewed", "owner": "team-a", "result": 3}, nil, TokB)
		return err
	}))
	if th := get(t, s, 2); string(th.Extra["status"]) != `"reviewed"` || string(th.Extra["owner"]) != `"team-a"` || th.Status != registry.StatusPending || th.Owner != "" {
		t.Errorf("user fields named like run state: extra %v status %q owner %q", th.Extra, th.Status, th.Owner)
	}
}

func testDeleteRestore(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Delete(1, TokA); return err }))
	must(t, s.View(func(tx *registry.Tx) error {
		if tx.Exists(1) {
			t.Error("deleted thread still in registry")
		}
		a, err := tx.Archived(1)
		if err != nil {
			return err
		}
		if !strings.HasSuffix(a.DeletedAt, "Z") || a.Thread.Name != "Thread-1-core" {
			t.Errorf("archive entry = %+v", a)
		}
		return nil
	}))
	wantErr(t, s.Update(func(tx *registry.Tx) error { return tx.Create(newThread(1, ""), TokB) }), registry.ErrExists)
	wantErr(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Restore(1, TokB); return err }), registry.ErrAccess)
	wantErr(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Restore(5, TokB); return err }), registry.ErrAccess)
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Restore(1, TokA); return err }))
	th := get(t, s, 1)
	if !strings.HasPrefix(lastHistory(th), "Restored from archive (deleted at ") || !th.Protected() {
		t.Errorf("restored: %q protected=%v", lastHistory(th), th.Protected())
	}
	must(t, s.View(func(tx *registry.Tx) error {
		if _, err := tx.Archived(1); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("restored thread still archived: %v", err)
		}
		if tx.NextID() != 3 {
			t.Errorf("NextID = %v, want 3.0", tx.NextID())
		}
		return nil
	}))
}

func testTransactions(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	boom := errors.New("boom")
	err := s.Update(func(tx *registry.Tx) error {
		if _, err := tx.Branch(1, 10, nil, TokA); err != nil {
			return err
		}
		if _, err := tx.Delete(2, TokB); err != nil {
			return err
		}
		if !tx.Exists(10) || tx.Exists(2) {
			t.Error("a transaction does not see its own writes")
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	must(t, s.View(func(tx *registry.Tx) error {
		if tx.Exists(10) || !tx.Exists(2) {
			t.Error("a failed transaction left changes behind")
		}
		if _, err := tx.Archived(2); err == nil {
			t.Error("a failed transaction archived a thread")
		}
		return nil
	}))
}

func testLargeTransaction(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	n := 2000
	ids := make([]registry.ID, n)
	for i := range ids {
		ids[i] = registry.ID(1000 + i)
	}
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Fork(1, ids, nil, TokA); return err }))
	must(t, s.View(func(tx *registry.Tx) error {
		kids, err := tx.List(registry.Filter{Parent: idp(1)})
		if err != nil {
			return err
		}
		if len(kids) != n {
			t.Errorf("fork of %d children: %d present", n, len(kids))
		}
		return nil
	}))
}

func testLineage(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	must(t, s.Update(func(tx *registry.Tx) error {
		if _, err := tx.Branch(1, 10, nil, TokA); err != nil {
			return err
		}
		if _, err := tx.Branch(10, 11, nil, TokA); err != nil {
			return err
		}
		_, err := tx.Merge(11, 2, registry.MergeOptions{NewID: idp(12), Token: TokA, RightToken: TokB})
		return err
	}))
	must(t, s.View(func(tx *registry.Tx) error {
		anc, err := tx.Ancestors(12)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(anc, []registry.ID{11, 2, 10, 1}) {
			t.Errorf("ancestors(12) = %v", anc)
		}
		desc, err := tx.Descendants(1)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(desc, []registry.ID{10, 11, 12}) {
			t.Errorf("descendants(1) = %v", desc)
		}
		_, err = tx.Ancestors(99)
		wantErr(t, err, registry.ErrNotFound)
		return nil
	}))
}

func testSummarize(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	must(t, s.Update(func(tx *registry.Tx) error {
		for _, p := range [][2]registry.ID{{1, 10}, {10, 11}, {11, 12}, {1, 13}, {2, 20}} {
			tok := TokA
			if p[0] == 2 {
				tok = TokB
			}
			if _, err := tx.Branch(p[0], p[1], nil, tok); err != nil {
				return err
			}
		}
		_, err := tx.Delete(2, TokB)
		return err
	}))
	var sum registry.Summary
	must(t, s.View(func(tx *registry.Tx) error { sum = tx.Summarize(); return nil }))
	if sum.Total != 6 || sum.Archived != 1 || sum.ByStage["CORE"] != 5 || sum.ByStage["BASE"] != 1 || sum.ByDevice["cpu"] != 6 || sum.ByStatus["pending"] != 6 {
		t.Errorf("summary counts = %+v", sum)
	}
	l := sum.Lineage
	if !reflect.DeepEqual(l.Roots, []registry.ID{1}) || !reflect.DeepEqual(l.Orphans, []registry.ID{20}) || !reflect.DeepEqual(l.DeepestChain, []registry.ID{1, 10, 11, 12}) {
		t.Errorf("lineage summary = %+v", l)
	}
	if len(l.MostChildren) == 0 || l.MostChildren[0] != (registry.ChildCount{ID: 1, Children: 2}) {
		t.Errorf("most children = %+v", l.MostChildren)
	}
}

func testQuery(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	must(t, s.Update(func(tx *registry.Tx) error {
		th := newThread(2.5, "CORE")
		th.Name = "dotted"
		return tx.Create(th, TokA)
	}))
	must(t, s.View(func(tx *registry.Tx) error {
		r, err := tx.Query(registry.PathForID(2.5) + ".name")
		if err != nil || r.String() != "dotted" {
			t.Errorf("query dotted id: %v %v", r, err)
		}
		r, err = tx.Query(`@values.#(stage=="CORE")#.id`)
		if err != nil || r.Raw != "[1.0,2.5]" {
			t.Errorf("query CORE ids = %s, %v", r.Raw, err)
		}
		r, err = tx.Query("2.5.name")
		if err != nil || r.Exists() {
			t.Errorf("unescaped dotted id should match nothing: %v %v", r, err)
		}
		for _, bad := range []string{"", "a..b", "#(stage==", "@nosuch", "x\\", strings.Repeat("a", 2000), `"x`, "a]"} {
			if _, err := tx.Query(bad); !errors.Is(err, registry.ErrQuery) {
				t.Errorf("Query(%q): err = %v, want ErrQuery", bad, err)
			}
		}
		doc, err := tx.Document()
		if err != nil {
			return err
		}
		if strings.Contains(string(doc), "token_hash") || strings.Contains(string(doc), "sha256:") {
			t.Error("query document exposes token hashes")
		}
		return nil
	}))
}

func testList(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	must(t, s.Update(func(tx *registry.Tx) error {
		_, err := tx.Fork(1, []registry.ID{5, 4, 3}, []map[string]any{{"device": "gpu"}, nil, {"name": "special"}}, TokA)
		return err
	}))
	must(t, s.View(func(tx *registry.Tx) error {
		check := func(f registry.Filter, want ...registry.ID) {
			ts, err := tx.List(f)
			if err != nil {
				t.Fatal(err)
			}
			var got []registry.ID
			for _, th := range ts {
				got = append(got, th.ID)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("List(%+v) = %v, want %v", f, got, want)
			}
		}
		check(registry.Filter{}, 1, 2, 3, 4, 5)
		check(registry.Filter{Stage: "CORE"}, 1, 3, 4, 5)
		check(registry.Filter{Device: "gpu"}, 5)
		check(registry.Filter{Parent: idp(1)}, 3, 4, 5)
		check(registry.Filter{NamePrefix: "spec"}, 3)
		check(registry.Filter{Status: "pending"}, 1, 2, 3, 4, 5)
		check(registry.Filter{Status: "running"})
		return nil
	}))
}

func testMarkCrashed(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	for _, c := range []struct {
		id    float64
		owner string
	}{{1, "dead"}, {2, "alive"}} {
		th := get(t, s, c.id)
		th.Status, th.Owner = registry.StatusRunning, c.owner
		tok := TokA
		if c.id == 2 {
			tok = TokB
		}
		must(t, s.Update(func(tx *registry.Tx) error { return tx.Put(th, tok) }))
	}
	var ids []registry.ID
	must(t, s.Update(func(tx *registry.Tx) error {
		var err error
		ids, err = tx.MarkCrashed(func(owner string) bool { return owner == "alive" })
		return err
	}))
	if !reflect.DeepEqual(ids, []registry.ID{1}) || get(t, s, 1).Status != registry.StatusCrashed || get(t, s, 2).Status != registry.StatusRunning {
		t.Errorf("MarkCrashed = %v", ids)
	}
}

func testDurable(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	must(t, s.Update(func(tx *registry.Tx) error {
		if _, err := tx.Branch(1, 1.5, nil, TokA); err != nil {
			return err
		}
		_, err := tx.Delete(2, TokB)
		return err
	}))
	s = f.Reopen(t, s)
	b := get(t, s, 1.5)
	if *b.Parent != 1 || !b.Protected() {
		t.Errorf("reopened branch = %+v", b)
	}
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Rename(1.5, "x", TokA); return err }))
	wantErr(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Rename(1.5, "x", TokB); return err }), registry.ErrAccess)
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Restore(2, TokB); return err }))
}

func testConcurrent(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	var wg sync.WaitGroup
	const workers, each = 8, 25
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- s.Update(func(tx *registry.Tx) error {
					th, err := tx.Get(1)
					if err != nil {
						return err
					}
					n, _ := th.Metadata["count"].(json.Number)
					c, _ := n.Int64()
					_, _, err = tx.Mutate(1, map[string]any{"metadata": map[string]any{"count": c + 1}}, nil, TokA)
					if err != nil {
						return err
					}
					return tx.Create(newThread(float64(100+w*each+i), ""), TokA)
				})
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	if c := fmt.Sprint(get(t, s, 1).Metadata["count"]); c != fmt.Sprint(workers*each) {
		t.Errorf("counter = %s after %d increments: lost updates", c, workers*each)
	}
}

func testVersions(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	if v := get(t, s, 1).Version; v != 1 {
		t.Fatalf("a created thread has version %d, want 1", v)
	}
	// Every commit that writes a record bumps its version once.
	must(t, s.Update(func(tx *registry.Tx) error {
		if _, err := tx.Rename(1, "a", TokA); err != nil {
			return err
		}
		_, _, err := tx.Mutate(1, map[string]any{"priority": 4}, nil, TokA)
		return err
	}))
	if v := get(t, s, 1).Version; v != 2 {
		t.Errorf("after one commit of two changes: version %d, want 2", v)
	}
	err := s.Update(func(tx *registry.Tx) error {
		if err := tx.Expect(1, 1); err != nil {
			return err
		}
		_, err := tx.Rename(1, "stale", TokA)
		return err
	})
	var ve *registry.VersionError
	if !errors.Is(err, registry.ErrVersionMismatch) || !errors.As(err, &ve) || ve.Have != 2 || ve.Want != 1 {
		t.Fatalf("a stale expectation: %v", err)
	}
	if get(t, s, 1).Name != "a" {
		t.Error("an operation after a failed expectation was applied")
	}
	must(t, s.Update(func(tx *registry.Tx) error {
		if err := tx.Expect(1, 2); err != nil {
			return err
		}
		_, err := tx.Rename(1, "fresh", TokA)
		return err
	}))
	wantErr(t, s.View(func(tx *registry.Tx) error { return tx.Expect(99, 0) }), registry.ErrNotFound)
	// Delete and restore keep counting.
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Delete(1, TokA); return err }))
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Restore(1, TokA); return err }))
	if v := get(t, s, 1).Version; v != 4 {
		t.Errorf("after delete and restore: version %d, want 4", v)
	}
	// NextID counts archived ids and the transaction's own writes.
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Branch(2, 40, nil, TokB); return err }))
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Delete(40, TokB); return err }))
	must(t, s.Update(func(tx *registry.Tx) error {
		if n := tx.NextID(); n != 41 {
			t.Errorf("NextID = %v with 40.0 archived, want 41.0", n)
		}
		if err := tx.Create(newThread(41, ""), TokA); err != nil {
			return err
		}
		if n := tx.NextID(); n != 42 {
			t.Errorf("NextID = %v after creating 41.0 in the transaction, want 42.0", n)
		}
		return nil
	}))
}

func testTxClosed(t *testing.T, f Factory) {
	s := f.New(t)
	seed(t, s)
	var kept *registry.Tx
	must(t, s.Update(func(tx *registry.Tx) error { kept = tx; return nil }))
	wantErr(t, kept.Create(newThread(9, ""), TokA), registry.ErrTxClosed)
	_, err := kept.Get(1)
	wantErr(t, err, registry.ErrTxClosed)
	_, err = kept.Branch(1, 10, nil, TokA)
	wantErr(t, err, registry.ErrTxClosed)
	if kept.Exists(1) || kept.Len() != 0 {
		t.Error("a closed transaction still reads")
	}
	must(t, s.View(func(tx *registry.Tx) error { kept = tx; return nil }))
	_, err = kept.List(registry.Filter{})
	wantErr(t, err, registry.ErrTxClosed)
	if get(t, s, 1) == nil || func() bool {
		var found bool
		s.View(func(tx *registry.Tx) error { found = tx.Exists(9); return nil })
		return found
	}() {
		t.Error("a write through a closed transaction was stored")
	}
}

// Threads reads every thread of s, in id order; an error fails the test.
func Threads(t testing.TB, s registry.Store) []*registry.Thread {
	t.Helper()
	var ts []*registry.Thread
	if err := s.View(func(tx *registry.Tx) error {
		var err error
		ts, err = tx.List(registry.Filter{})
		return err
	}); err != nil {
		t.Fatalf("read the threads of the registry: %v", err)
	}
	return ts
}
