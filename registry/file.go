package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// Default file names, in the working directory unless moved.
const (
	DefaultRegistryFile = "thread_registry.json"
	DefaultArchiveFile  = "deleted_threads.json"
	// EnvRegistry names the environment variable that moves the registry.
	EnvRegistry = "AUTONODE_REGISTRY"
)

// FileOptions configures OpenFile. The zero value is ready to use.
type FileOptions struct {
	// ArchivePath defaults to deleted_threads.json beside the registry.
	ArchivePath string
	// LockTimeout bounds the wait for another process's lock; 0 waits
	// as long as it takes.
	LockTimeout time.Duration
	// CompactBytes is the journal size past which a commit compacts the
	// journal into the snapshot files; 0 means max(4 MiB, snapshot size).
	CompactBytes int64
	// NoCompactOnClose leaves journaled operations in the journal on Close.
	NoCompactOnClose bool
	// ReadOnly opens the registry for reading only: Update fails with
	// ErrReadOnly. (Reads never change anything on disk in any mode.)
	ReadOnly bool
}

// FileStore is the JSON-file Store: a seed-shaped snapshot
// (thread_registry.json and deleted_threads.json, 2-space indented, keys
// like "1.0") plus an append-only, checksummed journal
// (thread_registry.json.journal) of the operations committed since. A
// commit appends one journal line and fsyncs it, so its cost does not grow
// with the registry; compaction (past a size threshold, on Close after a
// write, and on Compact) rewrites the snapshots atomically (temporary
// file, fsync, rename, directory fsync) so that a seed reader sees every
// operation.
//
// Opening and reading cost what is read: a snapshot is indexed (where each
// entry starts and ends) and an entry is parsed when it is used. Reads
// never write: View creates no file, cuts no torn journal tail and takes
// only a shared lock (when the lock file exists), so that it works on a
// read-only file system and on files the user may only read. Writers
// serialize on an flock of thread_registry.json.lock, pick up each
// other's commits before every transaction, and are the only ones that
// repair (cut a torn tail, finish an interrupted compaction). A file that
// does not parse is never overwritten. A registry path that is a symbolic
// link is written through to its target, with the journal and lock beside
// the target.
//
// A FileStore is safe for concurrent use by several goroutines.
type FileStore struct {
	mu          sync.Mutex
	path        string // as given
	realPath    string // symbolic links resolved
	archivePath string
	journalPath string
	lockPath    string
	opts        FileOptions
	closed      bool

	wlock *flock.Flock // exclusive, creates the lock file
	rlock *flock.Flock // shared, only when the lock file exists

	loaded    bool
	reg, arch *table
	jf        *os.File // the journal as last read (O_RDWR once prepared for writing)
	jWritable bool
	jfi       os.FileInfo
	jEnd      int64
	jOps      int // committed transactions in the journal
	jTorn     bool
	jMarks    bool // the journal holds a compaction mark (interrupted compaction)
	header    *journalHeader
	txSeq     int64
	prepared  bool // writer repairs done for the current load
	wrote     bool // this store committed something
	// skipCompaction: no compaction, at a commit or Close (SkipCompaction).
	skipCompaction bool
	broken         error
	maxID          float64
	maxKnown       bool
	compactErr     error
}

// DefaultPath is the registry path from AUTONODE_REGISTRY, or
// thread_registry.json in the working directory.
func DefaultPath() string {
	if p := os.Getenv(EnvRegistry); p != "" {
		return p
	}
	return DefaultRegistryFile
}

// filePaths resolves the files of the registry at path: the registry (its
// symbolic links followed), the archive, the journal and the lock.
func filePaths(path string, opts *FileOptions) (given, real, arch, journal, lock string) {
	if path == "" {
		path = DefaultPath()
	}
	real = resolveLink(path)
	if opts != nil {
		arch = opts.ArchivePath
	}
	if arch == "" {
		arch = filepath.Join(filepath.Dir(path), DefaultArchiveFile)
	}
	arch = resolveLink(arch)
	return path, real, arch, real + ".journal", real + ".lock"
}

