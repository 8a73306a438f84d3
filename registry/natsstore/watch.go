package natsstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/autonode/autonode/registry"
)

// feed is the mirror's change feed: waiters for the next change of a key,
// and the set of threads in a work queue's hands (a queue marker in their
// run state, not ended), which the sweeper visits instead of scanning the
// registry. The mirror calls it as it applies the stream.
type feed struct {
	mu      sync.Mutex
	waiters map[string][]chan struct{} // by KV key
	queued  map[string]struct{}        // registry keys
}

func newFeed() feed {
	return feed{waiters: map[string][]chan struct{}{}, queued: map[string]struct{}{}}
}

// changed wakes the waiters of KV key kv.
func (f *feed) changed(kv string) {
	f.mu.Lock()
	ws := f.waiters[kv]
	delete(f.waiters, kv)
	f.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

// next returns a channel closed at the next change of KV key kv.
func (f *feed) next(kv string) <-chan struct{} {
	ch := make(chan struct{})
	f.mu.Lock()
	f.waiters[kv] = append(f.waiters[kv], ch)
	f.mu.Unlock()
	return ch
}

// queueMarker is how a record that holds a queue marker starts it.
var queueMarker = []byte(`"` + QueueField + `":{`)

// track notes the new value of thread rkey (nil: removed).
func (f *feed) track(rkey string, rec *registry.Record) {
	in := rec != nil && bytes.Contains(rec.Raw, queueMarker) && !registry.Final(rec.Status())
	f.mu.Lock()
	if in {
		f.queued[rkey] = struct{}{}
	} else {
		delete(f.queued, rkey)
	}
	f.mu.Unlock()
}

// queuedKeys returns the keys of the threads in a queue's hands.
func (f *feed) queuedKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]string, 0, len(f.queued))
	for k := range f.queued {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ThreadChanged returns a channel that is closed when this process's copy
// of the registry next applies a change of thread id's record (a write,
// a delete). Take it before reading the record with Peek, so that no
// change falls between the two.
func (s *Store) ThreadChanged(id registry.ID) <-chan struct{} {
	kv, err := threadKV(id.Key())
	if err != nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return s.m.feed.next(kv)
}

// Peek returns thread id as this process's copy of the registry holds it
// now, without a round trip: every commit this process made, and those
// of other processes as they arrive (milliseconds later). Use View for a
// read that sees every acknowledged commit. ok is false when there is no
// such thread.
func (s *Store) Peek(id registry.ID) (t *registry.Thread, ok bool, err error) {
	s.m.mu.RLock()
	rec, ok := s.m.threads[id.Key()]
	s.m.mu.RUnlock()
	if !ok {
		return nil, false, nil
	}
	t = new(registry.Thread)
	if err := t.UnmarshalJSON(rec.Raw); err != nil {
		return nil, true, fmt.Errorf("thread %s: %w", id, err)
	}
	return t, true, nil
}

// WaitEnded returns thread id's record once it has ended (a final
// status), following this process's copy of the registry as it changes;
// ctx bounds the wait. A thread that does not exist (deleted meanwhile)
// is registry.ErrNotFound.
func (s *Store) WaitEnded(ctx context.Context, id registry.ID) (*registry.Thread, error) {
	for {
		ch := s.ThreadChanged(id)
		t, ok, err := s.Peek(id)
		switch {
		case err != nil:
			return nil, err
		case !ok:
			return nil, fmt.Errorf("thread %s: %w", id, registry.ErrNotFound)
		case registry.Final(t.Status):
			return t, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for thread %s: %w", id, context.Cause(ctx))
		}
	}
}
