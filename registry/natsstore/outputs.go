package natsstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonode/autonode/registry"
)

// The outputs of threads (registry.Outputs) beside the bucket of the
// registry, created on first write with the bucket's replicas:
//
//	object store AUTONODE_RESULTS_<bucket>   stored arrays, each object named by its hex SHA-256
//	stream AUTONODE_LOGS_<bucket>            logs: subject autonode.<bucket>.logs.<EncodeKey(key)>, one message per LogEntry
//	stream AUTONODE_METRICS_<bucket>         metrics: subject autonode.<bucket>.metrics.<EncodeKey(key)>, one message per MetricPoint
//
// A log is bounded by its writer: once the text it keeps passes the
// limit, the writer purges the subject's oldest messages, keeping at
// least half the limit (of the lines whose place it knows: its own and
// the oldest one kept). Unlike the file store, NATS does not stop a
// second writer of a thread's log or metrics: the engine writes them
// from the process that holds the thread's attempt.
//
// Reads of results go to the object store stream's leader: the store
// turns off the stream's direct gets, which any replica answers, maybe
// before it has applied the latest put or removal.
//
// Stamps and removal of results. An object's time is its meta message's.
// PutArray of an array already stored sends its meta message again,
// expecting the subject's last sequence it read (a stamp); RemoveArray
// sends a deletion expecting the last sequence it read, and purges the
// chunks only when that was accepted. A stamp and a removal that race
// cannot both be accepted: the loser's put stores the array again, the
// loser's removal keeps it.

var _ registry.Outputs = (*Store)(nil)

// outputs caches the handles of the outputs' streams.
type outputs struct {
	mu      sync.Mutex
	obs     jetstream.ObjectStore
	obsSt   jetstream.Stream // the object store's stream
	logs    jetstream.Stream
	metrics jetstream.Stream
}

func (s *Store) resultsBucket() string { return "AUTONODE_RESULTS_" + s.opts.Bucket }
func (s *Store) logsStream() string    { return "AUTONODE_LOGS_" + s.opts.Bucket }
func (s *Store) metricsStream() string { return "AUTONODE_METRICS_" + s.opts.Bucket }

func (s *Store) outputSubject(kind string, id registry.ID) (string, error) {
	k, err := EncodeKey(id.Key())
	if err != nil {
		return "", err
	}
	return "autonode." + s.opts.Bucket + "." + kind + "." + k, nil
}

// replicas is the registry bucket's: the outputs are as safe as the
// records that point at them.
func (s *Store) replicas() int {
	if r := s.stream.CachedInfo().Config.Replicas; r > 0 {
		return r
	}
	return 1
}

func (s *Store) refuseWrite() error {
	if s.closed.Load() {
		return registry.ErrClosed
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("%s: %w: it was opened read-only", s.location, registry.ErrReadOnly)
	}
	return nil
}

// objectStore returns the results' object store, created when create is
// set; nil when it does not exist (and create is not set).
func (s *Store) objectStore(ctx context.Context, create bool) (jetstream.ObjectStore, error) {
	s.outs.mu.Lock()
	defer s.outs.mu.Unlock()
	if s.outs.obs != nil {
		return s.outs.obs, nil
	}
	name := s.resultsBucket()
	obs, err := retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return s.js.ObjectStore(ctx, name)
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if !create {
			return nil, nil
		}
		obs, err = retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.ObjectStore, error) {
			o, err := justCreated(s.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
				Bucket:      name,
				Description: "AutoNode stored results of registry " + s.opts.Bucket + ": .npy files named by their SHA-256",
				Storage:     jetstream.FileStorage,
				Replicas:    s.replicas(),
			}))
			if errors.Is(err, jetstream.ErrBucketExists) {
				return justCreated(s.js.ObjectStore(ctx, name))
			}
			return o, err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("results of %s: %w", s.location, unavailableIf(err))
	}
	// An object store's stream answers direct gets from any replica,
	// which may not have applied the latest put or removal yet: turn
	// them off, so that every read of an object's meta goes to the
	// leader (and a result read right after its put is found).
	// Another process may be doing the same at this moment: look again
	// before each try.
	st, err := retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.Stream, error) {
		st, err := justCreated(s.js.Stream(ctx, "OBJ_"+name))
		if err != nil || !st.CachedInfo().Config.AllowDirect || s.opts.ReadOnly {
			return st, err
		}
		cfg := st.CachedInfo().Config
		cfg.AllowDirect = false
		if _, err := justCreated(s.js.UpdateStream(ctx, cfg)); err != nil {
			return nil, err
		}
		return justCreated(s.js.Stream(ctx, "OBJ_"+name))
	})
	if err == nil {
		obs, err = retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.ObjectStore, error) {
			return justCreated(s.js.ObjectStore(ctx, name)) // with the stream's current config
		})
	}
	if err != nil {
		return nil, fmt.Errorf("results of %s: %w", s.location, unavailableIf(err))
	}
	s.outs.obs, s.outs.obsSt = obs, st
	return obs, nil
}

