package webui

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
)

// snapshot is one consistent read of the store: every thread in id order,
// with the lineage indexes the pages need. A snapshot is never modified
// once published.
type snapshot struct {
	version  uint64
	loadedAt time.Time
	threads  []*registry.Thread
	byID     map[registry.ID]*registry.Thread
	children map[registry.ID][]registry.ID
	// dependents lists, for each thread, the threads that run after it
	// (whose After names it), in id order.
	dependents map[registry.ID][]registry.ID
	// stale holds the threads that read as crashed because the process
	// that owned them is gone (see internal/owner), with what their
	// records say.
	stale map[registry.ID]staleRecord
	// ghosts are parents and upstream threads (After) that are no longer
	// in the registry: archived threads (with their name) or ids found in
	// neither file.
	ghosts map[registry.ID]ghost

	famOnce sync.Once
	fam     *families // see families

	// owners are the processes that the records still pending, waiting
	// or running name: when one of them is gone the snapshot is stale
	// (those threads read as crashed; see internal/owner).
	owners []string
}

// staleRecord is what the record of a thread whose owner is gone says,
// beside the crashed status that readers show.
type staleRecord struct {
	note     string // "owner pid N gone"
	recorded string // the status the record holds: running, pending, waiting
	// noError: the record has no error; the one the thread shows says
	// only that the owner is gone.
	noError bool
}

// ghost is a lineage parent that is not in the registry.
type ghost struct {
	name      string
	deletedAt string // empty when the id is not in the archive either
}

// change describes what differs between two snapshots.
type change struct {
	version uint64
	changed []string // keys of threads added or modified
	removed []string // keys of threads gone
	// structure reports that threads were added or removed or that a
	// parent link changed: the lineage graph must be laid out again.
	structure bool
	// all reports that any thread may have changed (a subscriber that
	// fell behind missed changes).
	all bool
}