// resolveLink follows path while it is a symbolic link (also to a target
// that does not exist yet), so that writes replace the target, not the
// link.
func resolveLink(path string) string {
	for range 40 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return path
		}
		target, err := os.Readlink(path)
		if err != nil {
			return path
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return path
}

// OpenFile opens the registry at path and its archive and reads them; it
// creates nothing (the files are created by the first Update). A file
// that does not parse yields an error wrapping ErrCorrupt (a
// *CorruptError) that names the file and the byte offset.
func OpenFile(path string, opts *FileOptions) (*FileStore, error) {
	s := &FileStore{}
	s.path, s.realPath, s.archivePath, s.journalPath, s.lockPath = filePaths(path, opts)
	if opts != nil {
		s.opts = *opts
	}
	if fi, err := os.Stat(s.realPath); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("open registry %s: %w: it is a directory; want a file path such as %s", s.path, ErrInvalid, filepath.Join(s.path, DefaultRegistryFile))
	}
	if _, err := os.Stat(filepath.Dir(s.realPath)); err != nil {
		return nil, fmt.Errorf("open registry %s: %w", s.path, err)
	}
	s.wlock = flock.New(s.lockPath, flock.SetPermissions(0o600))
	s.rlock = flock.New(s.lockPath, flock.SetFlag(os.O_RDONLY))
	unlock, err := s.lockRead()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.load(); err != nil {
		s.closeJournal()
		return nil, err
	}
	return s, nil
}

// Path returns the registry file's path, as given to OpenFile.
func (s *FileStore) Path() string { return s.path }

// ArchivePath returns the archive file's path.
func (s *FileStore) ArchivePath() string { return s.archivePath }

// Location implements Locator.
func (s *FileStore) Location() string { return s.path }

// ArchiveLocation implements Locator.
func (s *FileStore) ArchiveLocation() string { return s.archivePath }

func (s *FileStore) lockWrite() error {
	if s.opts.LockTimeout <= 0 {
		if err := s.wlock.Lock(); err != nil {
			return fmt.Errorf("lock registry %s: %w", s.path, err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.LockTimeout)
	defer cancel()
	ok, err := s.wlock.TryLockContext(ctx, 5*time.Millisecond)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("lock registry %s: %w", s.path, err)
	}
	if !ok {
		return fmt.Errorf("lock registry %s: another process has held %s for more than %v", s.path, s.lockPath, s.opts.LockTimeout)
	}
	return nil
}

// lockRead takes the shared lock when the lock file exists (a writer
// made it); without one, no writer has ever run and there is nothing to
// wait for. A lock file that cannot be opened (a read-only file the user
// may not read) is no reason to refuse a read either.
func (s *FileStore) lockRead() (unlock func(), err error) {
	if err := s.rlock.RLock(); err != nil {
		return func() {}, nil
	}
	return func() { _ = s.rlock.Unlock() }, nil
}

func (s *FileStore) closeJournal() {
	if s.jf != nil {
		s.jf.Close()
		s.jf, s.jWritable = nil, false
	}
}

// CorruptError describes a registry file that does not parse.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s does not parse at byte %d: %s; AutoNode has not changed it", e.Path, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corruptError(path string, off int64, reason string) error {
	return &CorruptError{Path: path, Offset: off, Reason: reason}
}

// load reads the snapshots and the journal and replays it, writing
// nothing. When the files are caught between the steps of another
// process's compaction (a reader holds no lock when there is no lock
// file), it reads them again.
func (s *FileStore) load() error {
	var err error
	for try := 0; try < 5; try++ {
		if err = s.loadOnce(); !errors.Is(err, ErrModified) {
			return err
		}
		time.Sleep(time.Duration(try+1) * 5 * time.Millisecond)
	}
	return err
}