// outputStream returns the logs' or the metrics' stream (which names
// one), created when create is set; nil when it does not exist.
func (s *Store) outputStream(ctx context.Context, which string, create bool) (jetstream.Stream, error) {
	s.outs.mu.Lock()
	defer s.outs.mu.Unlock()
	slot, name, kind := &s.outs.logs, s.logsStream(), "logs"
	if which == "metrics" {
		slot, name, kind = &s.outs.metrics, s.metricsStream(), "metrics"
	}
	if *slot != nil {
		return *slot, nil
	}
	st, err := retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.Stream, error) {
		return s.js.Stream(ctx, name)
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !create {
			return nil, nil
		}
		st, err = retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.Stream, error) {
			st, err := justCreated(s.js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        name,
				Description: "AutoNode thread " + kind + " of registry " + s.opts.Bucket + ": a subject per thread",
				Subjects:    []string{"autonode." + s.opts.Bucket + "." + kind + ".>"},
				Storage:     jetstream.FileStorage,
				Replicas:    s.replicas(),
				Discard:     jetstream.DiscardOld,
			}))
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return justCreated(s.js.Stream(ctx, name))
			}
			return st, err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", kind, s.location, unavailableIf(err))
	}
	*slot = st
	return st, nil
}

// Results implements registry.Outputs.
func (s *Store) Results() registry.ResultStore { return natsResults{s} }

// Logs implements registry.Outputs.
func (s *Store) Logs() registry.LogStore { return natsLogs{s} }

// Metrics implements registry.Outputs.
func (s *Store) Metrics() registry.MetricStore { return natsMetrics{s} }

type natsResults struct{ s *Store }

func (r natsResults) metaSubject(digest string) string {
	return "$O." + r.s.resultsBucket() + ".M." + base64.URLEncoding.EncodeToString([]byte(digest))
}

// spool holds what is read until it is stored: in memory up to
// spoolMemory, then in a temporary file.
type spool struct {
	mem  bytes.Buffer
	file *os.File
}

const spoolMemory = 32 << 20

func (sp *spool) Write(p []byte) (int, error) {
	if sp.file == nil && sp.mem.Len()+len(p) > spoolMemory {
		f, err := os.CreateTemp("", "autonode-result-*.npy")
		if err != nil {
			return 0, fmt.Errorf("spool a result: %w", err)
		}
		os.Remove(f.Name()) // the open file stays; nothing is left behind
		if _, err := f.Write(sp.mem.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("spool a result: %w", err)
		}
		sp.file = f
		sp.mem = bytes.Buffer{}
	}
	if sp.file != nil {
		return sp.file.Write(p)
	}
	return sp.mem.Write(p)
}

func (sp *spool) reader() (io.Reader, error) {
	if sp.file == nil {
		return bytes.NewReader(sp.mem.Bytes()), nil
	}
	if _, err := sp.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return sp.file, nil
}

func (sp *spool) close() {
	if sp.file != nil {
		sp.file.Close()
	}
}