// loadSnapshot reads every thread in one read transaction.
func loadSnapshot(store registry.Store) (*snapshot, error) {
	s := &snapshot{loadedAt: time.Now()}
	err := store.View(func(tx *registry.Tx) error {
		threads, err := tx.List(registry.Filter{})
		if err != nil {
			return err
		}
		alive := &owner.Checker{}
		seen := map[string]bool{}
		s.stale = map[registry.ID]staleRecord{}
		for _, t := range threads {
			recorded, noError := t.Status, t.Error == ""
			if note := alive.Apply(t); note != "" { // a thread whose process is gone reads as crashed
				s.stale[t.ID] = staleRecord{note: note, recorded: recorded, noError: noError}
			}
			if owner.MayBeStale(t.Status) && t.Status != registry.StatusCrashed && t.Owner != "" && !seen[t.Owner] {
				seen[t.Owner] = true
				s.owners = append(s.owners, t.Owner)
			}
		}
		s.threads = threads
		s.index()
		for _, t := range threads {
			for _, p := range append(t.Parents(), t.After...) {
				if _, ok := s.byID[p]; ok {
					continue
				}
				if _, ok := s.ghosts[p]; ok {
					continue
				}
				g := ghost{}
				if a, err := tx.Archived(p); err == nil {
					g = ghost{name: a.Thread.Name, deletedAt: a.DeletedAt}
				}
				s.ghosts[p] = g
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the registry: %w", err)
	}
	return s, nil
}

func (s *snapshot) index() {
	s.byID = make(map[registry.ID]*registry.Thread, len(s.threads))
	s.children = map[registry.ID][]registry.ID{}
	s.dependents = map[registry.ID][]registry.ID{}
	s.ghosts = map[registry.ID]ghost{}
	for _, t := range s.threads {
		s.byID[t.ID] = t
	}
	for _, t := range s.threads { // id order: children lists come out sorted
		for _, p := range t.Parents() {
			s.children[p] = append(s.children[p], t.ID)
		}
		for _, u := range t.After {
			if d := s.dependents[u]; len(d) == 0 || d[len(d)-1] != t.ID {
				s.dependents[u] = append(d, t.ID)
			}
		}
	}
}

// diff returns what changed from old to s (old may be nil).
func (s *snapshot) diff(old *snapshot) change {
	c := change{version: s.version}
	if old == nil {
		c.structure = true
		for _, t := range s.threads {
			c.changed = append(c.changed, t.Key())
		}
		return c
	}
	for _, t := range s.threads {
		o, ok := old.byID[t.ID]
		switch {
		case !ok:
			c.changed = append(c.changed, t.Key())
			c.structure = true
		case !reflect.DeepEqual(o, t):
			c.changed = append(c.changed, t.Key())
			if !slices.Equal(o.Parents(), t.Parents()) {
				c.structure = true
			}
		}
	}
	for _, o := range old.threads {
		if _, ok := s.byID[o.ID]; !ok {
			c.removed = append(c.removed, o.Key())
			c.structure = true
		}
	}
	return c
}

// empty reports whether the change changes nothing.
func (c change) empty() bool { return len(c.changed) == 0 && len(c.removed) == 0 }

// watcher keeps the latest snapshot of a store and tells subscribers when
// it changes. For a *registry.FileStore it looks at the files' sizes and
// modification times first and reads the registry only when they moved;
// other stores are read on every poll.
type watcher struct {
	store registry.Store
	poll  time.Duration
	stamp func() string // nil: no cheap change check

	mu     sync.Mutex
	cur    *snapshot
	err    error // the last load error, cleared by a good load
	subs   map[chan change]struct{}
	closed bool
}

// minLoadGap bounds how often a busy registry is read again: at least
// loadGapFactor times the last read's duration apart, so that the view
// holds the registry's lock for at most a small share of the time.
const loadGapFactor = 4

func newWatcher(store registry.Store, poll time.Duration) (*watcher, error) {
	w := &watcher{store: store, poll: poll, subs: map[chan change]struct{}{}}
	if fs, ok := store.(*registry.FileStore); ok {
		paths := []string{fs.Path(), fs.Path() + ".journal", fs.ArchivePath()}
		w.stamp = func() string { return fileStamp(paths) }
	}
	s, err := loadSnapshot(store)
	if err != nil {
		return nil, err
	}
	s.version = 1
	w.cur = s
	return w, nil
}

// fileStamp describes the files' identity, size and modification time.
func fileStamp(paths []string) string {
	var b []byte
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			b = append(b, '-', '|')
			continue
		}
		b = fmt.Appendf(b, "%d:%d:%v|", fi.Size(), fi.ModTime().UnixNano(), fi.Sys())
	}
	return string(b)
}

// run polls the store until ctx ends.
func (w *watcher) run(ctx context.Context) {
	lastStamp := ""
	if w.stamp != nil {
		lastStamp = w.stamp()
	}
	var lastLoad time.Duration
	timer := time.NewTimer(w.poll)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		wait := w.poll
		if w.stamp != nil {
			st := w.stamp()
			if st == lastStamp && !w.ownerGone() {
				timer.Reset(wait)
				continue
			}
			lastStamp = st
		}
		start := time.Now()
		w.reload()
		lastLoad = time.Since(start)
		if g := loadGapFactor * lastLoad; g > wait {
			wait = g
		}
		timer.Reset(wait)
	}
}

// ownerGone reports whether a process that the current snapshot's
// unfinished threads name has died: nothing is written then, but those
// threads now read as crashed.
func (w *watcher) ownerGone() bool {
	cur, _ := w.current()
	for _, o := range cur.owners {
		if !owner.Alive(o) {
			return true
		}
	}
	return false
}

// reload reads the store and publishes the new snapshot when it differs.
func (w *watcher) reload() {
	s, err := loadSnapshot(w.store)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.err = err
		return
	}
	w.err = nil
	s.version = w.cur.version + 1
	c := s.diff(w.cur)
	if c.empty() {
		return
	}
	w.cur = s
	for ch := range w.subs {
		select {
		case ch <- c:
		default:
			// A slow subscriber misses a change; it is told that
			// everything may have changed (see subscribe).
			select {
			case <-ch:
			default:
			}
			ch <- change{version: c.version, structure: true, all: true}
		}
	}
}

// current returns the latest snapshot and the last load error, if the
// latest read failed (the snapshot is then older than the store).
func (w *watcher) current() (*snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.err
}

// subscribe returns a channel of changes; cancel removes it.
func (w *watcher) subscribe() (<-chan change, func()) {
	ch := make(chan change, 1)
	w.mu.Lock()
	if !w.closed {
		w.subs[ch] = struct{}{}
	} else {
		close(ch)
	}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		if _, ok := w.subs[ch]; ok {
			delete(w.subs, ch)
			close(ch)
		}
		w.mu.Unlock()
	}
}

// close ends every subscription.
func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for ch := range w.subs {
		delete(w.subs, ch)
		close(ch)
	}
}
