package registry

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// rowOf is the row the fully decoded thread gives: what EachRow must
// match.
func rowOf(t *Thread) Row {
	return Row{ID: t.ID, Name: t.Name, Stage: t.Stage, Device: t.Device, Priority: t.Priority,
		Status: t.EffectiveStatus(), Parents: t.Parents(), Protected: t.Protected(), Version: t.Version, Owner: t.Owner}
}

// checkRowParity decodes raw both ways and fails unless the row and the
// error are the same.
func checkRowParity(t *testing.T, raw []byte) {
	t.Helper()
	r := NewRecord("7.0", raw, false)
	var scratch Thread
	row, rowErr := recordRow(r, &scratch)
	full, fullErr := decodeThread(r)
	switch {
	case (rowErr == nil) != (fullErr == nil):
		t.Fatalf("%s:\nrow error %v\nfull error %v", raw, rowErr, fullErr)
	case rowErr != nil:
		if rowErr.Error() != fullErr.Error() {
			t.Fatalf("%s:\nrow error %q\nfull error %q", raw, rowErr, fullErr)
		}
		if !reflect.DeepEqual(row, Row{}) {
			t.Fatalf("%s: a row with an error: %+v", raw, row)
		}
	default:
		want := rowOf(full)
		if len(want.Parents) == 0 && len(row.Parents) == 0 {
			want.Parents, row.Parents = nil, nil
		}
		if !reflect.DeepEqual(row, want) {
			t.Fatalf("%s:\nrow  %+v\nfull %+v", raw, row, want)
		}
	}
}

// TestRowMatchesDecode: for good and damaged records alike, EachRow's
// reading gives the row and the error the full decoder gives.
func TestRowMatchesDecode(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth)
	deeper := strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1)
	bracketsInStrings := `{"s": "` + strings.Repeat("[{", 40) + `"}`
	records := []string{
		`{"id": 1.0}`,
		`{"id": 7.0, "name": "n", "stage": "CORE", "device": "gpu", "priority": 3, "ttl": 2}`,
		`{"id": 7.0, "name": "esc\u00e9\n", "stage": "co\"re", "device": "weird"}`,
		`{"id": 7.0, "name": null, "stage": null, "priority": null}`,
		`{"id": 7.0, "parent": 3.0, "lineage": [3.0], "autonode": {"status": "failed", "merged_from": [3.0, 4.0], "version": 5, "token_hash": "sha256:` + strings.Repeat("a", 64) + `"}}`,
		`{"id": 7.0, "history": ["[2026-11-25 17:12:11] Merged threads 1.0 and 4.5 into 7.0 with strategy 'union'."]}`,
		`{"id": 7.0, "history": ["[x] Merged threads 1.0 and 4.5 into 9.0 with strategy 'union'."]}`,
		`{"id": 7.0, "metadata": ` + deep + `}`,
		`{"id": 7.0, "metadata": ` + deeper + `}`,
		`{"id": 7.0, "metadata": ` + bracketsInStrings + `}`,
		`{"id": 7.0, "metadata": {"l": [[[[1]]]], "n": null}}`,
		`{"id": 7.0, "status": "succeeded", "token_hash": "sha256:` + strings.Repeat("b", 64) + `", "owner": "pid=1", "merged_from": [1.0]}`,
		`{"id": 7.0, "status": "reviewed", "owner": "team-a", "result": 3}`,
		`{"id": 7.0, "autonode": {"result": {"big": [1, 2]}, "future_field": {"x": 1}, "status": "succeeded"}}`,
		// Damaged records: the same error both ways.
		`{"id": 7.0, "priority": "high"}`,
		`{"id": 7.0, "priority": 1.5}`,
		`{"id": 7.0, "metadata": []}`,
		`{"id": 7.0, "history": ["a", 1]}`,
		`{"id": 7.0, "history": "a"}`,
		`{"id": 7.0, "lineage": [1.0, "x"]}`,
		`{"id": 7.0, "autonode": []}`,
		`{"id": 7.0, "autonode": {"status": 5}}`,
		`{"id": 7.0, "autonode": {"version": -1}}`,
		`{"id": 7.0, "name": 3}`,
		`{"id": 7.0, "sandbox": "yes"}`,
		`{"id": 1e400}`,
		`{"name": "no id"}`,
		`{"id": "1.0"}`,
		`{"id": 7.0, "name": "x" "stage": "CORE"}`,
		`{"id": 7.0, "metadata": {"a": }}`,
		`[1, 2]`,
		`"text"`,
	}
	for _, rec := range records {
		checkRowParity(t, []byte(rec))
	}
	// Every record of the fixtures.
	for _, dir := range []string{"testdata", "testdata/legacy", "testdata/seed-user-fields"} {
		sn, err := readSnapshot(filepath.Join(dir, DefaultRegistryFile), false)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < sn.recs.len(); i++ {
			checkRowParity(t, sn.recs.at(i).Raw)
		}
	}
}