// lastMeta returns the object's meta message, nil when there is none.
func (r natsResults) lastMeta(ctx context.Context, digest string) (*jetstream.RawStreamMsg, *jetstream.ObjectInfo, error) {
	r.s.outs.mu.Lock()
	st := r.s.outs.obsSt
	r.s.outs.mu.Unlock()
	m, err := st.GetLastMsgForSubject(ctx, r.metaSubject(digest))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var info jetstream.ObjectInfo
	if err := json.Unmarshal(m.Data, &info); err != nil {
		return nil, nil, fmt.Errorf("%w: meta of stored result %s: %v", registry.ErrResultCorrupt, digest, err)
	}
	return m, &info, nil
}

// publishMeta sends an object's meta message, accepted only while the
// subject's last sequence is expect.
func (r natsResults) publishMeta(ctx context.Context, digest string, data []byte, expect uint64) (bool, error) {
	m := nats.NewMsg(r.metaSubject(digest))
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	m.Data = data
	_, err := r.s.js.PublishMsg(ctx, m)
	var ae *jetstream.APIError
	if errors.As(err, &ae) && (ae.ErrorCode == codeWrongLastSeq || ae.ErrorCode == codeWrongLastSeqConst) {
		return false, nil
	}
	return err == nil, err
}

// PutArray implements registry.ResultStore.
func (r natsResults) PutArray(ctx context.Context, npy io.Reader) (registry.ArrayRef, error) {
	if err := r.s.refuseWrite(); err != nil {
		return registry.ArrayRef{}, err
	}
	var sp spool
	defer sp.close()
	ref, err := registry.CopyNPY(&sp, npy)
	if err != nil {
		return registry.ArrayRef{}, fmt.Errorf("store a result: %w", err)
	}
	obs, err := r.s.objectStore(ctx, true)
	if err != nil {
		return registry.ArrayRef{}, err
	}
	type meta struct {
		m    *jetstream.RawStreamMsg
		info *jetstream.ObjectInfo
	}
	for try := 0; ; try++ {
		got, err := retryTransient(ctx, r.s.opts.Timeout, func(ctx context.Context) (meta, error) {
			m, info, err := r.lastMeta(ctx, ref.SHA256)
			return meta{m, info}, err
		})
		if err != nil {
			return registry.ArrayRef{}, fmt.Errorf("store result %s in %s: %w", ref.SHA256, r.s.location, unavailableIf(err))
		}
		if got.info != nil && !got.info.Deleted && got.info.Size == uint64(ref.Bytes) {
			// Stored already: stamp it, unless a removal got in first.
			ok, err := retryTransient(ctx, r.s.opts.Timeout, func(ctx context.Context) (bool, error) {
				return r.publishMeta(ctx, ref.SHA256, got.m.Data, got.m.Sequence)
			})
			if err != nil {
				return registry.ArrayRef{}, fmt.Errorf("stamp result %s in %s: %w", ref.SHA256, r.s.location, unavailableIf(err))
			}
			if ok {
				return ref, nil
			}
			if try < 20 {
				continue
			}
		}
		_, err = retryTransient(ctx, r.s.opts.Timeout, func(ctx context.Context) (*jetstream.ObjectInfo, error) {
			rd, err := sp.reader()
			if err != nil {
				return nil, err
			}
			return obs.Put(ctx, jetstream.ObjectMeta{Name: ref.SHA256, Description: ref.String()}, rd)
		})
		if err != nil {
			return registry.ArrayRef{}, fmt.Errorf("store result %s in %s: %w", ref.SHA256, r.s.location, unavailableIf(err))
		}
		return ref, nil
	}
}