func (s *FileStore) loadOnce() error {
	s.closeJournal()
	s.loaded, s.prepared, s.maxKnown = false, false, false
	reg, err := readSnapshot(s.realPath, false)
	if err != nil {
		return err
	}
	arch, err := readSnapshot(s.archivePath, true)
	if err != nil {
		return err
	}
	jf, err := os.Open(s.journalPath)
	var jdata []byte
	var jfi os.FileInfo
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read %s: %w", s.journalPath, err)
	default:
		if jfi, err = jf.Stat(); err == nil {
			jdata, err = io.ReadAll(jf)
		}
		if err != nil {
			jf.Close()
			return fmt.Errorf("read %s: %w", s.journalPath, err)
		}
	}
	pj, err := parseJournal(jdata, 0, true)
	if err != nil {
		if jf != nil {
			jf.Close()
		}
		return fmt.Errorf("%s: %w", s.journalPath, err)
	}
	ops := 0
	for _, r := range pj.records {
		if r.Compact == nil {
			ops++
		}
	}
	if pj.header != nil && ops > 0 {
		match := func(fp string, pick func(*journalHeader) string) bool {
			if fp == pick(pj.header) {
				return true
			}
			for _, r := range pj.records {
				if r.Compact != nil && fp == pick(r.Compact) {
					return true
				}
			}
			return false
		}
		okR := match(reg.fingerprint(), func(h *journalHeader) string { return h.Registry })
		okA := match(arch.fingerprint(), func(h *journalHeader) string { return h.Archive })
		if !okR || !okA {
			if jf != nil {
				jf.Close()
			}
			which := s.path
			if okR {
				which = s.archivePath
			}
			return &ModifiedError{File: which, Journal: s.journalPath, Ops: ops}
		}
	}
	s.reg, s.arch = newTable(reg), newTable(arch)
	s.jf, s.jfi, s.jEnd, s.jTorn, s.header = jf, jfi, pj.end, pj.torn, pj.header
	s.jOps, s.jMarks = ops, hasCompactMark(pj)
	for _, r := range pj.records {
		s.apply(r)
	}
	s.loaded = true
	return nil
}

// ModifiedError reports a snapshot changed by another program while the
// journal held operations for it. It matches ErrModified.
type ModifiedError struct {
	File, Journal string
	Ops           int
}

func (e *ModifiedError) Error() string {
	return fmt.Sprintf("%s was changed by another program while %s still held %d committed operation(s); nothing has been changed", e.File, e.Journal, e.Ops)
}

// Is makes errors.Is(err, ErrModified) hold.
func (e *ModifiedError) Is(target error) bool { return target == ErrModified }

func hasCompactMark(pj *parsedJournal) bool {
	for _, r := range pj.records {
		if r.Compact != nil {
			return true
		}
	}
	return false
}

func (s *FileStore) apply(r journalRecord) {
	for _, op := range r.Ops {
		t := s.reg
		if op.Archive {
			t = s.arch
		}
		if op.Delete {
			t.set(op.Key, nil)
			continue
		}
		t.set(op.Key, NewRecord(op.Key, op.Value, op.Archive))
		if s.maxKnown {
			s.noteID(op.Key, nil)
		}
	}
	if r.Seq > s.txSeq {
		s.txSeq = r.Seq
	}
}

// noteID raises the highest id in use by the id under key (or of r).
func (s *FileStore) noteID(key string, r *Record) {
	if id, ok := keyID(key); ok {
		s.maxID = math.Max(s.maxID, float64(id))
		return
	}
	if r == nil {
		r, _ = s.reg.get(key)
		if r == nil {
			r, _ = s.arch.get(key)
		}
	}
	if r != nil && r.ID() != InvalidID {
		s.maxID = math.Max(s.maxID, float64(r.ID()))
	}
}

// nextID is the smallest integral id above every id in the registry and
// the archive, found once per load and then kept as commits apply.
func (s *FileStore) nextID() ID {
	if !s.maxKnown {
		s.maxID, s.maxKnown = 0, true
		for _, t := range []*table{s.reg, s.arch} {
			t.each(func(r *Record) bool { s.noteID(r.Key, r); return true })
		}
	}
	return ID(math.Floor(s.maxID) + 1)
}

