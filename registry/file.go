package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"github.com/tidwall/gjson"
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
}

// FileStore is the JSON-file Store: a seed-shaped snapshot
// (thread_registry.json and deleted_threads.json, 2-space indented, keys
// like "1.0") plus an append-only, checksummed journal
// (thread_registry.json.journal) of the operations committed since. A
// commit appends one journal line and fsyncs it, so its cost does not grow
// with the registry; compaction (past a size threshold, on Close, and on
// Compact) rewrites the snapshots atomically (temporary file, fsync,
// rename, directory fsync) so that a seed reader sees every operation.
// Processes sharing a registry serialize on an flock of
// thread_registry.json.lock and pick up each other's commits before every
// transaction. A file that does not parse is never overwritten.
//
// A FileStore is safe for concurrent use by several goroutines.
type FileStore struct {
	mu          sync.Mutex
	path        string
	archivePath string
	journalPath string
	lock        *flock.Flock
	opts        FileOptions
	closed      bool

	threads map[string]*entry
	archive map[string]*entry
	seq     int64 // insertion order of entries

	journal    *os.File
	journalFI  os.FileInfo
	journalEnd int64
	journalOps int   // committed transactions in the journal
	txSeq      int64 // last transaction number
	snapFI     os.FileInfo
	archFI     os.FileInfo
	snapSize   int64
	// dirtyR and dirtyA report journaled changes not yet in the snapshots.
	dirtyR, dirtyA bool
	// CompactErr is the last error of a threshold compaction (the commit
	// that triggered it was durable regardless).
	compactErr error
}

type entry struct {
	rec *Record
	seq int64
}

// DefaultPath is the registry path from AUTONODE_REGISTRY, or
// thread_registry.json in the working directory.
func DefaultPath() string {
	if p := os.Getenv(EnvRegistry); p != "" {
		return p
	}
	return DefaultRegistryFile
}

// OpenFile opens (creating when absent) the registry at path and its
// archive. A file that does not parse yields an error wrapping ErrCorrupt
// that names the file, the byte offset and what to do.
func OpenFile(path string, opts *FileOptions) (*FileStore, error) {
	if path == "" {
		path = DefaultPath()
	}
	s := &FileStore{path: path, journalPath: path + ".journal"}
	if opts != nil {
		s.opts = *opts
	}
	s.archivePath = s.opts.ArchivePath
	if s.archivePath == "" {
		s.archivePath = filepath.Join(filepath.Dir(path), DefaultArchiveFile)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("open registry %s: %w: it is a directory; want a file path such as %s", path, ErrInvalid, filepath.Join(path, DefaultRegistryFile))
	}
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("open registry %s: %w", path, err)
		}
	}
	s.lock = flock.New(path+".lock", flock.SetPermissions(0o600))
	if err := s.lockFiles(); err != nil {
		return nil, err
	}
	defer s.unlockFiles()
	if err := s.load(); err != nil {
		s.closeJournal()
		return nil, err
	}
	return s, nil
}

// Path returns the registry file's path.
func (s *FileStore) Path() string { return s.path }

// ArchivePath returns the archive file's path.
func (s *FileStore) ArchivePath() string { return s.archivePath }

func (s *FileStore) lockFiles() error {
	if s.opts.LockTimeout <= 0 {
		if err := s.lock.Lock(); err != nil {
			return fmt.Errorf("lock registry %s: %w", s.path, err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.LockTimeout)
	defer cancel()
	ok, err := s.lock.TryLockContext(ctx, 5*time.Millisecond)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("lock registry %s: %w", s.path, err)
	}
	if !ok {
		return fmt.Errorf("lock registry %s: another process has held %s for more than %v", s.path, s.lock.Path(), s.opts.LockTimeout)
	}
	return nil
}

func (s *FileStore) unlockFiles() { _ = s.lock.Unlock() }

func (s *FileStore) closeJournal() {
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
}

// readSnapshot reads and checks a snapshot file. present is false when the
// file does not exist.
func readSnapshot(path string) (data []byte, fi os.FileInfo, present bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	if data, err = io.ReadAll(f); err != nil {
		return nil, nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := checkSnapshot(path, data); err != nil {
		return nil, nil, false, err
	}
	return data, fi, true, nil
}

// checkSnapshot reports why data is not a JSON object, with the offset.
func checkSnapshot(path string, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return corruptError(path, 0, "the file is empty; a registry is a JSON object")
	}
	if gjson.ValidBytes(data) {
		if gjson.ParseBytes(data).IsObject() {
			return nil
		}
		return corruptError(path, 0, "the top level is not a JSON object")
	}
	var v any
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return corruptError(path, se.Offset, se.Error())
	}
	if err != nil {
		return corruptError(path, int64(len(data)), err.Error())
	}
	return corruptError(path, 0, "the file does not parse as JSON")
}