// OpenArray implements registry.ResultStore. ctx bounds the reading too.
func (r natsResults) OpenArray(ctx context.Context, digest string) (io.ReadCloser, error) {
	if err := registry.ValidateDigest(digest); err != nil {
		return nil, err
	}
	obs, err := r.s.objectStore(ctx, false)
	if err != nil {
		return nil, err
	}
	notFound := fmt.Errorf("result %s: %w in %s", digest, registry.ErrResultNotFound, r.s.location)
	if obs == nil {
		return nil, notFound
	}
	res, err := retryTransient(ctx, r.s.opts.Timeout, func(rctx context.Context) (jetstream.ObjectResult, error) {
		// The reading goes on under ctx, not under one try's deadline.
		if _, err := obs.GetInfo(rctx, digest); err != nil {
			return nil, err
		}
		return obs.Get(ctx, digest)
	})
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("result %s in %s: %w", digest, r.s.location, unavailableIf(err))
	}
	return registry.NewVerifyingReader(res, digest, "result "+digest+" in "+r.s.location), nil
}

// ListArrays implements registry.ResultStore.
func (r natsResults) ListArrays(ctx context.Context) ([]registry.StoredArray, error) {
	obs, err := r.s.objectStore(ctx, false)
	if err != nil || obs == nil {
		return nil, err
	}
	infos, err := retryTransient(ctx, r.s.opts.Timeout, func(ctx context.Context) ([]*jetstream.ObjectInfo, error) {
		return obs.List(ctx)
	})
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the results of %s: %w", r.s.location, unavailableIf(err))
	}
	var out []registry.StoredArray
	for _, in := range infos {
		if registry.ValidateDigest(in.Name) != nil || in.Deleted {
			continue
		}
		out = append(out, registry.StoredArray{Digest: in.Name, Bytes: int64(in.Size), Stamped: in.ModTime})
	}
	return out, nil
}

// RemoveArray implements registry.ResultStore.
func (r natsResults) RemoveArray(ctx context.Context, digest string, notAfter time.Time) (bool, error) {
	if err := registry.ValidateDigest(digest); err != nil {
		return false, err
	}
	if err := r.s.refuseWrite(); err != nil {
		return false, err
	}
	obs, err := r.s.objectStore(ctx, false)
	if err != nil || obs == nil {
		return false, err
	}
	m, info, err := r.lastMeta(ctx, digest)
	if err != nil || info == nil || info.Deleted || m.Time.After(notAfter) {
		return false, unavailableIf(err)
	}
	nuid := info.NUID
	info.Deleted = true
	info.Size, info.Chunks, info.Digest = 0, 0, ""
	info.ModTime = time.Time{}
	data, err := json.Marshal(info)
	if err != nil {
		return false, err
	}
	ok, err := r.publishMeta(ctx, digest, data, m.Sequence)
	if err != nil || !ok {
		return false, err
	}
	r.s.outs.mu.Lock()
	st := r.s.outs.obsSt
	r.s.outs.mu.Unlock()
	if err := st.Purge(ctx, jetstream.WithPurgeSubject("$O."+r.s.resultsBucket()+".C."+nuid)); err != nil {
		return true, fmt.Errorf("result %s was removed but its chunks were not purged: %w", digest, err)
	}
	return true, nil
}

