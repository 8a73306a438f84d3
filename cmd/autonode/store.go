package main

import (
	"errors"
	"fmt"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/runtime"
)

// backend is where this invocation's registry lives: the JSON file at
// path, or with --nats (AUTONODE_NATS) a JetStream KV bucket. It is the
// one place that knows which registry.Store implementation a command
// works on: the commands use only registry.Store and the optional
// interfaces registry.Locator and registry.Compacter.
type backend struct {
	path   string
	nats   string // server URL(s); "" for the file
	bucket string
}

func (e *env) backend() backend {
	return backend{path: e.registryPath(), nats: e.natsURL(), bucket: e.natsBucket()}
}

// natsURL is --nats, else $AUTONODE_NATS.
func (e *env) natsURL() string {
	if e.natsFlag != "" {
		return e.natsFlag
	}
	return e.getenv(natsstore.EnvURL)
}

// natsBucket is --nats-bucket, else $AUTONODE_NATS_BUCKET, else the
// default bucket.
func (e *env) natsBucket() string {
	if e.natsBucketFlag != "" {
		return e.natsBucketFlag
	}
	if b := e.getenv(natsstore.EnvBucket); b != "" {
		return b
	}
	return natsstore.DefaultBucket
}

// registryName names the registry for messages: its file, or its bucket
// and server.
func (e *env) registryName() string {
	b := e.backend()
	if b.nats != "" {
		return fmt.Sprintf("bucket %s on %s", b.bucket, natsstore.RedactURL(b.nats))
	}
	return b.path
}

// runtimeOptions are the runtime options that say where the registry is.
func (e *env) runtimeOptions() runtime.Options {
	b := e.backend()
	return runtime.Options{RegistryPath: b.path, NATS: b.nats, NATSBucket: b.bucket}
}

// exists reports whether there is a registry to open. A bucket's
// existence is checked when it is opened.
func (b backend) exists() bool {
	if b.nats != "" {
		return true
	}
	return exists(b.path) || exists(b.path+".journal") || exists(archivePathOf(b.path))
}

// open opens the store; a reader's store never writes. A missing bucket
// is refused (natsstore.ErrNoRegistry), as a missing file is: only
// running a script creates a registry.
func (b backend) open(readOnly bool) (registry.Store, error) {
	if b.nats != "" {
		return natsstore.Open(natsstore.Options{URL: b.nats, Bucket: b.bucket, ReadOnly: readOnly, MustExist: true})
	}
	return registry.OpenFile(b.path, &registry.FileOptions{ReadOnly: readOnly})
}

// fileOnly refuses a file maintenance command on a JetStream registry.
func (b backend) fileOnly(cmd string) error {
	if b.nats == "" {
		return nil
	}
	return usageErrorf("%s works on the JSON registry file; the registry in bucket %s on %s is kept by JetStream, which checksums and replicates its own storage (drop --nats and %s to %s a file)", cmd, b.bucket, natsstore.RedactURL(b.nats), natsstore.EnvURL, cmd)
}

func (b backend) fsck() (*registry.FsckReport, error) {
	if err := b.fileOnly("fsck"); err != nil {
		return nil, err
	}
	return registry.Fsck(b.path, nil)
}

func (b backend) recover() (*registry.RecoverReport, error) {
	if err := b.fileOnly("recover"); err != nil {
		return nil, err
	}
	return registry.Recover(b.path, nil)
}

// quarantined returns how many records recover moved to the quarantine,
// and where it is.
func (b backend) quarantined() (int, string) {
	if b.nats != "" {
		return 0, ""
	}
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
// (neither the file nor its journal, or no bucket), so that a command run
// in the wrong place says so instead of creating an empty registry there.
func (e *env) openStore(readOnly bool) (registry.Store, error) {
	b := e.backend()
	if b.nats == "" && !exists(b.path) && !exists(b.path+".journal") {
		return nil, fmt.Errorf("no registry at %s; pass --registry PATH or set %s (AutoNode creates the registry when it first writes a thread)", b.path, registry.EnvRegistry)
	}
	s, err := b.open(readOnly)
	if errors.Is(err, natsstore.ErrNoRegistry) {
		return nil, fmt.Errorf("%w; pass --nats-bucket NAME or set %s (AutoNode creates the bucket when it first writes a thread)", err, natsstore.EnvBucket)
	}
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
	case errors.Is(err, natsstore.ErrTooLarge):
		return err
	case errors.Is(err, natsstore.ErrUnavailable):
		return fmt.Errorf("%w (a cluster answers while a majority of its nodes run and reach each other; name several of them in --nats)", err)
	case errors.Is(err, natsstore.ErrUnknownOutcome):
		return fmt.Errorf("%w (`autonode show ID` tells whether it happened)", err)
	case errors.Is(err, registry.ErrInvalid) && !errors.Is(err, registry.ErrQuery):
		return readHint(err)
	}
	return err
}

// openUIStore opens the registry for the web view, which only reads: a
// file store that never compacts (rewrites) the files on close, or a
// read-only JetStream store.
func (e *env) openUIStore() (registry.Store, error) {
	b := e.backend()
	if b.nats != "" {
		return e.openStore(true)
	}
	if !exists(b.path) && !exists(b.path+".journal") {
		return nil, fmt.Errorf("no registry at %s; pass --registry PATH or set %s (AutoNode creates the registry when it first writes a thread)", b.path, registry.EnvRegistry)
	}
	s, err := registry.OpenFile(b.path, &registry.FileOptions{NoCompactOnClose: true})
	if err != nil {
		return nil, readHint(err)
	}
	return s, nil
}