// CorruptError describes a registry file that does not parse.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s does not parse at byte %d: %s. AutoNode has not changed it. Run `autonode fsck` to see the problems and `autonode recover` to salvage every entry that parses (the original is kept as a dated copy)", e.Path, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corruptError(path string, off int64, reason string) error {
	return &CorruptError{Path: path, Offset: off, Reason: reason}
}

// load reads the snapshots and the journal and replays it. The lock is
// held.
func (s *FileStore) load() error {
	s.closeJournal()
	s.removeStaleTemps()
	rdata, rfi, rok, err := readSnapshot(s.path)
	if err != nil {
		return err
	}
	adata, afi, aok, err := readSnapshot(s.archivePath)
	if err != nil {
		return err
	}
	jdata, err := os.ReadFile(s.journalPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", s.journalPath, err)
	}
	pj, err := parseJournal(jdata, 0, true)
	if err != nil {
		return fmt.Errorf("%s: %w. AutoNode has not changed it; run `autonode fsck` and `autonode recover`", s.journalPath, err)
	}
	fpR, fpA := fingerprint(rdata, rok), fingerprint(adata, aok)
	ops := 0
	for _, r := range pj.records {
		if r.Compact == nil {
			ops++
		}
	}
	replayR, replayA := false, false
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
		replayR = match(fpR, func(h *journalHeader) string { return h.Registry })
		replayA = match(fpA, func(h *journalHeader) string { return h.Archive })
		if !replayR || !replayA {
			which := s.path
			if replayR {
				which = s.archivePath
			}
			return fmt.Errorf("%w: %s was changed by another program while %s still held %d committed operation(s). Nothing has been changed; run `autonode recover` to apply the journaled operations on top of the current file (both are kept as dated copies)", ErrModified, which, s.journalPath, ops)
		}
	}
	s.threads, s.archive, s.seq = map[string]*entry{}, map[string]*entry{}, 0
	s.loadEntries(rdata, s.threads, false)
	s.loadEntries(adata, s.archive, true)
	s.snapFI, s.archFI, s.snapSize = rfi, afi, int64(len(rdata))
	s.journalOps = ops
	s.dirtyR, s.dirtyA = false, false
	for _, r := range pj.records {
		s.apply(r)
	}
	switch {
	case hasCompactMark(pj):
		// A compaction was interrupted: finish it.
		return s.compactLocked()
	case pj.header == nil || ops == 0 && (pj.header.Registry != fpR || pj.header.Archive != fpA):
		// No journal yet, or an empty one for other snapshots: start one.
		head, err := encodeLine(journalHeader{Version: journalVersion, Registry: fpR, Archive: fpA})
		if err != nil {
			return err
		}
		if err := writeFileAtomic(s.journalPath, head); err != nil {
			return err
		}
		return s.openJournal(int64(len(head)), false)
	}
	return s.openJournal(pj.end, pj.torn)
}

// removeStaleTemps deletes temporary files left by a process that died
// while replacing a file; with the lock held no one else is writing them.
func (s *FileStore) removeStaleTemps() {
	for _, p := range []string{s.path, s.archivePath, s.journalPath} {
		matches, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*"))
		for _, m := range matches {
			os.Remove(m)
		}
	}
}

func hasCompactMark(pj *parsedJournal) bool {
	for _, r := range pj.records {
		if r.Compact != nil {
			return true
		}
	}
	return false
}

func (s *FileStore) loadEntries(data []byte, into map[string]*entry, archive bool) {
	if len(data) == 0 {
		return
	}
	gjson.ParseBytes(data).ForEach(func(k, v gjson.Result) bool {
		s.seq++
		key := k.String()
		seq := s.seq
		if old, ok := into[key]; ok {
			seq = old.seq // a duplicate key: the last one wins, as in Python
		}
		into[key] = &entry{rec: NewRecord(key, []byte(v.Raw), archive), seq: seq}
		return true
	})
}

