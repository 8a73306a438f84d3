package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// copyDir copies the files of testdata/name into a temporary directory and
// returns the registry path there.
func copyDir(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join("testdata", name, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, DefaultRegistryFile)
}

// dirState is the sorted file list of dir with each file's sha256.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		lines = append(lines, e.Name()+" "+sha(data))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func sha(b []byte) string { s := sha256.Sum256(b); return string(s[:]) }

const legacyTok = "legacy-token-0123456789abcdef"

// TestLegacyRegistryMigrates loads a registry written by AutoNode before
// run state moved under "autonode" (testdata/legacy, made with that code)
// and checks that nothing is lost, that the run state is read as run
// state, and that a compaction writes it in the current shape.
func TestLegacyRegistryMigrates(t *testing.T) {
	path := copyDir(t, "legacy")
	check := func(s *FileStore) {
		t.Helper()
		if err := s.View(func(tx *Tx) error {
			a, err := tx.Get(2)
			if err != nil {
				return err
			}
			if a.Status != StatusSucceeded || a.Owner != "pid=42 host=h start=1" || a.DurationMS != 1000.5 || a.DeviceUsed != "cpu" ||
				len(a.CacheKey) != 64 || !a.Protected() || a.Extra != nil || a.StartedAt != "2026-11-30T12:00:00Z" {
				t.Errorf("2.0 = %+v", a)
			}
			var res map[string]any
			if err := json.Unmarshal(a.Result, &res); err != nil || res["text"] != "a\nb" {
				t.Errorf("2.0 result = %s", a.Result)
			}
			b, _ := tx.Get(3)
			if b.Status != StatusFailed || b.Error != "boom" {
				t.Errorf("3.0 = %+v", b)
			}
			m, _ := tx.Get(4)
			if !reflect.DeepEqual(m.MergedFrom, []ID{2, 3}) || !reflect.DeepEqual(m.Parents(), []ID{2, 3}) {
				t.Errorf("4.0 merged from %v, parents %v", m.MergedFrom, m.Parents())
			}
			c, _ := tx.Get(1) // a claimed seed record with the user's fields
			if !c.Protected() || string(c.Extra["notes"]) != `"kept"` || string(c.Extra["owner_team"]) != `"ml"` || c.Status != "" {
				t.Errorf("1.0 = %+v", c)
			}
			if _, err := tx.Archived(5); err != nil {
				t.Error(err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, path, nil)
	check(s)
	// The tokens still open the threads; a write and the compaction at
	// Close migrate every legacy record.
	if err := s.Update(func(tx *Tx) error { _, err := tx.Rename(3, "Thread-3-base", legacyTok); return err }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var reg map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &reg); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"1.0", "2.0", "3.0", "4.0"} {
		if _, ok := reg[k][RunStateKey]; !ok {
			t.Errorf("%s was not migrated: %s", k, reg[k])
		}
		for _, f := range []string{"status", "owner", "token_hash", "merged_from"} {
			if _, ok := reg[k][f]; ok {
				t.Errorf("%s still has %s at the top level after the migration", k, f)
			}
		}
	}
	check(open(t, path, nil))
}

// TestSeedUserFields: a seed registry whose entries carry their own
// status, owner, result, error and cache_key fields loads them as the
// user's, lets mutate change them, and writes them back unchanged.
func TestSeedUserFields(t *testing.T) {
	path := copyDir(t, "seed-user-fields")
	before, _ := os.ReadFile(path)
	s := open(t, path, nil)
	if err := s.View(func(tx *Tx) error {
		a, err := tx.Get(1)
		if err != nil {
			return err
		}
		if a.Status != "" || a.Owner != "" || a.Error != "" || len(a.Result) != 0 || a.CacheKey != "" || a.EffectiveStatus() != StatusUnknown {
			t.Errorf("the user's fields were read as run state: %+v", a)
		}
		for k, want := range map[string]string{"status": `"reviewed"`, "owner": `"team-a"`, "error": `"none so far"`, "cache_key": `"my-own-key"`} {
			if got := string(a.Extra[k]); got != want {
				t.Errorf("user field %s = %s, want %s", k, got, want)
			}
		}
		if sum := tx.Summarize(); sum.ByStatus[StatusUnknown] != 2 {
			t.Errorf("summary by status = %v", sum.ByStatus)
		}
		r, err := tx.Query(`@values.#(status=="reviewed")#.name`)
		if err != nil || r.Raw != `["reviewed-run"]` {
			t.Errorf("query of a user field = %s, %v", r.Raw, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error {
		_, _, err := tx.Mutate(1, map[string]any{"owner": "team-b"}, nil, tok)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	var reg map[string]map[string]json.RawMessage
	if err := json.Unmarshal(after, &reg); err != nil {
		t.Fatal(err)
	}
	one := reg["1.0"]
	if string(one["owner"]) != `"team-b"` || string(one["status"]) != `"reviewed"` || string(one["cache_key"]) != `"my-own-key"` || string(one["error"]) != `"none so far"` {
		t.Errorf("written back: %s", after)
	}
	i := bytes.Index(before, []byte(`  "2.0": {`))
	if !bytes.Contains(after, before[i:len(before)-2]) {
		t.Error("the untouched entry was not written back byte for byte")
	}
}

// TestReadsNeverWrite: every read, fsck included, leaves the directory of
// a seed registry byte-identical (no journal, no lock).
func TestReadsNeverWrite(t *testing.T) {
	path := seedDir(t)
	dir := filepath.Dir(path)
	before := dirState(t, dir)
	for i := 0; i < 2; i++ {
		s, err := OpenFile(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = s.View(func(tx *Tx) error {
			tx.Get(1)
			tx.Archived(3)
			if _, err := tx.List(Filter{}); err != nil {
				return err
			}
			tx.Summarize()
			if _, err := tx.Query(`@values.#(stage=="CORE")#.id`); err != nil {
				return err
			}
			if _, err := tx.Lineage(1); err != nil {
				return err
			}
			_, err := tx.Graph()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Fsck(path, nil); err != nil {
			t.Fatal(err)
		}
	}
	if after := dirState(t, dir); after != before {
		t.Errorf("reads changed the directory:\nbefore %q\nafter  %q", before, after)
	}
	// A torn journal tail is reported by readers and cut only by a writer.
	s := open(t, path, &FileOptions{NoCompactOnClose: true})
	if err := s.Update(func(tx *Tx) error { _, err := tx.Claim(1, tok); return err }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	j := path + ".journal"
	f, _ := os.OpenFile(j, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`0000abcd {"seq":9,"ops":[{"k":"9.0"`)
	f.Close()
	torn, _ := os.ReadFile(j)
	r := open(t, path, &FileOptions{ReadOnly: true})
	r.View(func(tx *Tx) error { tx.List(Filter{}); return nil })
	r.Close()
	if rep, _ := Fsck(path, nil); rep.TornTailSize == 0 {
		t.Error("fsck does not report the torn tail")
	}
	if now, _ := os.ReadFile(j); !bytes.Equal(now, torn) {
		t.Error("a reader cut the torn tail")
	}
	if err := r.Update(func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrReadOnly) {
		t.Errorf("update of a read-only store: %v", err)
	}
}

// TestCorruptLastJournalLine: a complete last line with a bad checksum is
// corruption, not a torn write: the acknowledged operation is not
// silently dropped, and nothing is cut.
func TestCorruptLastJournalLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	s := open(t, path, &FileOptions{NoCompactOnClose: true})
	for i := 1; i <= 2; i++ {
		if err := s.Update(func(tx *Tx) error { return tx.Create(NewThread(ID(i), ""), tok) }); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	j := path + ".journal"
	data, _ := os.ReadFile(j)
	bad := append([]byte(nil), data...)
	i := bytes.LastIndex(bad, []byte(`"pending"`))
	bad[i+1] = 'P'
	os.WriteFile(j, bad, 0o600)
	if _, err := OpenFile(path, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with a damaged last line: %v", err)
	}
	if rep, _ := Fsck(path, nil); rep.OK() || rep.TornTailSize != 0 {
		t.Errorf("fsck of a damaged last line = %+v", rep)
	}
	if now, _ := os.ReadFile(j); !bytes.Equal(now, bad) {
		t.Error("the damaged journal was changed")
	}
}

// TestJournalRemovedWhileWriting: a writer whose journal is removed by
// another program refuses to acknowledge, keeps what it had, fsck reports
// it, and recover brings every acknowledged operation back.
func TestJournalRemovedWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	s := open(t, path, &FileOptions{NoCompactOnClose: true})
	for i := 1; i <= 3; i++ {
		if err := s.Update(func(tx *Tx) error { return tx.Create(NewThread(ID(i), ""), tok) }); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(path + ".journal")
	err := s.Update(func(tx *Tx) error { return tx.Create(NewThread(4, ""), tok) })
	var je *JournalLostError
	if !errors.Is(err, ErrJournalLost) || !errors.As(err, &je) || je.Ops != 3 || je.Saved == "" {
		t.Fatalf("commit after the journal was removed: %v", err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Create(NewThread(5, ""), tok) }); !errors.Is(err, ErrJournalLost) {
		t.Errorf("a later commit: %v", err)
	}
	s.Close()
	rep, err := Fsck(path, nil)
	if err != nil || rep.OK() || !rep.NeedsRecover() {
		t.Fatalf("fsck after the journal vanished: %+v %v", rep, err)
	}
	if !strings.Contains(rep.Problems[0].Message, "vanished") {
		t.Errorf("fsck problems: %+v", rep.Problems)
	}
	// Another process refuses to write until recovered.
	o := open(t, path, nil)
	if err := o.Update(func(tx *Tx) error { return tx.Create(NewThread(6, ""), tok) }); !errors.Is(err, ErrJournalLost) {
		t.Errorf("another writer: %v", err)
	}
	o.Close()
	rec, err := Recover(path, nil)
	if err != nil || rec.Replayed != 3 || rec.Threads != 3 {
		t.Fatalf("recover = %+v, %v", rec, err)
	}
	if rep, _ := Fsck(path, nil); !rep.OK() || rep.NeedsRecover() {
		t.Errorf("fsck after recover: %+v", rep.Problems)
	}
	n := open(t, path, nil)
	if err := n.Update(func(tx *Tx) error {
		if tx.Len() != 3 || tx.Exists(4) {
			t.Errorf("after recover: %v", tx.IDs())
		}
		return tx.Create(NewThread(4, ""), tok)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestFsckAndRecoverAgree: what fsck says recover repairs, recover
// repairs, keeping what it cannot use in the quarantine; a healthy
// registry is left alone.
func TestFsckAndRecoverAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	doc := `{"1.0": {"id": 1.0, "name": "ok"}, "2.0": {"id": 2.0, "priority": "high"}, "1.0": {"id": 1.0, "name": "later"}}`
	os.WriteFile(path, []byte(doc), 0o600)
	rep, _ := Fsck(path, nil)
	if rep.OK() || !rep.NeedsRecover() {
		t.Fatalf("fsck = %+v", rep)
	}
	rec, err := Recover(path, nil)
	if err != nil || !rec.Changed || rec.Threads != 1 || len(rec.Quarantined) != 2 || len(rec.Backups) != 1 {
		t.Fatalf("recover = %+v, %v", rec, err)
	}
	q, _, err := ReadQuarantine(path, nil)
	if err != nil || len(q) != 2 || !strings.Contains(q[1].Text, `"priority": "high"`) && !strings.Contains(q[0].Text, `"priority": "high"`) {
		t.Errorf("quarantine = %+v, %v", q, err)
	}
	rep, _ = Fsck(path, nil)
	if !rep.OK() || rep.NeedsRecover() || rep.Quarantined != 2 {
		t.Errorf("fsck after recover = %+v", rep)
	}
	s := open(t, path, nil)
	s.View(func(tx *Tx) error {
		if ts, err := tx.List(Filter{}); err != nil || len(ts) != 1 || ts[0].Name != "later" {
			t.Errorf("list after recover: %v %v", ts, err)
		}
		return nil
	})
	s.Close()
	before := dirState(t, filepath.Dir(path))
	rec, err = Recover(path, nil)
	if err != nil || rec.Changed || len(rec.Backups) != 0 {
		t.Errorf("recover of a healthy registry = %+v, %v", rec, err)
	}
	if after := dirState(t, filepath.Dir(path)); after != before {
		t.Error("recover changed a healthy registry")
	}
	// 300 random bytes: quarantined verbatim, and the summary says so.
	garbage := make([]byte, 300)
	rand.New(rand.NewSource(1)).Read(garbage)
	os.WriteFile(path, garbage, 0o600)
	rec, err = Recover(path, nil)
	if err != nil || rec.Threads != 0 || len(rec.Quarantined) != 1 {
		t.Fatalf("recover of garbage = %+v, %v", rec, err)
	}
	q, _, _ = ReadQuarantine(path, nil)
	if last := q[len(q)-1]; !bytes.Equal(append([]byte(last.Text), last.Base64...), garbage) {
		t.Error("the garbage was not kept verbatim")
	}
	if rep, _ := Fsck(path, nil); !rep.OK() {
		t.Errorf("fsck after recovering garbage: %+v", rep.Problems)
	}
}

// TestSymlinkedRegistry: writes go through the link to its target, with
// the journal and lock beside the target.
func TestSymlinkedRegistry(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "data", DefaultRegistryFile)
	os.MkdirAll(filepath.Dir(target), 0o700)
	link := filepath.Join(dir, DefaultRegistryFile)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	s := open(t, link, nil)
	if err := s.Update(func(tx *Tx) error { return tx.Create(NewThread(1, ""), tok) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	data, _ := os.ReadFile(target)
	if !bytes.Contains(data, []byte(`"1.0"`)) {
		t.Errorf("the target was not written: %s", data)
	}
	for _, f := range []string{target + ".journal", target + ".lock"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestDuplicateKeyKeepsCopy: a rewrite of a registry with a duplicate key
// first keeps a dated copy of it.
func TestDuplicateKeyKeepsCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	doc := []byte(`{"1.0": {"id": 1.0, "name": "first"}, "1.0": {"id": 1.0, "name": "second"}}`)
	os.WriteFile(path, doc, 0o600)
	s := open(t, path, nil)
	if err := s.Update(func(tx *Tx) error { return tx.Create(NewThread(2, ""), tok) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	copies, _ := filepath.Glob(path + ".dup-*")
	if len(copies) != 1 {
		t.Fatalf("copies: %v", copies)
	}
	if kept, _ := os.ReadFile(copies[0]); !bytes.Equal(kept, doc) {
		t.Error("the dated copy is not the original")
	}
}

// TestReparentKeepsLineageUnique: reparenting to a thread already in the
// lineage does not append it twice.
func TestReparentKeepsLineageUnique(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), DefaultRegistryFile), nil)
	err := s.Update(func(tx *Tx) error {
		for _, id := range []ID{40, 50} {
			if err := tx.Create(NewThread(id, ""), tok); err != nil {
				return err
			}
		}
		if _, err := tx.Branch(40, 60, nil, tok); err != nil {
			return err
		}
		if _, err := tx.Reparent(60, 50, tok); err != nil {
			return err
		}
		th, err := tx.Reparent(60, 40, tok)
		if err == nil && (!reflect.DeepEqual(th.Lineage, []ID{40, 50}) || *th.Parent != 40) {
			t.Errorf("lineage %v parent %v, want [40.0 50.0] and 40.0", th.Lineage, *th.Parent)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
