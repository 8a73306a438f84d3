package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// The outputs of the JSON-file store (see Outputs for the layout).

var _ Outputs = (*FileStore)(nil)

// Suffixes of the outputs' directories, after the registry's path
// without ".json".
const (
	ResultsDirSuffix = ".results"
	LogsDirSuffix    = ".logs"
	MetricsDirSuffix = ".metrics"
)

// outputsDir is the directory of one kind of outputs beside the registry
// file (its symbolic links followed).
func (s *FileStore) outputsDir(suffix string) string {
	return strings.TrimSuffix(s.realPath, ".json") + suffix
}

// ResultsDir is where the store keeps results: thread_registry.results
// beside the registry.
func (s *FileStore) ResultsDir() string { return s.outputsDir(ResultsDirSuffix) }

// LogsDir is where the store keeps logs: thread_registry.logs.
func (s *FileStore) LogsDir() string { return s.outputsDir(LogsDirSuffix) }

// MetricsDir is where the store keeps metrics: thread_registry.metrics.
func (s *FileStore) MetricsDir() string { return s.outputsDir(MetricsDirSuffix) }

// Results implements Outputs.
func (s *FileStore) Results() ResultStore {
	return &fileResults{dir: s.ResultsDir(), readOnly: s.opts.ReadOnly}
}

// Logs implements Outputs.
func (s *FileStore) Logs() LogStore { return &fileLogs{dir: s.LogsDir(), readOnly: s.opts.ReadOnly} }

// Metrics implements Outputs.
func (s *FileStore) Metrics() MetricStore {
	return &fileMetrics{dir: s.MetricsDir(), readOnly: s.opts.ReadOnly}
}

func refuseReadOnly(readOnly bool, dir string) error {
	if readOnly {
		return fmt.Errorf("%s: %w: the registry was opened read-only", dir, ErrReadOnly)
	}
	return nil
}

func makeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// ctxReader fails a read once ctx has ended.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// fileResults keeps arrays as <sha256>.npy files. Puts hold a shared
// flock of .lock in the directory while they place a file, RemoveArray
// an exclusive one while it looks at a file's time and removes it: a
// put either stamps a file that RemoveArray then leaves alone, or stores
// it again after it was removed.
type fileResults struct {
	dir      string
	readOnly bool
}

func (r *fileResults) path(digest string) string { return filepath.Join(r.dir, digest+".npy") }

func (r *fileResults) lock() *flock.Flock {
	return flock.New(filepath.Join(r.dir, ".lock"), flock.SetPermissions(0o600))
}