// subjectMsgs calls fn with the messages of subj from sequence from (0:
// the first) to the subject's last message, last, in order, until fn
// returns false.
func (s *Store) subjectMsgs(ctx context.Context, st jetstream.Stream, subj string, from uint64, last uint64, fn func(data []byte, seq uint64) bool) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return unavailableIf(err)
	}
	it, err := cons.Messages()
	if err != nil {
		return unavailableIf(err)
	}
	defer it.Stop()
	rctx, cancel := context.WithTimeout(ctx, s.opts.CommitTimeout)
	defer cancel()
	for {
		msg, err := it.Next(jetstream.NextContext(rctx))
		if err != nil {
			return unavailableIf(err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		seq := md.Sequence.Stream
		if !fn(msg.Data(), seq) || seq >= last {
			return nil
		}
	}
}

// lastMsg is the subject's last message, nil when it has none.
func (s *Store) lastMsg(ctx context.Context, st jetstream.Stream, subj string) (*jetstream.RawStreamMsg, error) {
	m, err := retryTransient(ctx, s.opts.Timeout, func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		return st.GetLastMsgForSubject(ctx, subj)
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, unavailableIf(err)
}

type natsLogs struct{ s *Store }

// OpenLog implements registry.LogStore.
func (l natsLogs) OpenLog(ctx context.Context, id registry.ID, opts registry.LogOptions) (registry.LogWriter, error) {
	if err := l.s.refuseWrite(); err != nil {
		return nil, err
	}
	if err := registry.ValidateID(float64(id)); err != nil {
		return nil, err
	}
	subj, err := l.s.outputSubject("logs", id)
	if err != nil {
		return nil, err
	}
	st, err := l.s.outputStream(ctx, "logs", true)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(l.s.nc)
	if err != nil {
		return nil, err
	}
	w := &natsLogWriter{s: l.s, js: js, st: st, subj: subj, limit: opts.Limit()}
	w.settleFn = w.settle
	m, err := l.s.lastMsg(ctx, st, subj)
	if err != nil {
		return nil, fmt.Errorf("the log of thread %s: %w", id, err)
	}
	if m != nil {
		last, err := registry.DecodeLogEntry(m.Data)
		if err != nil {
			return nil, err
		}
		w.prev = registry.LogCursor{Line: last.Line, Offset: last.End()}
		// The oldest line kept bounds what the log holds.
		if first, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subj)); err == nil {
			if e, err := registry.DecodeLogEntry(first.Data); err == nil {
				w.known = append(w.known, placed{seq: first.Sequence, off: e.Offset})
			}
		}
	}
	return w, nil
}

// placed is a message of the log whose place is known.
type placed struct {
	seq uint64
	off int64
}

// publishing is what a log and a metric writer share: a lock, the first
// publish error, whether it is closed, and settle (called with mu held),
// which waits for the acknowledgements of what was published and returns
// the first error. It implements Flush and Close for both.
type publishing struct {
	mu       sync.Mutex
	err      error
	closed   bool
	settleFn func() error
}

// Flush stores every entry written so far.
func (p *publishing) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil || p.closed {
		return p.err
	}
	return p.settleFn()
}

// Close flushes and closes the writer; a second Close does nothing.
func (p *publishing) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	err := p.err
	if err == nil {
		err = p.settleFn()
	}
	p.closed = true
	return err
}

type natsLogWriter struct {
	publishing
	s       *Store
	js      jetstream.JetStream
	st      jetstream.Stream
	subj    string
	limit   int64
	prev    registry.LogCursor
	known   []placed // oldest first
	pending []pendingMsg
}

type pendingMsg struct {
	fut jetstream.PubAckFuture
	off int64
}

// Write implements registry.LogWriter.
func (w *natsLogWriter) Write(e registry.LogEntry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("the log writer of %s is closed", w.subj)
	}
	if w.err != nil {
		return w.err
	}
	e, err := registry.PrepareLogEntry(e, w.prev)
	if err != nil {
		return err
	}
	line, err := registry.EncodeLogEntry(e)
	if err != nil {
		return err
	}
	fut, err := w.js.PublishMsgAsync(&nats.Msg{Subject: w.subj, Data: line[:len(line)-1]})
	if err != nil {
		w.err = fmt.Errorf("write the log %s: %w", w.subj, unavailableIf(err))
		return w.err
	}
	w.pending = append(w.pending, pendingMsg{fut: fut, off: e.Offset})
	w.prev = registry.LogCursor{Line: e.Line, Offset: e.End()}
	kept := w.prev.Offset
	if len(w.known) > 0 {
		kept -= w.known[0].off
	} else if len(w.pending) > 0 {
		kept -= w.pending[0].off
	}
	if kept > w.limit || len(w.pending) >= 1024 {
		if err := w.settle(); err != nil {
			return err
		}
	}
	if kept > w.limit {
		return w.trim()
	}
	return nil
}