// refresh picks up what other processes committed since this one last
// looked, writing nothing. The lock is held.
func (s *FileStore) refresh() error {
	if !s.loaded {
		return s.load()
	}
	jfi, err := os.Stat(s.journalPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", s.journalPath, err)
	}
	if jfi == nil {
		if s.jOps > 0 && s.jf != nil {
			return s.journalLost("removed")
		}
		if s.jf != nil || s.snapChanged() {
			return s.load()
		}
		return nil
	}
	if s.jf == nil || !os.SameFile(jfi, s.jfi) || jfi.Size() < s.jEnd || s.snapChanged() {
		return s.load()
	}
	if jfi.Size() == s.jEnd {
		return nil
	}
	buf := make([]byte, jfi.Size()-s.jEnd)
	if _, err := s.jf.ReadAt(buf, s.jEnd); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", s.journalPath, err)
	}
	pj, err := parseJournal(buf, s.jEnd, false)
	if err != nil {
		return fmt.Errorf("%s: %w", s.journalPath, err)
	}
	for _, r := range pj.records {
		if r.Compact != nil {
			return s.load()
		}
		s.apply(r)
		s.jOps++
	}
	s.jEnd, s.jTorn = pj.end, pj.torn
	return nil
}

func (s *FileStore) snapChanged() bool {
	return changed(s.realPath, s.reg.snap.fi) || changed(s.archivePath, s.arch.snap.fi)
}

// changed reports whether the file at path is no longer the one described
// by fi (nil: absent).
func changed(path string, fi os.FileInfo) bool {
	now, err := os.Stat(path)
	if err != nil {
		return fi != nil
	}
	return fi == nil || !os.SameFile(now, fi) || now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime())
}

// prepareWrite makes the files ready for a commit, with the exclusive lock
// held: it removes temporary files a dead process left, finishes an
// interrupted compaction, starts a journal when there is none (or one for
// other snapshots), and cuts a torn tail.
func (s *FileStore) prepareWrite() error {
	if s.prepared {
		return nil
	}
	if s.header == nil || s.jOps == 0 {
		if m := readLockMark(s.lockPath); m != nil && m.PendingOps > 0 && s.jf == nil {
			return &JournalLostError{Journal: s.journalPath, Ops: m.PendingOps, Saved: m.Lost}
		}
	}
	s.removeStaleTemps()
	fpR, fpA := s.reg.snap.fingerprint(), s.arch.snap.fingerprint()
	if s.header == nil || s.jOps == 0 && (s.header.Registry != fpR || s.header.Archive != fpA) {
		head, err := encodeLine(journalHeader{Version: journalVersion, Registry: fpR, Archive: fpA})
		if err != nil {
			return err
		}
		if err := writeFileAtomic(s.journalPath, head); err != nil {
			return err
		}
		s.header = &journalHeader{Version: journalVersion, Registry: fpR, Archive: fpA}
		s.jEnd, s.jTorn, s.jOps, s.jMarks = int64(len(head)), false, 0, false
		s.closeJournal()
	}
	if !s.jWritable {
		f, err := os.OpenFile(s.journalPath, os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("open %s: %w", s.journalPath, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("stat %s: %w", s.journalPath, err)
		}
		if s.jf != nil && !os.SameFile(fi, s.jfi) {
			f.Close()
			return s.load() // replaced meanwhile: the caller starts over
		}
		s.closeJournal()
		s.jf, s.jfi, s.jWritable = f, fi, true
	}
	if s.jTorn {
		if err := s.jf.Truncate(s.jEnd); err != nil {
			return fmt.Errorf("cut the torn tail of %s: %w", s.journalPath, err)
		}
		if err := s.jf.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", s.journalPath, err)
		}
		s.jTorn = false
	}
	s.prepared = true
	if s.jMarks {
		// A compaction was interrupted: finish it.
		return s.compactLocked()
	}
	return nil
}

