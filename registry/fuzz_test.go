package registry

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad opens arbitrary bytes as a registry: it must load or fail with
// ErrCorrupt, never panic, and never change a file it could not parse.
func FuzzLoad(f *testing.F) {
	seed, _ := os.ReadFile("testdata/thread_registry.json")
	f.Add(seed)
	f.Add([]byte(`{"1.0": {"id": 1.0}}`))
	f.Add([]byte(`{"x": 3, "1e-05": {"id": "a", "priority": 1.5, "metadata": []}}`))
	f.Add([]byte(`{"1.0": {"id": 1e400}}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), DefaultRegistryFile)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFile(path, nil)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open: unexpected error %v", err)
			}
			if now, _ := os.ReadFile(path); string(now) != string(data) {
				t.Fatal("an unparsable registry was changed")
			}
			return
		}
		defer s.Close()
		s.View(func(tx *Tx) error {
			tx.List(Filter{})
			tx.Summarize()
			for _, id := range tx.IDs() {
				tx.Ancestors(id)
				tx.Descendants(id)
			}
			tx.Query("@values.#.name")
			return nil
		})
		s.Update(func(tx *Tx) error {
			for _, id := range tx.IDs() {
				tx.Branch(id, tx.NextID(), map[string]any{"priority": 2}, tok)
				tx.Mutate(id, map[string]any{"name": "m"}, nil, tok)
			}
			return nil
		})
		if _, err := Fsck(path, nil); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzQuery runs arbitrary paths over the seed registry: never a panic,
// and a rejected path always wraps ErrQuery.
func FuzzQuery(f *testing.F) {
	for _, p := range []string{`1\.0.name`, `@values.#(stage=="CORE")#.id`, `#(`, `a..b`, `@reverse`, `{a,b}`, `21\.0.history.#`, `@values.#(metadata.lr>0.05)#.name`, `..0`, `@dig:name`, `@values.#.id`, `@values.#(stage=="CORE")`, `1e-05.metadata`, `@values.#`} {
		f.Add(p)
	}
	path := seedDir(f)
	s, err := OpenFile(path, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, p string) {
		s.View(func(tx *Tx) error {
			got, err := tx.Query(p)
			if err != nil && !errors.Is(err, ErrQuery) {
				t.Fatalf("Query(%q): %v", p, err)
			}
			if err != nil {
				return nil
			}
			// Answered one record at a time or not, the same answer.
			if want, _ := tx.queryDocument(p); got.Raw != want.Raw || got.Exists() != want.Exists() {
				t.Fatalf("Query(%q) = %s, the whole document gives %s", p, got.Raw, want.Raw)
			}
			return nil
		})
	})
}

// FuzzThreadJSON decodes arbitrary records: no panic, and a record that
// validates survives an encode/decode round trip.
func FuzzThreadJSON(f *testing.F) {
	f.Add([]byte(`{"id": 1.0, "name": "n", "stage": "CORE", "metadata": {"a": [1, {"b": null}]}}`))
	f.Add([]byte(`{"id": 1e-05, "ttl": 2, "parent": 3.0, "lineage": [3.0], "result": {"x": 1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var th Thread
		if th.UnmarshalJSON(data) != nil || th.Validate() != nil {
			return
		}
		raw, err := th.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Thread
		if err := back.UnmarshalJSON(raw); err != nil {
			t.Fatalf("round trip: %v\n%s", err, raw)
		}
		again, _ := back.MarshalJSON()
		if string(again) != string(raw) {
			t.Fatalf("round trip changed the record:\n%s\n%s", raw, again)
		}
	})
}
