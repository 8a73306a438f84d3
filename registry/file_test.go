package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const tok = "test-token-0123456789"

// seedDir copies the registry written by the Python seed into a temporary
// directory and returns the registry path.
func seedDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{DefaultRegistryFile, DefaultArchiveFile} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, DefaultRegistryFile)
}

func open(t testing.TB, path string, opts *FileOptions) *FileStore {
	t.Helper()
	s, err := OpenFile(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSeedCompatibility(t *testing.T) {
	path := seedDir(t)
	before, _ := os.ReadFile(path)
	beforeArch, _ := os.ReadFile(filepath.Join(filepath.Dir(path), DefaultArchiveFile))
	s := open(t, path, nil)
	err := s.View(func(tx *Tx) error {
		ids := tx.IDs()
		want := []ID{1e-05, 1, 2, 4.5, 10, 11, 20, 21, 22, 30, 123456789.25}
		if !reflect.DeepEqual(ids, want) {
			t.Errorf("ids = %v, want %v", ids, want)
		}
		a, err := tx.Get(1)
		if err != nil {
			return err
		}
		if a.Name != "YourCoreThread" || a.Stage != "CORE" || a.Priority != 2 || a.TTL != 15 || a.MaxMemoryMB() != 1000 || a.Protected() || a.Status != "" {
			t.Errorf("1.0 = %+v", a)
		}
		if a.History[2] != "[2026-11-25 17:12:09] CPU computation failed 'module' object is not callable." {
			t.Errorf("history = %q", a.History)
		}
		tiny, err := tx.Get(1e-05)
		if err != nil || tiny.Name != "Thread-0-base" || tiny.MaxMemoryMB() != 1 {
			t.Errorf("1e-05 = %+v, %v", tiny, err)
		}
		big, err := tx.Get(123456789.25)
		if err != nil || big.TTL != 2 {
			t.Errorf("123456789.25 = %+v, %v", big, err)
		}
		m, _ := tx.Get(30)
		if m.Parent != nil || !reflect.DeepEqual(m.Lineage, []ID{1, 4.5}) || len(m.History) != 7 {
			t.Errorf("30.0 = %+v", m)
		}
		g, _ := tx.Get(4.5)
		if !reflect.DeepEqual(g.Metadata["tags"], []any{"a", "b"}) || g.Sandbox || g.Caching {
			t.Errorf("4.5 = %+v", g)
		}
		arch, err := tx.Archived(3)
		if err != nil || arch.DeletedAt != "2026-11-25T17:12:12.118359Z" || arch.Thread.Stage != "CRITICAL" || arch.Thread.Device != "gpu" {
			t.Errorf("archived 3.0 = %+v, %v", arch, err)
		}
		r, err := tx.Query(`21\.0.lineage`)
		if err != nil || r.Raw != "[2.0,1.0]" {
			t.Errorf("query = %v %v", r.Raw, err)
		}
		sum := tx.Summarize()
		if sum.Total != 11 || sum.Archived != 1 || sum.ByStatus[StatusUnknown] != 11 || sum.ByDevice["gpu"] != 1 {
			t.Errorf("summary = %+v", sum)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Reading changes nothing.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("opening and closing a seed registry changed it")
	}
	// An unprotected seed thread opens with any token, can be claimed, and
	// what we write stays in the seed's shape: 2-space indent, float keys,
	// untouched entries byte-for-byte.
	s = open(t, path, nil)
	err = s.Update(func(tx *Tx) error {
		if _, err := tx.Claim(2, tok); err != nil {
			return err
		}
		if _, err := tx.Branch(1, 40, nil, tok); err != nil {
			return err
		}
		_, err := tx.Delete(1e-05, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { _, err := tx.Rename(2, "x", "another-token-xxxxxx"); return err }); !errors.Is(err, ErrAccess) {
		t.Errorf("claimed thread opened with another token: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ = os.ReadFile(path)
	var reg map[string]map[string]any
	if err := json.Unmarshal(after, &reg); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg["40.0"]; !ok || reg["40.0"]["parent"] != 1.0 || reg["1e-05"] != nil {
		t.Errorf("rewritten registry: 40.0=%v 1e-05=%v", reg["40.0"], reg["1e-05"])
	}
	if !strings.HasPrefix(string(after), "{\n  \"1.0\": {\n    \"id\": 1.0,\n    \"name\": \"YourCoreThread\",") {
		t.Errorf("rewritten registry lost the seed's layout:\n%.200s", after)
	}
	i := bytes.Index(before, []byte(`  "4.5": {`))
	j := bytes.Index(before, []byte(`  "1e-05": {`))
	if !bytes.Contains(after, before[i:j]) {
		t.Error("an untouched entry was not kept byte for byte")
	}
	arch, _ := os.ReadFile(filepath.Join(filepath.Dir(path), DefaultArchiveFile))
	var archive map[string]map[string]any
	if err := json.Unmarshal(arch, &archive); err != nil {
		t.Fatal(err)
	}
	if archive["3.0"] == nil || archive["1e-05"] == nil || !strings.HasSuffix(archive["1e-05"]["deleted_at"].(string), "Z") {
		t.Errorf("archive = %s", arch)
	}
	if !bytes.HasPrefix(arch, beforeArch[:len(beforeArch)-2]) {
		t.Error("the archive's existing entry was not kept byte for byte")
	}
	for _, f := range []string{path, filepath.Join(filepath.Dir(path), DefaultArchiveFile), path + ".journal", path + ".lock"} {
		if fi, err := os.Stat(f); err != nil || (fi.Mode().Perm() != 0o600 && !strings.HasSuffix(f, DefaultRegistryFile) && !strings.HasSuffix(f, DefaultArchiveFile)) {
			t.Errorf("%s: mode %v, %v", f, fi.Mode(), err)
		}
	}
}

func TestNewFilesAre0600(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, DefaultRegistryFile), nil)
	if err := s.Update(func(tx *Tx) error {
		if err := tx.Create(NewThread(1, ""), tok); err != nil {
			return err
		}
		_, err := tx.Delete(1, tok)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{DefaultRegistryFile, DefaultArchiveFile, DefaultRegistryFile + ".journal", DefaultRegistryFile + ".lock"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
}

func TestCorruptRegistryIsNeverOverwritten(t *testing.T) {
	path := seedDir(t)
	data, _ := os.ReadFile(path)
	cut := data[:len(data)*2/3] // a crash of the seed's in-place write
	os.WriteFile(path, cut, 0o600)
	_, err := OpenFile(path, nil)
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Offset != int64(len(cut)) || ce.Path != path {
		t.Fatalf("open corrupt: %v", err)
	}
	for _, want := range []string{path, "has not changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, cut) {
		t.Fatal("a corrupt registry was changed")
	}
	rep, err := Fsck(path, nil)
	if err != nil || rep.OK() || rep.Problems[0].Offset != int64(len(cut)) {
		t.Fatalf("fsck = %+v, %v", rep, err)
	}
	rec, err := Recover(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Threads < 5 || len(rec.Backups) < 2 || len(rec.Quarantined) == 0 || !rec.Changed {
		t.Errorf("recover = %+v", rec)
	}
	if b, _ := os.ReadFile(rec.Backups[0]); !bytes.Equal(b, cut) {
		t.Error("the backup is not the original")
	}
	s := open(t, path, nil)
	s.View(func(tx *Tx) error {
		if tx.Len() != rec.Threads || !tx.Exists(1) || !tx.Exists(10) {
			t.Errorf("after recover: %d threads", tx.Len())
		}
		return nil
	})
	if rep, _ := Fsck(path, nil); !rep.OK() {
		t.Errorf("fsck after recover: %+v", rep.Problems)
	}
}

func TestCorruptArchiveAndGarbage(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "array": "[1,2]", "garbage": "\x00\x01zz", "nested": strings.Repeat("[", 100000)} {
		t.Run(name, func(t *testing.T) {
			path := seedDir(t)
			arch := filepath.Join(filepath.Dir(path), DefaultArchiveFile)
			os.WriteFile(arch, []byte(content), 0o600)
			_, err := OpenFile(path, nil)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v", err)
			}
			if now, _ := os.ReadFile(arch); string(now) != content {
				t.Fatal("corrupt archive changed")
			}
		})
	}
}

func TestTornJournalTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	s := open(t, path, &FileOptions{NoCompactOnClose: true})
	for i := 1; i <= 3; i++ {
		if err := s.Update(func(tx *Tx) error { return tx.Create(NewThread(ID(i), ""), tok) }); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	j := path + ".journal"
	data, _ := os.ReadFile(j)
	// A torn tail: half of a fourth record, as a crash mid-append leaves.
	lines := bytes.Split(data, []byte("\n"))
	torn := append(append([]byte(nil), data...), lines[len(lines)-2][:40]...)
	os.WriteFile(j, torn, 0o600)
	rep, _ := Fsck(path, nil)
	if !rep.OK() || rep.TornTailSize != 40 || rep.PendingOps != 3 {
		t.Errorf("fsck of a torn tail = %+v", rep)
	}
	s = open(t, path, nil)
	if err := s.View(func(tx *Tx) error {
		if tx.Len() != 3 {
			t.Errorf("%d threads after a torn tail", tx.Len())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Reads never write: the torn tail stays until a writer cuts it.
	if now, _ := os.ReadFile(j); !bytes.Equal(now, torn) {
		t.Error("a reader changed the journal")
	}
	if err := s.Update(func(tx *Tx) error { return tx.Create(NewThread(4, ""), tok) }); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(j); !bytes.HasPrefix(now, data) || bytes.Contains(now[len(data):], lines[len(lines)-2][:40]) {
		t.Error("the writer did not cut the torn tail")
	}
	s.Close()
	s = open(t, path, nil)
	s.View(func(tx *Tx) error {
		if tx.Len() != 4 {
			t.Errorf("%d threads, want 4", tx.Len())
		}
		return nil
	})
}

func TestDamagedJournalMiddle(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	s := open(t, path, &FileOptions{NoCompactOnClose: true})
	for i := 1; i <= 3; i++ {
		s.Update(func(tx *Tx) error { return tx.Create(NewThread(ID(i), ""), tok) })
	}
	s.Close()
	j := path + ".journal"
	data, _ := os.ReadFile(j)
	bad := bytes.Replace(data, []byte(`"id":2.0`), []byte(`"id":9.0`), 1)
	os.WriteFile(j, bad, 0o600)
	if _, err := OpenFile(path, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged journal: %v", err)
	}
	if now, _ := os.ReadFile(j); !bytes.Equal(now, bad) {
		t.Fatal("damaged journal was changed")
	}
	rec, err := Recover(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Threads != 2 || rec.Replayed != 2 || len(rec.Quarantined) != 1 || len(rec.Lost) != 0 {
		t.Errorf("recover = %+v", rec)
	}
}

func TestExternalModificationWithPendingOps(t *testing.T) {
	path := seedDir(t)
	s := open(t, path, &FileOptions{NoCompactOnClose: true})
	if err := s.Update(func(tx *Tx) error { _, err := tx.Branch(1, 50, nil, tok); return err }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The seed (or an editor) rewrites the registry meanwhile.
	data, _ := os.ReadFile(path)
	edited := bytes.Replace(data, []byte(`"YourCoreThread"`), []byte(`"EditedName"`), 1)
	os.WriteFile(path, edited, 0o600)
	_, err := OpenFile(path, nil)
	if !errors.Is(err, ErrModified) || !strings.Contains(err.Error(), "nothing has been changed") {
		t.Fatalf("err = %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, edited) {
		t.Fatal("modified registry was overwritten")
	}
	if _, err := Recover(path, nil); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, nil)
	s.View(func(tx *Tx) error {
		a, _ := tx.Get(1)
		if a.Name != "EditedName" || !tx.Exists(50) {
			t.Errorf("recover lost the edit or the journal: name %q, 50 exists %v", a.Name, tx.Exists(50))
		}
		return nil
	})
}

func TestOtherProcessCommitsAreSeen(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	a := open(t, path, &FileOptions{CompactBytes: 1500})
	b := open(t, path, &FileOptions{CompactBytes: 1500})
	for i := 1; i <= 20; i++ {
		s := a
		if i%2 == 0 {
			s = b
		}
		if err := s.Update(func(tx *Tx) error {
			if tx.Len() != i-1 {
				t.Errorf("before commit %d, the store sees %d threads", i, tx.Len())
			}
			return tx.Create(NewThread(ID(i), ""), tok)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b.View(func(tx *Tx) error {
		if tx.Len() != 20 {
			t.Errorf("b sees %d threads after a's close", tx.Len())
		}
		return nil
	})
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenFile(dir, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("directory: %v", err)
	}
	if _, err := OpenFile(filepath.Join(dir, "missing", "r.json"), nil); err == nil {
		t.Error("missing directory accepted")
	}
	s := open(t, filepath.Join(dir, "r.json"), nil)
	s.Close()
	if err := s.View(func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: %v", err)
	}
}

func TestHostileRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	hostile := `{"1.0": {"id": "NaN", "name": "x"}, "2.0": {"id": 2.0, "parent": "NaN", "merged_from": [1e400, -1]},
"3.0": {"id": 3.0, "parent": 4.0}, "4.0": {"id": 4.0, "parent": 3.0}, "5.0": {"id": 5.0, "priority": "high"}, "6.0": 7}`
	os.WriteFile(path, []byte(hostile), 0o600)
	s := open(t, path, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.View(func(tx *Tx) error {
			sum := tx.Summarize()
			if sum.Total != 6 {
				t.Errorf("total = %d", sum.Total)
			}
			if anc, err := tx.Ancestors(3); err != nil || !reflect.DeepEqual(anc, []ID{4}) {
				t.Errorf("ancestors through a cycle = %v, %v", anc, err)
			}
			if _, err := tx.Get(5); !errors.Is(err, ErrInvalid) {
				t.Errorf("bad priority: %v", err)
			}
			if _, err := tx.List(Filter{}); err == nil {
				t.Error("List of undecodable records succeeded")
			}
			return nil
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("hostile records hang the registry")
	}
	rep, err := Fsck(path, nil)
	if err != nil || rep.OK() || len(rep.Problems) < 3 {
		t.Errorf("fsck = %+v, %v", rep, err)
	}
}

// TestSeedMergeLineage checks that merges written by the seed, which have
// no merged_from field, still link to their sources through the seed's
// history line.
func TestSeedMergeLineage(t *testing.T) {
	s := open(t, seedDir(t), nil)
	s.View(func(tx *Tx) error {
		m, _ := tx.Get(30)
		if got := m.Parents(); !reflect.DeepEqual(got, []ID{1, 4.5}) {
			t.Errorf("parents of the seed merge 30.0 = %v, want [1.0 4.5]", got)
		}
		in, _ := tx.Get(20) // merged in place: 10.0 into 20.0
		if got := in.Parents(); !reflect.DeepEqual(got, []ID{1, 10}) {
			t.Errorf("parents of 20.0 = %v, want [1.0 10.0]", got)
		}
		b, _ := tx.Get(10) // a branch whose copied history names other merges
		if got := b.Parents(); !reflect.DeepEqual(got, []ID{1}) {
			t.Errorf("parents of 10.0 = %v", got)
		}
		if anc, _ := tx.Ancestors(30); !reflect.DeepEqual(anc, []ID{1, 4.5}) {
			t.Errorf("ancestors of 30.0 = %v", anc)
		}
		if kids, _ := tx.List(Filter{Parent: func() *ID { i := ID(4.5); return &i }()}); len(kids) != 1 || kids[0].ID != 30 {
			t.Errorf("children of 4.5 = %v", kids)
		}
		if roots := tx.Summarize().Lineage.Roots; containsID(roots, 30) {
			t.Errorf("the seed merge counts as a root: %v", roots)
		}
		return nil
	})
}

// TestMarkCrashedReadsEscapedStatus: the quick look at a record's bytes
// that spares MarkCrashed a parse of every record still finds a status
// spelled with escapes.
func TestMarkCrashedReadsEscapedStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	doc := `{"1.0": {"id": 1.0, "autonode": {"status": "\u0072unning", "owner": "pid=gone"}},
  "2.0": {"id": 2.0, "autonode": {"status": "running", "owner": "pid=gone"}},
  "3.0": {"id": 3.0, "autonode": {"status": "succeeded", "owner": "pid=gone"}},
  "4.0": {"id": 4.0, "name": "running, but as a name"}}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, path, nil)
	var ids []ID
	if err := s.Update(func(tx *Tx) error {
		var err error
		ids, err = tx.MarkCrashed(func(string) bool { return false })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []ID{1, 2}) && !reflect.DeepEqual(ids, []ID{2, 1}) {
		t.Errorf("MarkCrashed = %v, want 1.0 and 2.0", ids)
	}
}