// PutArray implements ResultStore.
func (r *fileResults) PutArray(ctx context.Context, npy io.Reader) (ArrayRef, error) {
	if err := refuseReadOnly(r.readOnly, r.dir); err != nil {
		return ArrayRef{}, err
	}
	if err := makeDir(r.dir); err != nil {
		return ArrayRef{}, err
	}
	tmp, err := os.CreateTemp(r.dir, ".tmp-*.npy")
	if err != nil {
		return ArrayRef{}, fmt.Errorf("store a result in %s: %w", r.dir, err)
	}
	placed := false
	defer func() {
		if !placed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	ref, err := CopyNPY(tmp, ctxReader{ctx, npy})
	if err != nil {
		return ArrayRef{}, fmt.Errorf("store a result: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return ArrayRef{}, fmt.Errorf("store a result: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return ArrayRef{}, fmt.Errorf("store a result: %w", err)
	}
	l := r.lock()
	if err := l.RLock(); err != nil {
		return ArrayRef{}, fmt.Errorf("store a result: lock %s: %w", l.Path(), err)
	}
	defer l.Unlock()
	dst := r.path(ref.SHA256)
	if fi, err := os.Stat(dst); err == nil && fi.Size() == ref.Bytes && fileHashes(dst, ref.SHA256) {
		// Stored already: stamp it, so that a collection spares it. (A
		// damaged copy is replaced below.)
		now := time.Now()
		if err := os.Chtimes(dst, now, now); err == nil {
			return ref, nil
		}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return ArrayRef{}, fmt.Errorf("store a result: %w", err)
	}
	placed = true
	return ref, syncDir(r.dir)
}

// fileHashes reports whether the file at p hashes to digest.
func fileHashes(p, digest string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == digest
}

// OpenArray implements ResultStore.
func (r *fileResults) OpenArray(ctx context.Context, digest string) (io.ReadCloser, error) {
	if err := ValidateDigest(digest); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(r.path(digest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("result %s: %w in %s", digest, ErrResultNotFound, r.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("result %s: %w", digest, err)
	}
	return NewVerifyingReader(f, digest, f.Name()), nil
}

// ListArrays implements ResultStore.
func (r *fileResults) ListArrays(ctx context.Context) ([]StoredArray, error) {
	ents, err := os.ReadDir(r.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.dir, err)
	}
	var out []StoredArray
	for _, e := range ents {
		d, ok := strings.CutSuffix(e.Name(), ".npy")
		if !ok || ValidateDigest(d) != nil || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, StoredArray{Digest: d, Bytes: fi.Size(), Stamped: fi.ModTime()})
	}
	return out, nil
}

// RemoveArray implements ResultStore.
func (r *fileResults) RemoveArray(ctx context.Context, digest string, notAfter time.Time) (bool, error) {
	if err := ValidateDigest(digest); err != nil {
		return false, err
	}
	if err := refuseReadOnly(r.readOnly, r.dir); err != nil {
		return false, err
	}
	l := r.lock()
	if err := l.Lock(); err != nil {
		return false, fmt.Errorf("lock %s: %w", l.Path(), err)
	}
	defer l.Unlock()
	p := r.path(digest)
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.ModTime().After(notAfter) {
		return false, nil
	}
	if err := os.Remove(p); err != nil {
		return false, fmt.Errorf("remove %s: %w", p, err)
	}
	return true, syncDir(r.dir)
}

// removeStaleTemps removes the temporary files of puts that died before
// placing them (untouched since notAfter).
func (r *fileResults) removeStaleTemps(notAfter time.Time) int {
	matches, _ := filepath.Glob(filepath.Join(r.dir, ".tmp-*.npy"))
	n := 0
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && !fi.ModTime().After(notAfter) && os.Remove(m) == nil {
			n++
		}
	}
	return n
}

// VerifyingReader passes on a stored result's bytes and fails at the end
// with ErrResultCorrupt when they do not hash to the digest.
type VerifyingReader struct {
	rc     io.ReadCloser
	h      hash.Hash
	digest string
	name   string
	err    error
}

// NewVerifyingReader reads rc, the bytes of the result with the digest;
// name says where they are, for messages.
func NewVerifyingReader(rc io.ReadCloser, digest, name string) *VerifyingReader {
	return &VerifyingReader{rc: rc, h: sha256.New(), digest: digest, name: name}
}

func (v *VerifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.digest {
			v.err = fmt.Errorf("%w: %s hashes to %s, not %s: it was changed or damaged after it was stored", ErrResultCorrupt, v.name, got, v.digest)
			return n, v.err
		}
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

// Close implements io.Closer.
func (v *VerifyingReader) Close() error { return v.rc.Close() }

// appender writes lines to a file through a buffer that is flushed when
// it grows, LogFlushInterval after a line is buffered, and on Flush and
// Close. Flush and Close take mu; around every other call its owner holds
// mu.
type appender struct {
	mu     sync.Mutex
	f      *os.File
	lock   *flock.Flock
	buf    []byte
	timer  *time.Timer
	err    error // the first write error: the writer stops
	closed bool
}

// add buffers a line.
func (a *appender) add(line []byte) error {
	if a.closed {
		return fmt.Errorf("write %s: the writer is closed", a.f.Name())
	}
	if a.err != nil {
		return a.err
	}
	a.buf = append(a.buf, line...)
	if len(a.buf) >= 64<<10 {
		return a.flushLocked()
	}
	if a.timer == nil {
		a.timer = time.AfterFunc(LogFlushInterval, func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if !a.closed {
				_ = a.flushLocked()
			}
		})
	} else {
		a.timer.Reset(LogFlushInterval)
	}
	return nil
}

func (a *appender) flushLocked() error {
	if a.err != nil || len(a.buf) == 0 {
		return a.err
	}
	if _, err := a.f.Write(a.buf); err != nil {
		a.err = fmt.Errorf("write %s: %w", a.f.Name(), err)
		return a.err
	}
	a.buf = a.buf[:0]
	return nil
}

// Flush writes the buffered lines to the file.
func (a *appender) Flush() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.flushLocked()
}

// Close flushes, syncs and closes the file and releases the lock.
func (a *appender) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closeLocked()
}

// closeLocked flushes, syncs and closes the file and releases the lock.
func (a *appender) closeLocked() error {
	if a.closed {
		return nil
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	err := a.flushLocked()
	if serr := a.f.Sync(); err == nil && serr != nil {
		err = fmt.Errorf("sync %s: %w", a.f.Name(), serr)
	}
	if cerr := a.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	a.closed = true
	_ = a.lock.Unlock()
	return err
}

// takeWriterLock takes the exclusive lock of a thread's log or metrics,
// refusing (ErrBusy) when another writer has it.
func takeWriterLock(path, what string) (*flock.Flock, error) {
	l := flock.New(path, flock.SetPermissions(0o600))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w (%s is locked)", what, ErrBusy, path)
	}
	return l, nil
}

