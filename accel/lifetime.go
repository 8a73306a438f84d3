package accel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"weak"
)

// storage is one device buffer and its budget charge, shared by an array and
// its reshaped views.
type storage struct {
	buf     Buffer
	bytes   int64
	life    *lifetime
	freed   atomic.Bool
	cleanup runtime.Cleanup
}

// lifetime is the span of one Exec: it knows the bytes its live arrays hold,
// so Close can return them in one step, and the device buffers it made, so
// Close can free them. Host arrays are not listed one by one, which keeps
// allocation cheap: Close marks them freed through the shared closed flag.
type lifetime struct {
	budget *Budget
	closed atomic.Bool

	mu        sync.Mutex
	liveBytes int64
	device    []weak.Pointer[storage] // non-host storage, for Close
	pruneAt   int
}

// adopt charges nothing (the caller reserved the bytes) but takes buf into
// the lifetime. It returns nil, releasing the reservation, when the
// lifetime has closed.
func (l *lifetime) adopt(buf Buffer, bytes int64) *storage {
	st := &storage{buf: buf, bytes: bytes, life: l}
	_, host := buf.(*hostBuffer)
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		l.budget.Release(bytes)
		return nil
	}
	l.liveBytes += bytes
	if !host {
		l.trackLocked(st)
	}
	l.mu.Unlock()
	rel := release{life: l, bytes: bytes}
	if !host {
		rel.buf = buf
	}
	st.cleanup = runtime.AddCleanup(st, func(r release) { r.run() }, rel)
	return st
}

// trackLocked lists device storage, dropping entries for storage that is
// gone so the list stays proportional to live device arrays.
func (l *lifetime) trackLocked(st *storage) {
	l.device = append(l.device, weak.Make(st))
	if len(l.device) < l.pruneAt {
		return
	}
	kept := l.device[:0]
	for _, w := range l.device {
		if s := w.Value(); s != nil && !s.freed.Load() {
			kept = append(kept, w)
		}
	}
	clear(l.device[len(kept):])
	l.device = kept
	l.pruneAt = max(64, 2*len(kept))
}

// give returns bytes of one storage to the budget, unless Close already
// returned everything.
func (l *lifetime) give(bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return
	}
	l.liveBytes -= bytes
	l.budget.Release(bytes)
}

func (l *lifetime) close() {
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return
	}
	l.closed.Store(true)
	l.budget.Release(l.liveBytes)
	l.liveBytes = 0
	device := l.device
	l.device = nil
	l.mu.Unlock()
	for _, w := range device {
		if st := w.Value(); st != nil {
			st.free()
		}
	}
}

// release is what a collected storage gives back: budget bytes and, for a
// device buffer, its memory. It must not point at the storage itself.
type release struct {
	life  *lifetime
	bytes int64
	buf   Buffer // nil for host buffers, whose memory the GC reclaims
}

func (r release) run() {
	r.life.give(r.bytes)
	if r.buf != nil {
		r.buf.Free()
	}
}

func (s *storage) isFreed() bool { return s.freed.Load() || s.life.closed.Load() }

// free releases the storage now; later calls do nothing.
func (s *storage) free() {
	if !s.freed.CompareAndSwap(false, true) {
		return
	}
	s.cleanup.Stop()
	s.life.give(s.bytes)
	s.buf.Free()
}