// settle waits for the acknowledgements of the messages sent, learning
// their sequences.
func (w *natsLogWriter) settle() error {
	ctx, cancel := context.WithTimeout(context.Background(), w.s.opts.CommitTimeout)
	defer cancel()
	for _, p := range w.pending {
		select {
		case ack := <-p.fut.Ok():
			w.known = append(w.known, placed{seq: ack.Sequence, off: p.off})
		case err := <-p.fut.Err():
			w.err = fmt.Errorf("write the log %s: %w", w.subj, unavailableIf(err))
		case <-ctx.Done():
			w.err = fmt.Errorf("write the log %s: %w", w.subj, unavailable(ctx.Err()))
		}
		if w.err != nil {
			w.pending = nil
			return w.err
		}
	}
	w.pending = w.pending[:0]
	return nil
}

// trim purges the oldest lines, keeping at least half the limit.
func (w *natsLogWriter) trim() error {
	keepFrom := w.prev.Offset - w.limit/2
	i := 0
	for i < len(w.known)-1 && w.known[i].off < keepFrom {
		i++
	}
	if i == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.s.opts.Timeout)
	defer cancel()
	if err := w.st.Purge(ctx, jetstream.WithPurgeSubject(w.subj), jetstream.WithPurgeSequence(w.known[i].seq)); err != nil {
		w.err = fmt.Errorf("trim the log %s: %w", w.subj, unavailableIf(err))
		return w.err
	}
	w.known = append(w.known[:0], w.known[i:]...)
	return nil
}

// ReadLog implements registry.LogStore. A cursor's Pos is the stream
// sequence of its line.
func (l natsLogs) ReadLog(ctx context.Context, id registry.ID, after registry.LogCursor, limit int) (registry.LogPage, error) {
	subj, err := l.s.outputSubject("logs", id)
	if err != nil {
		return registry.LogPage{}, err
	}
	st, err := l.s.outputStream(ctx, "logs", false)
	if err != nil || st == nil {
		return registry.LogPage{Next: after}, err
	}
	m, err := l.s.lastMsg(ctx, st, subj)
	if err != nil || m == nil {
		return registry.LogPage{Next: after}, err
	}
	last, err := registry.DecodeLogEntry(m.Data)
	if err != nil {
		return registry.LogPage{}, err
	}
	if limit <= 0 {
		limit = registry.DefaultLogPage
	}
	var es []registry.LogEntry
	var seqs []uint64
	for try := 0; last.Line > after.Line; try++ {
		from := uint64(0)
		if after.Pos > 0 {
			from = uint64(after.Pos) + 1
		}
		es, seqs = nil, nil
		err = l.s.subjectMsgs(ctx, st, subj, from, m.Sequence, func(data []byte, seq uint64) bool {
			e, err := registry.DecodeLogEntry(data)
			if err == nil && e.Line > after.Line {
				es, seqs = append(es, e), append(seqs, seq)
			}
			return len(es) < limit
		})
		if err != nil {
			return registry.LogPage{}, fmt.Errorf("read the log of thread %s: %w", id, err)
		}
		missed, err := l.missed(ctx, st, subj, from, after, es, last)
		if err != nil {
			return registry.LogPage{}, fmt.Errorf("read the log of thread %s: %w", id, err)
		}
		if !missed {
			break
		}
		if try == 2 {
			return registry.LogPage{}, fmt.Errorf("read the log of thread %s: %w: three reads in a row missed lines the stream holds", id, ErrUnavailable)
		}
	}
	page := registry.PageOf(after, es, last, limit)
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Line == page.Next.Line {
			page.Next.Pos = int64(seqs[i])
			break
		}
	}
	if page.Next.Line == last.Line {
		page.Next.Pos = int64(m.Sequence)
	}
	return page, nil
}

// missed reports whether a read of the log after the cursor (es, from
// stream sequence from on) began later than the stream's first line
// after the cursor: a read that saw a gap where the stream holds the
// lines. A page must say lines were dropped only when the stream no
// longer has them (a trim), never because a consumer missed them.
func (l natsLogs) missed(ctx context.Context, st jetstream.Stream, subj string, from uint64, after registry.LogCursor, es []registry.LogEntry, last registry.LogEntry) (bool, error) {
	switch {
	case len(es) == 0 && last.Line <= after.Line, len(es) > 0 && es[0].Line == after.Line+1:
		return false, nil // no gap
	}
	m, err := retryTransient(ctx, l.s.opts.Timeout, func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		return st.GetMsg(ctx, max(from, 1), jetstream.WithGetMsgSubject(subj))
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailableIf(err)
	}
	first, err := registry.DecodeLogEntry(m.Data)
	if err != nil {
		return false, err
	}
	readFirst := last.Line + 1
	if len(es) > 0 {
		readFirst = es[0].Line
	}
	return first.Line > after.Line && first.Line < readFirst, nil
}