// removeStaleTemps deletes temporary files left by a process that died
// while replacing a file; with the lock held no one else is writing them.
func (s *FileStore) removeStaleTemps() {
	for _, p := range []string{s.realPath, s.archivePath, s.journalPath} {
		matches, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*"))
		for _, m := range matches {
			os.Remove(m)
		}
	}
}

// fileRecords is the committed state as Records.
type fileRecords struct{ s *FileStore }

func (r fileRecords) Thread(key string) (*Record, bool)   { return r.s.reg.get(key) }
func (r fileRecords) Archived(key string) (*Record, bool) { return r.s.arch.get(key) }
func (r fileRecords) RangeThreads(fn func(*Record) bool)  { r.s.reg.each(fn) }
func (r fileRecords) RangeArchived(fn func(*Record) bool) { r.s.arch.each(fn) }
func (r fileRecords) NextID() ID                          { return r.s.nextID() }
func (r fileRecords) CountThreads() int                   { return r.s.reg.len() }

func (s *FileStore) begin(write bool) (end func(), err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if write && s.opts.ReadOnly {
		s.mu.Unlock()
		return nil, fmt.Errorf("registry %s: %w: it was opened read-only", s.path, ErrReadOnly)
	}
	if write && s.broken != nil {
		s.mu.Unlock()
		return nil, s.broken
	}
	unlock := func() {}
	if write {
		if err := s.lockWrite(); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		unlock = func() { _ = s.wlock.Unlock() }
	} else {
		unlock, _ = s.lockRead()
	}
	end = func() { unlock(); s.mu.Unlock() }
	if err := s.refresh(); err != nil {
		end()
		return nil, err
	}
	if write {
		if err := s.prepareWrite(); err != nil {
			end()
			return nil, err
		}
		if !s.prepared { // the journal was replaced meanwhile: reloaded
			if err := s.prepareWrite(); err != nil {
				end()
				return nil, err
			}
		}
	}
	return end, nil
}

// View implements Store. It writes nothing.
func (s *FileStore) View(fn func(tx *Tx) error) error {
	end, err := s.begin(false)
	if err != nil {
		return err
	}
	defer end()
	tx := NewTx(fileRecords{s}, false)
	defer tx.Close()
	return fn(tx)
}

// Update implements Store.
func (s *FileStore) Update(fn func(tx *Tx) error) error {
	end, err := s.begin(true)
	if err != nil {
		return err
	}
	defer end()
	tx := NewTx(fileRecords{s}, true)
	err = fn(tx)
	tx.Close()
	if err != nil {
		return err
	}
	return s.commit(tx.Changes())
}

// commit appends the changes as one journal line, fsyncs it, checks that
// the journal is still the file at its path, and only then applies them
// in memory.
func (s *FileStore) commit(changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	rec := journalRecord{Seq: s.txSeq + 1, Ops: make([]journalOp, len(changes))}
	for i, c := range changes {
		op := journalOp{Archive: c.Archive, Key: c.Key, Delete: c.Raw == nil}
		switch {
		case c.compact:
			op.Value = c.Raw // the record encoder's: compact and valid
		case c.Raw != nil:
			var b bytes.Buffer
			if err := json.Compact(&b, c.Raw); err != nil {
				return fmt.Errorf("commit %s: %w", c.Key, err)
			}
			op.Value = b.Bytes()
		}
		rec.Ops[i] = op
	}
	line, err := encodeLine(rec)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := s.checkJournal(); err != nil {
		return err
	}
	if err := s.appendJournal(line); err != nil {
		return err
	}
	if err := s.checkJournal(); err != nil {
		return err
	}
	s.apply(rec)
	s.jOps++
	s.wrote = true
	s.writeLockMark()
	limit := s.opts.CompactBytes
	if limit <= 0 {
		limit = max(4<<20, int64(len(s.reg.snap.data)))
	}
	if s.jEnd > limit && !s.skipCompaction {
		s.compactErr = s.compactLocked()
	}
	return nil
}

