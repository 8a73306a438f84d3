package registry

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
)

// TestPutRunWritesOnlyRunState: a token-free run-state write records the
// status, attempts, owner and new history lines, but a change to what the
// thread is (its name, sandbox, metadata, token) is not taken, the check
// refuses with its own error, and a missing thread is ErrNotFound.
func TestPutRunWritesOnlyRunState(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), DefaultRegistryFile), nil)
	const tok = "token-aaaaaaaaaaaaaaaa"
	th := NewThread(1, StageCore)
	th.Metadata = map[string]any{"lr": json.Number("0.1")}
	th.AddHistory("made")
	if err := s.Update(func(tx *Tx) error { return tx.Create(th, tok) }); err != nil {
		t.Fatal(err)
	}
	errFence := errors.New("fenced")
	err := s.Update(func(tx *Tx) error {
		got, err := tx.Get(1)
		if err != nil {
			return err
		}
		got.Status, got.Owner = StatusRunning, "worker=w pid=1 host=h start=1"
		got.Attempts = append(got.Attempts, Attempt{N: 1, Status: StatusRunning})
		got.RunExtra = map[string]json.RawMessage{"lease": json.RawMessage(`{"worker":"w"}`)}
		got.AddHistory("claimed")
		got.Name, got.Sandbox, got.Metadata = "renamed", false, map[string]any{}
		if err := tx.PutRun(got, func(stored *Thread) error {
			if stored.Status != StatusPending {
				return errFence
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.PutRun(got, func(*Thread) error { return errFence })
	})
	if !errors.Is(err, errFence) {
		t.Fatalf("the second write's check: %v, want its own error", err)
	}
	if err := s.Update(func(tx *Tx) error {
		got, _ := tx.Get(1)
		got.Status, got.Owner = StatusRunning, "worker=w pid=1 host=h start=1"
		got.Name, got.Sandbox = "renamed", false
		got.AddHistory("claimed")
		return tx.PutRun(got, nil)
	}); err != nil {
		t.Fatal(err)
	}
	var after *Thread
	if err := s.View(func(tx *Tx) error { var err error; after, err = tx.Get(1); return err }); err != nil {
		t.Fatal(err)
	}
	if after.Status != StatusRunning || after.Owner == "" || len(after.History) != 2 {
		t.Errorf("run state not written: %s %q %v", after.Status, after.Owner, after.History)
	}
	if after.Name != th.Name || !after.Sandbox || after.Metadata["lr"] == nil || !after.Protected() {
		t.Errorf("a run-state write changed the thread: name %q sandbox %v metadata %v protected %v", after.Name, after.Sandbox, after.Metadata, after.Protected())
	}
	err = s.Update(func(tx *Tx) error { return tx.PutRun(NewThread(9, StageBase), nil) })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("PutRun of a missing thread: %v", err)
	}
}

// TestModifyIsGetThenPut: Modify writes what Get, a change and Put would
// (the stored history kept, the owners unchanged, the version bumped),
// refuses a wrong token with ErrAccess and a missing thread with
// ErrNotFound, and takes no change that gives the thread another id.
func TestModifyIsGetThenPut(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), DefaultRegistryFile), nil)
	const tok = "token-aaaaaaaaaaaaaaaa"
	th := NewThread(1, StageCore)
	th.AddHistory("made")
	if err := s.Update(func(tx *Tx) error { return tx.Create(th, tok) }); err != nil {
		t.Fatal(err)
	}
	var wrote *Thread
	if err := s.Update(func(tx *Tx) (err error) {
		wrote, err = tx.Modify(1, tok, func(t *Thread) error {
			t.Status = StatusCancelled
			t.History = []string{"a replacement history"} // does not start with the stored one
			return nil
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got *Thread
	if err := s.View(func(tx *Tx) (err error) { got, err = tx.Get(1); return err }); err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusCancelled || len(got.History) != 2 || got.History[1] != "a replacement history" || !got.Protected() {
		t.Errorf("after Modify: %s %q protected %v", got.Status, got.History, got.Protected())
	}
	if got.Version != wrote.Version || got.Version != th.Version+1 {
		t.Errorf("version %d, Modify returned %d, created at %d", got.Version, wrote.Version, th.Version)
	}
	for _, c := range []struct {
		id   ID
		tok  string
		want error
	}{{1, "token-bbbbbbbbbbbbbbbb", ErrAccess}, {7, tok, ErrNotFound}} {
		err := s.Update(func(tx *Tx) error {
			_, err := tx.Modify(c.id, c.tok, func(t *Thread) error { t.Status = StatusFailed; return nil })
			return err
		})
		if !errors.Is(err, c.want) {
			t.Errorf("Modify(%v, %s): %v, want %v", c.id, c.tok, err, c.want)
		}
	}
	err := s.Update(func(tx *Tx) error {
		_, err := tx.Modify(1, tok, func(t *Thread) error { t.ID = 2; return nil })
		return err
	})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("Modify that changes the id: %v", err)
	}
}
