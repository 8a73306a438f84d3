package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// What threads produce, kept beside the records: whole results (NumPy
// .npy files, content-addressed), a bounded log per thread, and metric
// time series per thread. A Store that keeps them implements Outputs;
// OutputsOf finds it.
//
// Layout of the JSON-file store, beside thread_registry.json (the
// registry's name without ".json", then the kind):
//
//	thread_registry.results/<sha256>.npy   a stored array, named by the SHA-256 of its bytes
//	thread_registry.logs/<key>.log         a thread's log, JSON lines (LogEntry), newest
//	thread_registry.logs/<key>.log.1       the lines before those (the log rotates)
//	thread_registry.metrics/<key>.jsonl    a thread's metric points, JSON lines (MetricPoint)
//
// Directories are created with mode 0700 and files with 0600, as the
// registry's own. The NATS store keeps the same things in JetStream (see
// package natsstore).
//
// Outputs of a deleted thread stay where they are: the archive entry
// keeps the result references, and a restored thread finds its log and
// metrics again. GCResults removes stored results that no record
// references.

// Sentinel errors of the outputs. Use errors.Is.
var (
	// ErrNoOutputs: the store keeps no results, logs or metrics.
	ErrNoOutputs = errors.New("this registry backend keeps no results, logs or metrics")

	// ErrResultNotFound: no stored result has the digest.
	ErrResultNotFound = errors.New("stored result not found")

	// ErrResultCorrupt: a stored result's bytes do not hash to its
	// digest, or are not a .npy file.
	ErrResultCorrupt = errors.New("stored result is damaged")

	// ErrNoResult: the thread has no result, or none stored as a file.
	ErrNoResult = errors.New("no result")

	// ErrMetricLimit: a thread has recorded as many metric points as it
	// may (MaxMetricPoints), or as many distinct metrics
	// (MaxMetricNames).
	ErrMetricLimit = errors.New("too many metric points")

	// ErrBusy: another writer (in this process or another) has the
	// thread's log or metrics open.
	ErrBusy = errors.New("being written by another writer")
)

// Outputs is implemented by stores that keep what threads produce beside
// their records. Each part is safe for concurrent use.
type Outputs interface {
	Results() ResultStore
	Logs() LogStore
	Metrics() MetricStore
}

// OutputsOf returns the outputs of s, or ErrNoOutputs when s keeps none.
func OutputsOf(s Store) (Outputs, error) {
	if o, ok := s.(Outputs); ok {
		return o, nil
	}
	return nil, fmt.Errorf("%w (%T)", ErrNoOutputs, s)
}

// ResultStore keeps arrays in NumPy's .npy format, named by the SHA-256
// of their bytes: storing the same bytes twice keeps one copy.
//
// A stored array must be referenced by a committed record (see
// Thread.SetResultArrays) within GCGrace of PutArray, or GCResults may
// remove it: PutArray stamps the array (also one that was already
// stored) with the time, and GCResults removes only arrays that no record
// references and that were stamped more than the grace ago.
type ResultStore interface {
	// PutArray stores the .npy bytes read from npy and returns their
	// reference: digest, dtype and shape (read from the .npy header) and
	// size. Bytes that are not a .npy file of a numeric dtype are
	// refused (ErrInvalid).
	PutArray(ctx context.Context, npy io.Reader) (ArrayRef, error)
	// OpenArray returns the .npy bytes stored under the digest (hex
	// SHA-256). Reading them to the end fails with ErrResultCorrupt when
	// they do not hash to the digest; a digest that is not stored is
	// ErrResultNotFound.
	OpenArray(ctx context.Context, digest string) (io.ReadCloser, error)
	// ListArrays returns every stored array.
	ListArrays(ctx context.Context) ([]StoredArray, error)
	// RemoveArray removes the array unless it was stamped (stored, or
	// stored again) after notAfter, and reports whether it did; a put
	// that races with it either keeps the array or stores it again.
	RemoveArray(ctx context.Context, digest string, notAfter time.Time) (bool, error)
}

// StoredArray is one array of a ResultStore.
type StoredArray struct {
	Digest string
	Bytes  int64
	// Stamped is when it was last stored.
	Stamped time.Time
}

// LogStore keeps a log per thread: LogEntry lines, at most about
// LogOptions.MaxBytes of them; when a log grows past it, its oldest
// lines are dropped, and a reader learns how many (LogPage.Dropped). One
// process writes a thread's log at a time (the one running the thread);
// any process may read it, also while it is written.
type LogStore interface {
	// OpenLog opens the thread's log for appending after what it holds.
	OpenLog(ctx context.Context, id ID, opts LogOptions) (LogWriter, error)
	// ReadLog returns at most limit entries (0: DefaultLogPage) after
	// the cursor (the zero cursor: from the first line kept).
	ReadLog(ctx context.Context, id ID, after LogCursor, limit int) (LogPage, error)
}

// LogWriter appends to one thread's log. Writes are buffered; Flush makes
// them visible to readers (a writer also flushes on its own at least
// every LogFlushInterval while it holds lines), Close flushes and
// releases the writer. A LogWriter is safe for concurrent use.
type LogWriter interface {
	// Write appends e: its Stream, Text, Attempt and Time (zero: now);
	// Line and Offset are the writer's. Text longer than MaxLogLine is
	// cut, with a note of how much was cut.
	Write(e LogEntry) error
	Flush() error
	Close() error
}

// MetricStore keeps time series per thread: (name, value, step, time)
// points. One process writes a thread's metrics at a time; any process
// may read them.
type MetricStore interface {
	// OpenMetrics opens the thread's metrics for recording more points.
	OpenMetrics(ctx context.Context, id ID) (MetricWriter, error)
	// ReadMetrics returns every point the thread recorded, in the order
	// they were recorded.
	ReadMetrics(ctx context.Context, id ID) ([]MetricPoint, error)
}

// MetricWriter records the points of one thread. It is safe for
// concurrent use.
type MetricWriter interface {
	// Log records value for the metric name at step, or, with step nil,
	// at the step after the metric's last (0 for its first point). It
	// refuses a name or value that is not allowed (ErrInvalid) and a
	// point past MaxMetricPoints (ErrMetricLimit), and returns the
	// point recorded.
	Log(name string, value float64, step *int64) (MetricPoint, error)
	Flush() error
	Close() error
}
