package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// queryPaths covers the shapes Query answers one record at a time, and
// their neighbours that it must leave to the whole document.
var queryPaths = []string{
	`@values.#`,
	`@values.#.id`,
	`@values.#.name`,
	`@values.#.metadata`,
	`@values.#.metadata.lr`,
	`@values.#.nosuch`,
	`@values.#.history.#`,
	`@values.#.autonode`,
	`@values.#.autonode.token_hash`,
	`@values.#(stage=="CORE")#`,
	`@values.#(stage=="CORE")#.id`,
	`@values.#(stage=="CORE")#.metadata.lr`,
	`@values.#(stage=="NONE")#.id`,
	`@values.#(priority>1)#.name`,
	`@values.#(metadata.lr>0.05)#.name`,
	`@values.#(name%"Thread-*")#.id`,
	`@values.#(history.#(%"*Merged*"))#.id`,
	`@values.#(autonode.status=="succeeded")#.id`,
	`@values.#(name=="x)y")#.id`,
	`@values.#(stage=="CORE")`,
	`@values.#(stage=="CORE").name`,
	`@values.#(stage=="CORE").nosuch`,
	`@values.#(stage=="NONE").name`,
	`@values.#(stage=="CORE")#|#`,
	`@values.#.id|@reverse`,
	`@values|#`,
	`@values.0.name`,
	`@values.@reverse`,
	`1\.0`,
	`1\.0.name`,
	`1\.0.history.#`,
	`1\.0.history.0`,
	`1\.0.autonode`,
	`1\.0.@pretty`,
	`1\.0|name`,
	`2\.5.name`,
	`1e-05.metadata.max_memory_mb`,
	`2.5.name`,
	`99\.0.name`,
	`1*.name`,
	`@keys`,
	`#`,
}

// TestQueryOneRecordAtATime: every path gives the answer the whole
// document gives, on a seed registry with journaled writes (token hashes,
// new and changed threads) not yet compacted.
func TestQueryOneRecordAtATime(t *testing.T) {
	path := seedDir(t)
	s := open(t, path, &FileOptions{NoCompactOnClose: true})
	if err := s.Update(func(tx *Tx) error {
		th := NewThread(2.5, StageCore)
		th.Name = "dotted"
		th.Status = StatusSucceeded
		if err := tx.Create(th, tok); err != nil {
			return err
		}
		if _, err := tx.Claim(1, tok); err != nil {
			return err
		}
		_, _, err := tx.Mutate(1, map[string]any{"priority": 9, "metadata": map[string]any{"lr": 0.5}}, nil, tok)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".journal"); err != nil {
		t.Fatalf("the writes are not in a journal: %v", err)
	}
	s.View(func(tx *Tx) error {
		for _, p := range queryPaths {
			got, err := tx.Query(p)
			if err != nil {
				t.Fatalf("Query(%q): %v", p, err)
			}
			want, err := tx.queryDocument(p)
			if err != nil {
				t.Fatalf("queryDocument(%q): %v", p, err)
			}
			if got.Raw != want.Raw || got.Exists() != want.Exists() || got.Type != want.Type {
				t.Errorf("Query(%q) = %s (exists %v), the whole document gives %s (exists %v)", p, got.Raw, got.Exists(), want.Raw, want.Exists())
			}
			if strings.Contains(got.Raw, "sha256:") {
				t.Errorf("Query(%q) shows a token hash: %s", p, got.Raw)
			}
		}
		// The journal's writes are seen.
		if r, _ := tx.Query(`@values.#(stage=="CORE")#.id`); !strings.Contains(r.Raw, "2.5") {
			t.Errorf("a thread created in the journal is missing: %s", r.Raw)
		}
		if r, _ := tx.Query(`1\.0.priority`); r.Int() != 9 {
			t.Errorf("a change in the journal is missing: %s", r.Raw)
		}
		return nil
	})
}

// TestQueryRoutes: which paths are answered one record at a time.
func TestQueryRoutes(t *testing.T) {
	for p, want := range map[string]bool{
		`@values.#`: true, `@values.#.id`: true, `@values.#(stage=="CORE")#.id`: true, `@values.#(stage=="CORE")#`: true,
		`@values.#(stage=="CORE")`: true, `@values.#(stage=="CORE").name`: true, `@values.#(name=="x)y")#.id`: true,
		`1\.0`: true, `1\.0.name`: true, `1e-05.metadata`: true, `2.5.name`: true,
		`@values.#(stage=="CORE")#|#`: false, `@values.#.id|@reverse`: false, `@values|#`: false, `@values.0.name`: false,
		`@values.#(stage=="CORE")x`: false, `1\.0|name`: false, `1*.name`: false, `@keys`: false, `#`: false, `@values.#.`: false,
	} {
		_, each := parseEachQuery(p)
		_, _, key := splitKeyPath(p)
		if got := each || key; got != want {
			t.Errorf("%s: one record at a time = %v, want %v", p, got, want)
		}
	}
}

// TestQueryDamagedRecord: a record that is not valid JSON fails a query
// over every record and one of its own, naming it, as the whole document
// did; queries of other threads still answer.
func TestQueryDamagedRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	doc := `{"1.0": {"id": 1.0, "name": "ok"}, "2.0": {"id": 2.0, "name": "x" "stage": "CORE"}}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, path, nil)
	s.View(func(tx *Tx) error {
		for _, p := range []string{`@values.#`, `@values.#.name`, `@values.#(name=="ok")#.id`, `2\.0.name`, `@keys`} {
			if _, err := tx.Query(p); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "thread 2.0") {
				t.Errorf("Query(%q): err = %v, want ErrInvalid naming thread 2.0", p, err)
			}
		}
		if r, err := tx.Query(`1\.0.name`); err != nil || r.String() != "ok" {
			t.Errorf("Query of a sound thread: %v, %v", r, err)
		}
		return nil
	})
}