type natsMetrics struct{ s *Store }

// OpenMetrics implements registry.MetricStore.
func (m natsMetrics) OpenMetrics(ctx context.Context, id registry.ID) (registry.MetricWriter, error) {
	if err := m.s.refuseWrite(); err != nil {
		return nil, err
	}
	if err := registry.ValidateID(float64(id)); err != nil {
		return nil, err
	}
	subj, err := m.s.outputSubject("metrics", id)
	if err != nil {
		return nil, err
	}
	if _, err := m.s.outputStream(ctx, "metrics", true); err != nil {
		return nil, err
	}
	pts, err := m.ReadMetrics(ctx, id)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(m.s.nc)
	if err != nil {
		return nil, err
	}
	w := &natsMetricWriter{s: m.s, js: js, subj: subj, t: registry.NewMetricTracker(pts)}
	w.settleFn = w.settle
	return w, nil
}

// ReadMetrics implements registry.MetricStore.
func (m natsMetrics) ReadMetrics(ctx context.Context, id registry.ID) ([]registry.MetricPoint, error) {
	subj, err := m.s.outputSubject("metrics", id)
	if err != nil {
		return nil, err
	}
	st, err := m.s.outputStream(ctx, "metrics", false)
	if err != nil || st == nil {
		return nil, err
	}
	last, err := m.s.lastMsg(ctx, st, subj)
	if err != nil || last == nil {
		return nil, err
	}
	var pts []registry.MetricPoint
	err = m.s.subjectMsgs(ctx, st, subj, 0, last.Sequence, func(data []byte, _ uint64) bool {
		if p, err := registry.DecodeMetricPoint(data); err == nil {
			pts = append(pts, p)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read the metrics of thread %s: %w", id, err)
	}
	return pts, nil
}

type natsMetricWriter struct {
	publishing
	s       *Store
	js      jetstream.JetStream
	subj    string
	t       *registry.MetricTracker
	pending []jetstream.PubAckFuture
}

// Log implements registry.MetricWriter.
func (w *natsMetricWriter) Log(name string, value float64, step *int64) (registry.MetricPoint, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return registry.MetricPoint{}, fmt.Errorf("the metrics writer of %s is closed", w.subj)
	}
	if w.err != nil {
		return registry.MetricPoint{}, w.err
	}
	p, err := w.t.Point(name, value, step, time.Now())
	if err != nil {
		return registry.MetricPoint{}, err
	}
	line, err := registry.EncodeMetricPoint(p)
	if err != nil {
		return registry.MetricPoint{}, err
	}
	fut, err := w.js.PublishMsgAsync(&nats.Msg{Subject: w.subj, Data: line[:len(line)-1]})
	if err != nil {
		w.err = fmt.Errorf("record metrics on %s: %w", w.subj, unavailableIf(err))
		return registry.MetricPoint{}, w.err
	}
	w.pending = append(w.pending, fut)
	if len(w.pending) >= 1024 {
		return p, w.settle()
	}
	return p, nil
}

func (w *natsMetricWriter) settle() error {
	ctx, cancel := context.WithTimeout(context.Background(), w.s.opts.CommitTimeout)
	defer cancel()
	for _, f := range w.pending {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			w.err = fmt.Errorf("record metrics on %s: %w", w.subj, unavailableIf(err))
		case <-ctx.Done():
			w.err = fmt.Errorf("record metrics on %s: %w", w.subj, unavailable(ctx.Err()))
		}
		if w.err != nil {
			break
		}
	}
	w.pending = w.pending[:0]
	return w.err
}