// TestEachRow lists through EachRow: the rows of the seed fixture in id
// order, filters applied, damaged records passed on as errors.
func TestEachRow(t *testing.T) {
	s, err := OpenFile(seedDir(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(func(tx *Tx) error {
		for _, f := range []Filter{{}, {Stage: "CORE"}, {Device: "gpu"}, {Parent: ptrID(1)}} {
			threads, err := tx.List(f)
			if err != nil {
				return err
			}
			var rows []Row
			if err := tx.EachRow(f, func(r Row, err error) error {
				rows = append(rows, r)
				return err
			}); err != nil {
				return err
			}
			if len(rows) != len(threads) || len(rows) == 0 {
				t.Fatalf("filter %+v: %d rows for %d threads", f, len(rows), len(threads))
			}
			for i, th := range threads {
				if want := rowOf(th); !reflect.DeepEqual(rows[i], want) {
					t.Errorf("filter %+v, row %d:\n got %+v\nwant %+v", f, i, rows[i], want)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	doc := `{"1.0": {"id": 1.0, "name": "ok"}, "2.0": {"id": 2.0, "priority": "high"}, "3.0": {"id": 3.0}}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var ids []ID
	var errs []string
	s2.View(func(tx *Tx) error {
		return tx.EachRow(Filter{}, func(r Row, err error) error {
			if err != nil {
				errs = append(errs, err.Error())
				return nil
			}
			ids = append(ids, r.ID)
			return nil
		})
	})
	if !reflect.DeepEqual(ids, []ID{1, 3}) || len(errs) != 1 || !strings.Contains(errs[0], "thread 2.0: invalid value: field priority") {
		t.Errorf("rows %v, errors %q", ids, errs)
	}
}

func ptrID(id ID) *ID { return &id }

// FuzzRow: for any record, EachRow's reading and the full decoder agree.
func FuzzRow(f *testing.F) {
	f.Add([]byte(`{"id": 1.0, "name": "n", "stage": "CORE", "metadata": {"a": [1, {"b": null}]}}`))
	f.Add([]byte(`{"id": 1e-05, "priority": "high", "autonode": {"status": "failed"}}`))
	f.Add([]byte(`{"id": 3.0, "history": ["[x] Merged threads 1.0 and 2.0 into 3.0 with strategy 'union'."]}`))
	f.Fuzz(func(t *testing.T, raw []byte) { checkRowParity(t, raw) })
}

// TestFilterQuickLook: the look at a record's bytes that spares filters a
// parse of every record keeps what matches, escapes included.
func TestFilterQuickLook(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	doc := `{"1.0": {"id": 1.0, "name": "Thread-a", "device": "gp\u0075", "autonode": {"status": "succ\u0065eded"}},
  "2.0": {"id": 2.0, "name": "Thread-b", "device": "gpu", "autonode": {"status": "succeeded"}},
  "3.0": {"id": 3.0, "name": "other", "device": "cpu", "autonode": {"status": "failed"}},
  "4.0": {"id": 4.0, "name": "gpu succeeded Thread-", "device": "cpu"}}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, path, nil)
	s.View(func(tx *Tx) error {
		for _, c := range []struct {
			f    Filter
			want []ID
		}{
			{Filter{Device: "gpu"}, []ID{1, 2}},
			{Filter{Status: StatusSucceeded}, []ID{1, 2}},
			{Filter{NamePrefix: "Thread-"}, []ID{1, 2}},
			{Filter{Status: StatusUnknown}, []ID{4}},
			{Filter{Device: "cpu", Status: StatusFailed}, []ID{3}},
		} {
			var got []ID
			tx.EachRow(c.f, func(r Row, err error) error {
				got = append(got, r.ID)
				return err
			})
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("filter %+v: %v, want %v", c.f, got, c.want)
			}
		}
		return nil
	})
}