// openAppend opens path for appending, cutting a torn last line (one
// without its newline, left by a writer that died), and returns the
// complete content that was there.
func openAppend(path string) (*os.File, []byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	whole := completeLines(data)
	if len(whole) < len(data) {
		if err := f.Truncate(int64(len(whole))); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("cut the torn end of %s: %w", path, err)
		}
	}
	if _, err := f.Seek(int64(len(whole)), io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, whole, nil
}

// completeLines is data up to and including its last newline.
func completeLines(data []byte) []byte {
	return data[:bytes.LastIndexByte(data, '\n')+1]
}

// eachLine calls fn with each complete line of data (without its newline)
// and the offset after it.
func eachLine(data []byte, fn func(line []byte, end int)) {
	off := 0
	for {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return
		}
		fn(data[off:off+i], off+i+1)
		off += i + 1
	}
}

// fileLogs keeps a thread's log in <key>.log and, once the text of that
// passes half the log's limit, moves it to <key>.log.1 (replacing the
// previous one) and starts a new <key>.log: the two files hold at most
// the limit of text, and at least half of it once the log is that long.
type fileLogs struct {
	dir      string
	readOnly bool
}

func (l *fileLogs) path(id ID) string { return filepath.Join(l.dir, id.Key()+".log") }

// OpenLog implements LogStore.
func (l *fileLogs) OpenLog(ctx context.Context, id ID, opts LogOptions) (LogWriter, error) {
	if err := refuseReadOnly(l.readOnly, l.dir); err != nil {
		return nil, err
	}
	if err := ValidateID(float64(id)); err != nil {
		return nil, err
	}
	if err := makeDir(l.dir); err != nil {
		return nil, err
	}
	what := "the log of thread " + id.Key()
	lk, err := takeWriterLock(l.path(id)+".lock", what)
	if err != nil {
		return nil, err
	}
	f, data, err := openAppend(l.path(id))
	if err != nil {
		lk.Unlock()
		return nil, err
	}
	w := &fileLogWriter{path: l.path(id), limit: opts.Limit()}
	w.f, w.lock = f, lk
	last, ok := lastEntry(data)
	if es, _ := readEntries(data); len(es) > 0 {
		w.size = last.End() - es[0].Offset
	}
	if !ok {
		prev, _ := os.ReadFile(w.path + ".1")
		last, ok = lastEntry(completeLines(prev))
	}
	if ok {
		w.prev = LogCursor{Line: last.Line, Offset: last.End()}
	}
	return w, nil
}

// lastEntry is the last entry of complete log lines that decodes.
func lastEntry(data []byte) (LogEntry, bool) {
	for len(data) > 0 {
		body := data[:len(data)-1]
		i := bytes.LastIndexByte(body, '\n')
		if e, err := DecodeLogEntry(body[i+1:]); err == nil {
			return e, true
		}
		data = data[:i+1]
	}
	return LogEntry{}, false
}

type fileLogWriter struct {
	appender // its Flush and Close implement LogWriter's
	path     string
	limit    int64
	size     int64 // bytes of text in the current file, buffered ones included
	prev     LogCursor
}