func (s *FileStore) apply(r journalRecord) {
	for _, op := range r.Ops {
		m := s.threads
		if op.Archive {
			m = s.archive
		}
		if op.Archive {
			s.dirtyA = true
		} else {
			s.dirtyR = true
		}
		if op.Delete {
			delete(m, op.Key)
			continue
		}
		if old, ok := m[op.Key]; ok {
			old.rec = NewRecord(op.Key, op.Value, op.Archive)
			continue
		}
		s.seq++
		m[op.Key] = &entry{rec: NewRecord(op.Key, op.Value, op.Archive), seq: s.seq}
	}
	if r.Seq > s.txSeq {
		s.txSeq = r.Seq
	}
}

// openJournal opens the journal for appending at end, cutting a torn tail.
func (s *FileStore) openJournal(end int64, torn bool) error {
	f, err := os.OpenFile(s.journalPath, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.journalPath, err)
	}
	if torn {
		if err := f.Truncate(end); err != nil {
			f.Close()
			return fmt.Errorf("cut the torn tail of %s: %w", s.journalPath, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("sync %s: %w", s.journalPath, err)
		}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat %s: %w", s.journalPath, err)
	}
	s.journal, s.journalFI, s.journalEnd = f, fi, end
	return nil
}

// refresh picks up what other processes committed since this one last
// looked. The lock is held.
func (s *FileStore) refresh() error {
	jfi, err := os.Stat(s.journalPath)
	if err != nil || s.journal == nil || !os.SameFile(jfi, s.journalFI) || jfi.Size() < s.journalEnd ||
		changed(s.path, s.snapFI) || changed(s.archivePath, s.archFI) {
		return s.load()
	}
	if jfi.Size() == s.journalEnd {
		return nil
	}
	buf := make([]byte, jfi.Size()-s.journalEnd)
	if _, err := s.journal.ReadAt(buf, s.journalEnd); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", s.journalPath, err)
	}
	pj, err := parseJournal(buf, s.journalEnd, false)
	if err != nil {
		return fmt.Errorf("%s: %w", s.journalPath, err)
	}
	for _, r := range pj.records {
		if r.Compact != nil {
			return s.load()
		}
		s.apply(r)
		s.journalOps++
	}
	s.journalEnd = pj.end
	if pj.torn {
		if err := s.journal.Truncate(pj.end); err != nil {
			return fmt.Errorf("cut the torn tail of %s: %w", s.journalPath, err)
		}
		if err := s.journal.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", s.journalPath, err)
		}
	}
	return nil
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

// fileRecords is the committed state as Records.
type fileRecords struct{ s *FileStore }

func (r fileRecords) Thread(key string) (*Record, bool) {
	e, ok := r.s.threads[key]
	if !ok {
		return nil, false
	}
	return e.rec, true
}

func (r fileRecords) Archived(key string) (*Record, bool) {
	e, ok := r.s.archive[key]
	if !ok {
		return nil, false
	}
	return e.rec, true
}

func (r fileRecords) RangeThreads(fn func(*Record) bool) {
	for _, e := range r.s.threads {
		if !fn(e.rec) {
			return
		}
	}
}

func (r fileRecords) RangeArchived(fn func(*Record) bool) {
	for _, e := range r.s.archive {
		if !fn(e.rec) {
			return
		}
	}
}

func (s *FileStore) begin() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if err := s.lockFiles(); err != nil {
		s.mu.Unlock()
		return err
	}
	if err := s.refresh(); err != nil {
		s.unlockFiles()
		s.mu.Unlock()
		return err
	}
	return nil
}

func (s *FileStore) end() {
	s.unlockFiles()
	s.mu.Unlock()
}

// View implements Store.
func (s *FileStore) View(fn func(tx *Tx) error) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	return fn(NewTx(fileRecords{s}, false))
}

// Update implements Store.
func (s *FileStore) Update(fn func(tx *Tx) error) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	tx := NewTx(fileRecords{s}, true)
	if err := fn(tx); err != nil {
		return err
	}
	return s.commit(tx.Changes())
}