// checkJournal verifies that the open journal is still the file at its
// path (not removed, not replaced): a commit appended to a journal that
// is no longer there would be acknowledged and lost.
func (s *FileStore) checkJournal() error {
	fi, err := s.jf.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", s.journalPath, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 0 {
		return s.journalLost("removed")
	}
	now, err := os.Stat(s.journalPath)
	if errors.Is(err, os.ErrNotExist) {
		return s.journalLost("removed")
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", s.journalPath, err)
	}
	if !os.SameFile(now, fi) {
		return s.journalLost("replaced")
	}
	return nil
}

// JournalLostError reports a journal that another program removed or
// replaced while it held committed operations. It matches ErrJournalLost.
type JournalLostError struct {
	Journal string
	How     string // "removed" or "replaced"
	Ops     int
	// Saved is the copy of the journal that this process still had open
	// ("" when there was none to save).
	Saved string
}

func (e *JournalLostError) Error() string {
	how := e.How
	if how == "" {
		how = "removed"
	}
	msg := fmt.Sprintf("the journal %s was %s by another program while it held %d committed operation(s) that are in no snapshot", e.Journal, how, e.Ops)
	if e.Saved != "" {
		msg += "; they are kept in " + e.Saved
	}
	return msg + "; nothing more is written until the registry is recovered"
}

// Is makes errors.Is(err, ErrJournalLost) hold.
func (e *JournalLostError) Is(target error) bool { return target == ErrJournalLost }

// journalLost saves what the open journal holds beside it (a dated copy),
// records the loss in the lock file for fsck, and stops writes.
func (s *FileStore) journalLost(how string) error {
	e := &JournalLostError{Journal: s.journalPath, How: how, Ops: s.jOps}
	if s.jf != nil && s.jOps > 0 {
		if data, err := io.ReadAll(io.NewSectionReader(s.jf, 0, s.jEnd)); err == nil && len(data) > 0 {
			saved := s.journalPath + ".lost-" + time.Now().UTC().Format("20060102T150405.000000000Z")
			if writeFileAtomic(saved, data) == nil {
				e.Saved = saved
			}
		}
	}
	writeLockFile(s.lockPath, lockMark{PendingOps: s.jOps, Lost: e.Saved, JournalGone: true})
	s.broken = e
	s.loaded = false
	return e
}

func (s *FileStore) appendJournal(line []byte) error {
	if _, err := s.jf.WriteAt(line, s.jEnd); err != nil {
		_ = s.jf.Truncate(s.jEnd)
		return fmt.Errorf("write %s: %w", s.journalPath, err)
	}
	if err := s.jf.Sync(); err != nil {
		_ = s.jf.Truncate(s.jEnd)
		return fmt.Errorf("sync %s: %w", s.journalPath, err)
	}
	s.jEnd += int64(len(line))
	if fi, err := s.jf.Stat(); err == nil {
		s.jfi = fi
	}
	return nil
}

// lockMark is what writers keep in the lock file: how many committed
// operations the journal holds, so that fsck can tell when a journal
// vanished with operations in it.
type lockMark struct {
	Version     int    `json:"autonode_lock"`
	JournalDev  uint64 `json:"journal_dev,omitempty"`
	JournalIno  uint64 `json:"journal_ino,omitempty"`
	PendingOps  int    `json:"pending_ops"`
	JournalGone bool   `json:"journal_gone,omitempty"`
	Lost        string `json:"lost,omitempty"`
}

func (s *FileStore) writeLockMark() {
	m := lockMark{PendingOps: s.jOps}
	if s.jfi != nil {
		m.JournalDev, m.JournalIno = fileID(s.jfi)
	}
	writeLockFile(s.lockPath, m)
}

// writeLockFile writes m into the lock file (the flock is on the file,
// not on its content). Errors are ignored: the mark only informs fsck.
func writeLockFile(path string, m lockMark) {
	m.Version = 1
	data, err := json.Marshal(m)
	if err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	data = append(data, '\n')
	if _, err := f.WriteAt(data, 0); err == nil {
		_ = f.Truncate(int64(len(data)))
	}
}