// Write implements LogWriter.
func (w *fileLogWriter) Write(e LogEntry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, err := PrepareLogEntry(e, w.prev)
	if err != nil {
		return err
	}
	line, err := EncodeLogEntry(e)
	if err != nil {
		return err
	}
	text := e.End() - e.Offset
	if w.size > 0 && w.size+text > w.limit/2 {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	if err := w.add(line); err != nil {
		return err
	}
	w.size += text
	w.prev = LogCursor{Line: e.Line, Offset: e.End()}
	return nil
}

// rotate moves the current file to .1 and starts a new one.
func (w *fileLogWriter) rotate() error {
	if err := w.flushLocked(); err != nil {
		return err
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		w.err = fmt.Errorf("rotate %s: %w", w.path, err)
		return w.err
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		w.err = fmt.Errorf("rotate %s: %w", w.path, err)
		return w.err
	}
	w.f.Close()
	w.f, w.size = f, 0
	return nil
}

// readEntries decodes the complete lines of data, skipping those that do
// not decode, with the offset in data after each.
func readEntries(data []byte) (entries []LogEntry, ends []int) {
	eachLine(data, func(line []byte, end int) {
		if e, err := DecodeLogEntry(line); err == nil {
			entries = append(entries, e)
			ends = append(ends, end)
		}
	})
	return entries, ends
}

// ReadLog implements LogStore. A cursor's Pos is the offset in <key>.log
// after its line, valid while that file still holds the line there.
func (l *fileLogs) ReadLog(ctx context.Context, id ID, after LogCursor, limit int) (LogPage, error) {
	if err := ctx.Err(); err != nil {
		return LogPage{}, err
	}
	p := l.path(id)
	cur, err := readIfExists(p)
	if err != nil {
		return LogPage{}, err
	}
	cur = completeLines(cur)
	if at, ok := entryBefore(cur, after); ok {
		// The file is the one the cursor was made on: read on from there.
		es, ends := readEntries(cur[after.Pos:])
		last := at
		if len(es) > 0 {
			last = es[len(es)-1]
		}
		page := withPos(PageOf(after, es, last, limit), es, ends, int(after.Pos))
		if page.Next.Line == after.Line {
			page.Next.Pos = after.Pos
		}
		return page, nil
	}
	es, ends := readEntries(cur)
	all := es
	if len(es) == 0 || es[0].Line > after.Line+1 {
		// The lines after the cursor begin in the rotated file.
		prev, err := readIfExists(p + ".1")
		if err != nil {
			return LogPage{}, err
		}
		older, _ := readEntries(completeLines(prev))
		all = append(older, es...)
	}
	var last LogEntry
	if len(all) > 0 {
		last = all[len(all)-1]
	}
	return withPos(PageOf(after, all, last, limit), es, ends, 0), nil
}

// entryBefore returns the entry that ends at after.Pos in cur, when it is
// the cursor's line.
func entryBefore(cur []byte, after LogCursor) (LogEntry, bool) {
	if after.Pos <= 0 || after.Pos > int64(len(cur)) || cur[after.Pos-1] != '\n' {
		return LogEntry{}, false
	}
	body := cur[:after.Pos-1]
	e, err := DecodeLogEntry(body[bytes.LastIndexByte(body, '\n')+1:])
	return e, err == nil && e.Line == after.Line
}

// withPos sets the Pos of the page's next cursor: the end of its line in
// <key>.log, whose entries es end at ends (relative to base), or 0 when
// the line is not there.
func withPos(page LogPage, es []LogEntry, ends []int, base int) LogPage {
	page.Next.Pos = 0
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Line == page.Next.Line {
			page.Next.Pos = int64(base + ends[i])
			break
		}
	}
	return page
}

func readIfExists(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// fileMetrics keeps a thread's points in <key>.jsonl.
type fileMetrics struct {
	dir      string
	readOnly bool
}

func (m *fileMetrics) path(id ID) string { return filepath.Join(m.dir, id.Key()+".jsonl") }

// OpenMetrics implements MetricStore.
func (m *fileMetrics) OpenMetrics(ctx context.Context, id ID) (MetricWriter, error) {
	if err := refuseReadOnly(m.readOnly, m.dir); err != nil {
		return nil, err
	}
	if err := ValidateID(float64(id)); err != nil {
		return nil, err
	}
	if err := makeDir(m.dir); err != nil {
		return nil, err
	}
	lk, err := takeWriterLock(m.path(id)+".lock", "the metrics of thread "+id.Key())
	if err != nil {
		return nil, err
	}
	f, data, err := openAppend(m.path(id))
	if err != nil {
		lk.Unlock()
		return nil, err
	}
	w := &fileMetricWriter{t: NewMetricTracker(decodePoints(data))}
	w.f, w.lock = f, lk
	return w, nil
}

// ReadMetrics implements MetricStore.
func (m *fileMetrics) ReadMetrics(ctx context.Context, id ID) ([]MetricPoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := readIfExists(m.path(id))
	if err != nil {
		return nil, err
	}
	return decodePoints(data), nil
}

// decodePoints decodes the complete lines of data, skipping those that do
// not decode.
func decodePoints(data []byte) []MetricPoint {
	var out []MetricPoint
	eachLine(data, func(line []byte, _ int) {
		if p, err := DecodeMetricPoint(line); err == nil {
			out = append(out, p)
		}
	})
	return out
}

type fileMetricWriter struct {
	appender // its Flush and Close implement MetricWriter's
	t        *MetricTracker
}

// Log implements MetricWriter.
func (w *fileMetricWriter) Log(name string, value float64, step *int64) (MetricPoint, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return MetricPoint{}, fmt.Errorf("write %s: the writer is closed", w.f.Name())
	}
	p, err := w.t.Point(name, value, step, time.Now())
	if err != nil {
		return MetricPoint{}, err
	}
	line, err := EncodeMetricPoint(p)
	if err != nil {
		return MetricPoint{}, err
	}
	return p, w.add(line)
}