// commit appends the changes as one journal line, fsyncs it, and only then
// applies them in memory.
func (s *FileStore) commit(changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	rec := journalRecord{Seq: s.txSeq + 1, Ops: make([]journalOp, len(changes))}
	for i, c := range changes {
		op := journalOp{Archive: c.Archive, Key: c.Key, Delete: c.Raw == nil}
		if c.Raw != nil {
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
	if err := s.appendJournal(line); err != nil {
		return err
	}
	s.apply(rec)
	s.journalOps++
	limit := s.opts.CompactBytes
	if limit <= 0 {
		limit = max(4<<20, s.snapSize)
	}
	if s.journalEnd > limit {
		s.compactErr = s.compactLocked()
	}
	return nil
}

func (s *FileStore) appendJournal(line []byte) error {
	if _, err := s.journal.WriteAt(line, s.journalEnd); err != nil {
		_ = s.journal.Truncate(s.journalEnd)
		return fmt.Errorf("write %s: %w", s.journalPath, err)
	}
	if err := s.journal.Sync(); err != nil {
		_ = s.journal.Truncate(s.journalEnd)
		return fmt.Errorf("sync %s: %w", s.journalPath, err)
	}
	s.journalEnd += int64(len(line))
	if fi, err := s.journal.Stat(); err == nil {
		s.journalFI = fi
	}
	return nil
}

// Compact writes every journaled operation into the snapshot files and
// starts an empty journal.
func (s *FileStore) Compact() error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	return s.compactLocked()
}

// compactLocked writes the snapshots that journaled operations changed,
// then a fresh journal. A compaction mark in the journal first names the
// new snapshots, so a crash at any point leaves files that load to the
// same state.
func (s *FileStore) compactLocked() error {
	writeR := s.dirtyR || s.snapFI == nil
	writeA := s.dirtyA && (len(s.archive) > 0 || s.archFI != nil)
	var newR, newA []byte
	fpR, fpA := "", "absent"
	if writeR {
		newR = encodeSnapshot(s.threads)
		fpR = fingerprint(newR, true)
	} else {
		data, _, ok, err := readSnapshot(s.path)
		if err != nil {
			return err
		}
		fpR = fingerprint(data, ok)
	}
	if writeA {
		newA = encodeSnapshot(s.archive)
		fpA = fingerprint(newA, true)
	} else if s.archFI != nil {
		data, _, ok, err := readSnapshot(s.archivePath)
		if err != nil {
			return err
		}
		fpA = fingerprint(data, ok)
	}
	if (writeR || writeA) && s.journal != nil {
		mark, err := encodeLine(journalRecord{Compact: &journalHeader{Version: journalVersion, Registry: fpR, Archive: fpA}})
		if err != nil {
			return err
		}
		if err := s.appendJournal(mark); err != nil {
			return err
		}
	}
	if writeA {
		if err := writeFileAtomic(s.archivePath, newA); err != nil {
			return err
		}
	}
	if writeR {
		if err := writeFileAtomic(s.path, newR); err != nil {
			return err
		}
		s.snapSize = int64(len(newR))
	}
	head, err := encodeLine(journalHeader{Version: journalVersion, Registry: fpR, Archive: fpA})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.journalPath, head); err != nil {
		return err
	}
	s.closeJournal()
	if s.snapFI, err = os.Stat(s.path); err != nil {
		return fmt.Errorf("stat %s: %w", s.path, err)
	}
	if s.archFI, err = os.Stat(s.archivePath); err != nil {
		s.archFI = nil
	}
	s.journalOps = 0
	s.dirtyR, s.dirtyA = false, false
	return s.openJournal(int64(len(head)), false)
}

// encodeSnapshot writes entries as the seed does: json.dump(indent=2), in
// insertion order.
func encodeSnapshot(m map[string]*entry) []byte {
	if len(m) == 0 {
		return []byte("{}")
	}
	es := make([]*entry, 0, len(m))
	size := 2
	for _, e := range m {
		es = append(es, e)
		size += len(e.rec.Key) + len(e.rec.Raw)*2 + 8
	}
	sort.Slice(es, func(i, j int) bool { return es[i].seq < es[j].seq })
	b := bytes.NewBuffer(make([]byte, 0, size))
	b.WriteString("{\n")
	for i, e := range es {
		b.WriteString("  ")
		b.Write(quote(e.rec.Key))
		b.WriteString(": ")
		raw := e.rec.Raw
		if bytes.IndexByte(raw, '\n') < 0 {
			var ind bytes.Buffer
			if json.Indent(&ind, raw, "  ", "  ") == nil {
				raw = ind.Bytes()
			}
		}
		b.Write(raw)
		if i < len(es)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteByte('}')
	return b.Bytes()
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

// Close compacts the journal into the snapshots (unless NoCompactOnClose)
// and releases the store. It reports a compaction error, after which the
// journal still holds every committed operation.
func (s *FileStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	var err error
	if !s.opts.NoCompactOnClose {
		if err = s.begin(); err == nil {
			if s.journalOps > 0 {
				err = s.compactLocked()
			}
			s.end()
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

func filepathJoin(registry, name string) string { return filepath.Join(filepath.Dir(registry), name) }
