package natsstore

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonode/autonode/registry"
)

// KV operation header values (as nats.go's KV writes them).
const (
	kvOpHeader = "KV-Operation"
	kvOpDel    = "DEL"
	kvOpPurge  = "PURGE"
)

// mirror is this process's copy of the bucket, fed by an ordered
// consumer in stream order: every record with the stream sequence of its
// last message (also of a delete marker), and the highest sequence
// applied. Transactions read it under the read lock, so that what they
// see is the bucket as of one stream sequence.
type mirror struct {
	prefix string // "$KV.<bucket>."

	mu       sync.RWMutex
	threads  map[string]*registry.Record // by registry key, live only
	archive  map[string]*registry.Record
	seqs     map[string]uint64 // by KV key: the sequence of its last message
	maxID    float64           // the value of maxIDKey
	keyMaxID float64           // the highest id among thread and archive keys
	foreign  int               // keys that are not this store's

	seen atomic.Uint64 // the highest stream sequence applied

	sigMu sync.Mutex
	sig   chan struct{} // closed (and replaced) when seen advances

	feed feed // per-key waiters and the threads in a queue's hands (watch.go)
}

func newMirror(prefix string) *mirror {
	return &mirror{
		prefix:  prefix,
		threads: map[string]*registry.Record{},
		archive: map[string]*registry.Record{},
		seqs:    map[string]uint64{},
		sig:     make(chan struct{}),
		feed:    newFeed(),
	}
}

// apply applies one message of the stream.
func (m *mirror) apply(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	seq := md.Sequence.Stream
	key, ok := strings.CutPrefix(msg.Subject(), m.prefix)
	op := msg.Headers().Get(kvOpHeader)
	deleted := op == kvOpDel || op == kvOpPurge
	m.mu.Lock()
	if ok {
		m.seqs[key] = seq
		m.applyKey(key, msg.Data(), deleted)
	}
	if seq > m.seen.Load() {
		m.seen.Store(seq)
	}
	m.mu.Unlock()
	m.sigMu.Lock()
	close(m.sig)
	m.sig = make(chan struct{})
	m.sigMu.Unlock()
	if ok {
		m.feed.changed(key)
	}
}

// applyKey records the value (or removal) of one KV key; m.mu is held.
func (m *mirror) applyKey(key string, data []byte, deleted bool) {
	var table map[string]*registry.Record
	var token string
	archive := false
	switch {
	case strings.HasPrefix(key, threadPrefix):
		table, token = m.threads, key[len(threadPrefix):]
	case strings.HasPrefix(key, archivePrefix):
		table, token, archive = m.archive, key[len(archivePrefix):], true
	case key == maxIDKey:
		if f, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64); err == nil && !deleted {
			m.maxID = f
		}
		return
	case key == checkKey:
		return
	default:
		m.foreign++
		return
	}
	rkey, err := DecodeKey(token)
	if err != nil {
		m.foreign++
		return
	}
	if deleted || len(data) == 0 {
		delete(table, rkey)
		if !archive {
			m.feed.track(rkey, nil)
		}
		return
	}
	rec := registry.NewRecord(rkey, data, archive)
	table[rkey] = rec
	if !archive {
		m.feed.track(rkey, rec)
	}
	if id, err := registry.ParseID(rkey); err == nil && float64(id) > m.keyMaxID {
		m.keyMaxID = float64(id)
	}
}

// wait returns once the mirror has applied stream sequence seq.
func (m *mirror) wait(ctx context.Context, seq uint64) error {
	for {
		m.sigMu.Lock()
		ch := m.sig
		m.sigMu.Unlock()
		if m.seen.Load() >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: this process's copy of the registry reached stream sequence %d, not %d: %v", ErrUnavailable, m.seen.Load(), seq, ctx.Err())
		}
	}
}

// nextID is the smallest integral id above every id in use; m.mu is held.
func (m *mirror) nextID() registry.ID {
	return registry.ID(math.Floor(math.Max(m.maxID, m.keyMaxID)) + 1)
}

// records is what one transaction reads: the mirror (read-locked for the
// transaction's whole run) and the keys it read, with the sequence each
// had, so that the commit can check that none of them changed since.
type records struct {
	m *mirror
	// reads maps each KV key read to the sequence of its last message
	// (0: the key never had one).
	reads map[string]uint64
	// all is set when the transaction ranged over the registry or
	// counted it: then anything committed since it read counts.
	all bool
	// bad is the first key that could not be encoded.
	bad error
}

func (r *records) read(kv string) {
	if r.reads == nil {
		r.reads = map[string]uint64{}
	}
	r.reads[kv] = r.m.seqs[kv]
}

func (r *records) lookup(key string, archive bool) (*registry.Record, bool) {
	kv, err := threadKV(key)
	table := r.m.threads
	if archive {
		kv, err = archiveKV(key)
		table = r.m.archive
	}
	if err != nil {
		if r.bad == nil {
			r.bad = err
		}
		return nil, false
	}
	r.read(kv)
	rec, ok := table[key]
	return rec, ok
}

func (r *records) Thread(key string) (*registry.Record, bool)   { return r.lookup(key, false) }
func (r *records) Archived(key string) (*registry.Record, bool) { return r.lookup(key, true) }

func (r *records) RangeThreads(fn func(*registry.Record) bool) {
	r.all = true
	for _, rec := range r.m.threads {
		if !fn(rec) {
			return
		}
	}
}

func (r *records) RangeArchived(fn func(*registry.Record) bool) {
	r.all = true
	for _, rec := range r.m.archive {
		if !fn(rec) {
			return
		}
	}
}

func (r *records) NextID() registry.ID {
	r.read(maxIDKey)
	if r.m.keyMaxID > r.m.maxID {
		r.all = true // ids written by something else than this store
	}
	return r.m.nextID()
}

func (r *records) CountThreads() int {
	r.all = true
	return len(r.m.threads)
}
