package main

import (
	"errors"
	"fmt"

	"github.com/autonode/autonode/registry"
)

// backend is where this invocation's registry lives. It is the one place
// that knows which registry.Store implementation a command works on: the
// commands use only registry.Store and the optional interfaces
// registry.Locator and registry.Compacter, so another backend plugs in
// here without touching them.
type backend struct {
	path string
}

func (e *env) backend() backend { return backend{path: e.registryPath()} }

// exists reports whether there is a registry to open.
func (b backend) exists() bool {
	return exists(b.path) || exists(b.path+".journal") || exists(archivePathOf(b.path))
}

// open opens the store; a reader's store never writes.
func (b backend) open(readOnly bool) (registry.Store, error) {
	return registry.OpenFile(b.path, &registry.FileOptions{ReadOnly: readOnly})
}

func (b backend) fsck() (*registry.FsckReport, error)       { return registry.Fsck(b.path, nil) }
func (b backend) recover() (*registry.RecoverReport, error) { return registry.Recover(b.path, nil) }

// quarantined returns how many records recover moved to the quarantine,
// and where it is.
func (b backend) quarantined() (int, string) {
	q, file, err := registry.ReadQuarantine(b.path, nil)
	if err != nil {
		return 0, file
	}
	return len(q), file
}

// location names the store for messages.
func location(s registry.Store) (reg, archive string) {
	if l, ok := s.(registry.Locator); ok {
		return l.Location(), l.ArchiveLocation()
	}
	return "the registry", "the archive"
}

// openStore opens the registry. It refuses a registry that does not exist
// (neither the file nor its journal), so that a command run in the wrong
// directory says so instead of creating an empty registry there.
func (e *env) openStore(readOnly bool) (registry.Store, error) {
	b := e.backend()
	if !exists(b.path) && !exists(b.path+".journal") {
		return nil, fmt.Errorf("no registry at %s; pass --registry PATH or set %s (AutoNode creates the registry when it first writes a thread)", b.path, registry.EnvRegistry)
	}
	s, err := b.open(readOnly)
	if err != nil {
		return nil, hint(err)
	}
	return s, nil
}

// withStore opens the registry for writing, runs fn, and closes the
// registry, joining the close error (a failed compaction) to fn's.
func (e *env) withStore(fn func(s registry.Store) error) error { return e.with(false, fn) }

// withReader opens the registry read-only (nothing on disk changes), runs
// fn and closes it.
func (e *env) withReader(fn func(s registry.Store) error) error { return e.with(true, fn) }

func (e *env) with(readOnly bool, fn func(s registry.Store) error) error {
	s, err := e.openStore(readOnly)
	if err != nil {
		return err
	}
	err = fn(s)
	if cerr := s.Close(); cerr != nil {
		where, _ := location(s)
		cerr = fmt.Errorf("closing %s: %w", where, hint(cerr))
		if err == nil {
			return cerr
		}
		var ee *exitError
		if errors.As(err, &ee) && ee.err == nil {
			fmt.Fprintf(e.stderr, "autonode: %v\n", cerr)
			return err
		}
		return errors.Join(err, cerr)
	}
	return hint(err)
}

// hint adds what to do to the registry's errors: the library says what is
// wrong, the CLI says which command deals with it.
func hint(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, registry.ErrCorrupt), errors.Is(err, registry.ErrJournalLost):
		return fmt.Errorf("%w. Run `autonode fsck` to see the problems and `autonode recover` to salvage every entry that parses (the originals are kept as dated copies)", err)
	case errors.Is(err, registry.ErrModified):
		return fmt.Errorf("%w. Run `autonode recover` to apply the journaled operations on top of the current file (both are kept as dated copies)", err)
	case errors.Is(err, registry.ErrTokenRequired):
		return fmt.Errorf("%w (create one with `autonode token`)", err)
	case errors.Is(err, registry.ErrInvalid) && !errors.Is(err, registry.ErrQuery):
		return readHint(err)
	}
	return err
}