// readLockMark reads the mark in the lock file, or nil.
func readLockMark(path string) *lockMark {
	data, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var m lockMark
	if json.Unmarshal(data, &m) != nil || m.Version != 1 {
		return nil
	}
	return &m
}

// Compact writes every journaled operation into the snapshot files and
// starts an empty journal.
func (s *FileStore) Compact() error {
	end, err := s.begin(true)
	if err != nil {
		return err
	}
	defer end()
	return s.compactLocked()
}

// compactLocked writes the snapshots that journaled operations changed,
// then a fresh journal. A compaction mark in the journal first names the
// new snapshots, so a crash at any point leaves files that load to the
// same state. A snapshot with duplicate keys is first kept as a dated
// copy, since the rewrite keeps only the last entry of each key.
func (s *FileStore) compactLocked() error {
	writeR := s.reg.dirty || !s.reg.snap.present() || s.reg.snap.duplicates() > 0
	writeA := (s.arch.dirty || s.arch.snap.duplicates() > 0) && (s.arch.len() > 0 || s.arch.snap.present())
	var newR, newA []byte
	var err error
	fpR, fpA := s.reg.snap.fingerprint(), s.arch.snap.fingerprint()
	if writeR {
		if newR, err = s.reg.encode(s.realPath); err != nil {
			return err
		}
		fpR = fingerprint(newR, true)
	}
	if writeA {
		if newA, err = s.arch.encode(s.archivePath); err != nil {
			return err
		}
		fpA = fingerprint(newA, true)
	}
	if (writeR || writeA) && s.jf != nil && s.jWritable {
		mark, err := encodeLine(journalRecord{Compact: &journalHeader{Version: journalVersion, Registry: fpR, Archive: fpA}})
		if err != nil {
			return err
		}
		if err := s.appendJournal(mark); err != nil {
			return err
		}
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for _, d := range []struct {
		write bool
		t     *table
		path  string
	}{{writeR, s.reg, s.realPath}, {writeA, s.arch, s.archivePath}} {
		if d.write && d.t.snap.duplicates() > 0 {
			if err := writeFileAtomic(d.path+".dup-"+stamp, d.t.snap.data); err != nil {
				return fmt.Errorf("keep a copy of %s before removing its duplicate keys: %w", d.path, err)
			}
		}
	}
	if writeA {
		if err := writeFileAtomic(s.archivePath, newA); err != nil {
			return err
		}
	}
	if writeR {
		if err := writeFileAtomic(s.realPath, newR); err != nil {
			return err
		}
	}
	head, err := encodeLine(journalHeader{Version: journalVersion, Registry: fpR, Archive: fpA})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.journalPath, head); err != nil {
		return err
	}
	s.closeJournal()
	// Read back what was written: the snapshots as new, the journal empty.
	if err := s.loadOnce(); err != nil {
		return err
	}
	s.reg.snap.valid, s.arch.snap.valid = true, true
	s.writeLockMark()
	return s.prepareWrite()
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory (mode 0600), fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Close compacts the journal into the snapshots when this store committed
// something (unless NoCompactOnClose) and releases the store. It reports a
// compaction error, after which the journal still holds every committed
// operation. A store that only read closes without touching the files.
// SkipCompaction makes the store compact no more, neither when the
// journal outgrows its limit nor at Close: the journal keeps growing
// instead of being folded into the snapshot files. Nothing is lost (the
// journal holds every committed operation, and the next writer that
// closes compacts), and the commits and Close that follow are quick, as a
// process that exits on a signal wants.
func (s *FileStore) SkipCompaction() {
	s.mu.Lock()
	s.skipCompaction = true
	s.mu.Unlock()
}

func (s *FileStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	wrote := s.wrote && !s.skipCompaction
	s.mu.Unlock()
	var err error
	if wrote && !s.opts.NoCompactOnClose {
		var end func()
		if end, err = s.begin(true); err == nil {
			if s.jOps > 0 {
				err = s.compactLocked()
			}
			end()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.closeJournal()
	if err == nil {
		err = s.compactErr
	}
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	return err
}
