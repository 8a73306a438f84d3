package accel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"
)

// How array storage is allocated, charged and given back.
//
// Every allocation is charged to its Exec's Budget before any memory is
// taken, and the bytes come back exactly: at Free, at Exec.Close, or once
// the collector finds the storage unreachable. Finding that out needs no
// finalizer or cleanup per array (they cost more than a small operation
// itself):
//
//   - tiny host arrays (at most tinyBytes) are carved from a slab and
//     accounted in batches: every storage of a batch points at the batch's
//     token, one weak pointer watches the token, and when the whole batch
//     is unreachable its remaining bytes return at once;
//   - every other array has one weak pointer of its own, a small cost next
//     to the work on a kilobyte or more of data;
//   - large host buffers (at least largeBytes) are recycled by size class:
//     when their storage is unreachable the buffer goes back to a pool
//     rather than to the collector, so a loop of large temporaries reuses
//     memory that is already mapped, without zeroing it again.
//
// Weak pointers are checked (a sweep) by the goroutines that allocate or
// close an Exec, whenever the collector has run since the last sweep;
// before a budget refusal the Budget forces a collection, and so does a
// large allocation that finds the pool empty while enough large buffers
// went out since the last sweep that some are likely garbage. Sweeps never
// run on a goroutine of their own: reading a weak pointer while the
// collector marks keeps its object alive for that cycle, so a background
// sweep would delay every reclamation.
const (
	tinyBytes  = 1 << 10  // the largest array accounted in batches
	slabBytes  = 16 << 10 // the slab tiny arrays are carved from (a small object: large ones cost a span each)
	batchBytes = 16 << 10 // the most bytes one batch accounts for
	largeBytes = 256 << 10
	// poolKeep bounds the idle bytes the pool keeps beyond half the large
	// bytes in use.
	poolKeep = 64 << 20
	// A large allocation that finds the pool empty collects when at least
	// four blocks of its size went out since the last sweep, and at least
	// forceGCMin bytes; forceGCMax bytes always suffice.
	forceGCMin = 8 << 20
	forceGCMax = 32 << 20
)

// storage is one buffer and its budget charge, shared by an array and its
// views.
type storage struct {
	dev   Buffer // a device's buffer; nil for host arrays, which use host
	host  hostBuffer
	bytes int64
	life  *lifetime
	freed atomic.Bool
	// readOnly refuses writes through any array on this storage.
	readOnly atomic.Bool
	// tr watches the storage; for a tiny array it is its batch's token,
	// shared by every storage of the batch.
	tr *tracked
}

// batchAcct is a batch's charge not yet given back.
type batchAcct struct {
	life      *lifetime
	remaining atomic.Int64
	bytes     int64 // charged so far, under life.mu
}

// tracked watches one storage that is not accounted in a batch, or is the
// token of a batch (batch set, the other fields unused): what the batch's
// storages point at, whose weak pointer tells when all of them are gone.
type tracked struct {
	batch *batchAcct
	w     weak.Pointer[storage]
	bytes int64
	life  *lifetime
	given atomic.Bool // the budget charge went back
	// blk is a pooled host buffer (nil for others); blkState says who owns
	// it once the storage is done: 0 the storage, 1 given to the pool,
	// 2 escaped (a slice of it was handed out: never recycled).
	blk      *block
	blkState atomic.Int32
	dev      Buffer // a device buffer, freed once
	devFreed atomic.Bool
}

// lifetime is the span of one Exec: it knows the bytes its live arrays
// hold, so Close can return them in one step, and its device buffers, so
// Close can free them.
type lifetime struct {
	budget *Budget
	closed atomic.Bool

	mu        sync.Mutex
	liveBytes int64
	devices   []*tracked
	pruneAt   int
	slab64    []float64
	slab32    []float32
	// batch is the batch new tiny arrays join; held weakly, so that a
	// batch whose arrays are all gone is reclaimed even while current.
	batch     weak.Pointer[tracked]
	batchAcct *batchAcct
}

// give returns bytes of one storage to the budget, unless Close already
// returned everything.
func (l *lifetime) give(bytes int64) {
	if bytes == 0 {
		return
	}
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
	devices := l.devices
	l.devices, l.batchAcct, l.slab64, l.slab32 = nil, nil, nil, nil
	l.mu.Unlock()
	for _, tr := range devices {
		if st := tr.w.Value(); st != nil {
			st.free()
		}
	}
	// The run is over: hand back what its dead arrays held.
	reclaimer.sweepIfCollected()
}

// tinyArray is a tiny array and its storage in one allocation.
type tinyArray struct {
	a  Array
	st storage
}

// newTinyArray makes a tiny host array of shape in t, its elements carved
// from the slab. The caller reserved bytes; it returns nil when the
// lifetime closed.
func (l *lifetime) newTinyArray(t *tinyArray, dt DType, n int, bytes int64, shape []int) *Array {
	if !l.initTiny(&t.st, dt, n, bytes) {
		return nil
	}
	a := &t.a
	a.dtype, a.st = dt, &t.st
	a.setShape(shape)
	return a
}

// initTiny sets up st for a tiny host array.
func (l *lifetime) initTiny(st *storage, dt DType, n int, bytes int64) bool {
	st.bytes, st.life = bytes, l
	st.host.dt = dt
	sweep := false
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return false
	}
	l.liveBytes += bytes
	if dt == Float64 {
		if len(l.slab64) < n {
			l.slab64 = make([]float64, slabBytes/8)
		}
		st.host.f64 = l.slab64[:n:n]
		l.slab64 = l.slab64[n:]
	} else {
		if len(l.slab32) < n {
			l.slab32 = make([]float32, slabBytes/4)
		}
		st.host.f32 = l.slab32[:n:n]
		l.slab32 = l.slab32[n:]
	}
	tok := l.batch.Value()
	if tok == nil || l.batchAcct.bytes+bytes > batchBytes {
		tok = &tracked{batch: &batchAcct{life: l}}
		l.batch, l.batchAcct = weak.Make(tok), tok.batch
		sweep = true
	}
	st.tr = tok
	tok.batch.bytes += bytes
	tok.batch.remaining.Add(bytes)
	l.mu.Unlock()
	if sweep {
		reclaimer.addBatch(tok)
		reclaimer.sweepIfCollected()
	}
	return true
}

// adopt makes the storage of a non-tiny buffer (a host buffer with its
// pooled block, if any, or a device buffer) and starts watching it. The
// caller reserved bytes; it returns nil when the lifetime closed.
func (l *lifetime) adopt(buf Buffer, blk *block, bytes int64) *storage {
	st := &storage{bytes: bytes, life: l}
	tr := &tracked{bytes: bytes, life: l, blk: blk}
	if hb, ok := buf.(*hostBuffer); ok {
		st.host = *hb
	} else {
		st.dev, tr.dev = buf, buf
	}
	tr.w = weak.Make(st)
	st.tr = tr
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return nil
	}
	l.liveBytes += bytes
	if tr.dev != nil {
		l.devices = append(l.devices, tr)
		if len(l.devices) >= l.pruneAt {
			kept := l.devices[:0]
			for _, t := range l.devices {
				if !t.devFreed.Load() && t.w.Value() != nil {
					kept = append(kept, t)
				}
			}
			clear(l.devices[len(kept):])
			l.devices = kept
			l.pruneAt = max(64, 2*len(kept))
		}
	}
	l.mu.Unlock()
	reclaimer.add(tr)
	return st
}

// buffer is the storage's Buffer: the device's, or the host one.
func (s *storage) buffer() Buffer {
	if s.dev != nil {
		return s.dev
	}
	return &s.host
}

func (s *storage) isFreed() bool { return s.freed.Load() || s.life.closed.Load() }

// free releases the storage now: its bytes go back to the budget and a
// device buffer is freed; a pooled host buffer is recycled only once no
// array refers to it. Later calls do nothing.
func (s *storage) free() {
	if !s.freed.CompareAndSwap(false, true) {
		return
	}
	if s.tr.batch != nil {
		s.tr.batch.remaining.Add(-s.bytes)
		s.life.give(s.bytes)
		return
	}
	if s.tr.given.CompareAndSwap(false, true) {
		s.life.give(s.bytes)
	}
	if s.tr.dev != nil && s.tr.devFreed.CompareAndSwap(false, true) {
		s.tr.dev.Free()
	}
}

// recycle is free for a temporary that never left the Exec: its pooled
// buffer goes back to the pool at once.
func (s *storage) recycle() {
	s.free()
	if tr := s.tr; tr != nil && tr.blk != nil && tr.blkState.CompareAndSwap(0, 1) {
		thePool.put(tr.blk)
	}
}

// escape marks the storage's buffer as handed out as a Go slice: it is
// never recycled, and the collector reclaims it once the slice is gone.
func (s *storage) escape() {
	if tr := s.tr; tr != nil && tr.blk != nil {
		tr.blkState.CompareAndSwap(0, 2)
	}
}

// gcSentinel is allocated and dropped at each sweep: once its weak pointer
// reads nil, the collector has run since.
type gcSentinel struct {
	p *int
	_ [2]uint64
}

// reclaimer watches every tracked storage and batch of every lifetime.
var reclaimer reclaimState

type batchEntry struct {
	w    weak.Pointer[tracked]
	acct *batchAcct
}

type reclaimState struct {
	mu       sync.Mutex
	tracked  []*tracked
	batches  []batchEntry
	pruneAt  int
	sentinel weak.Pointer[gcSentinel]
	// largeOut is the large pooled bytes handed out since the last sweep,
	// largeInUse those held by storages not yet found dead.
	largeOut, largeInUse int64
}

func (r *reclaimState) add(tr *tracked) {
	r.mu.Lock()
	r.tracked = append(r.tracked, tr)
	if tr.blk != nil {
		size := int64(len(tr.blk.words)) * 8
		r.largeOut += size
		r.largeInUse += size
	}
	full := len(r.tracked)+len(r.batches) >= r.pruneAt
	r.mu.Unlock()
	if full {
		r.sweep()
	}
}

func (r *reclaimState) addBatch(t *tracked) {
	r.mu.Lock()
	r.batches = append(r.batches, batchEntry{w: weak.Make(t), acct: t.batch})
	full := len(r.tracked)+len(r.batches) >= r.pruneAt
	r.mu.Unlock()
	if full {
		r.sweep()
	}
}

// collected reports whether the collector ran since the last sweep.
func (r *reclaimState) collected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sentinel.Value() == nil
}

func (r *reclaimState) sweepIfCollected() {
	if r.collected() {
		r.sweep()
	}
}

// sweep hands back what storages found unreachable held: budget bytes,
// device buffers and pooled blocks.
func (r *reclaimState) sweep() {
	var blocks []*block
	var devs []Buffer
	type give struct {
		life  *lifetime
		bytes int64
	}
	var gives []give
	r.mu.Lock()
	r.sentinel = weak.Make(&gcSentinel{})
	kept := r.tracked[:0]
	for _, tr := range r.tracked {
		if tr.w.Value() != nil {
			kept = append(kept, tr)
			continue
		}
		if tr.given.CompareAndSwap(false, true) {
			gives = append(gives, give{tr.life, tr.bytes})
		}
		if tr.blk != nil {
			r.largeInUse -= int64(len(tr.blk.words)) * 8
			if tr.blkState.CompareAndSwap(0, 1) {
				blocks = append(blocks, tr.blk)
			}
		}
		if tr.dev != nil && tr.devFreed.CompareAndSwap(false, true) {
			devs = append(devs, tr.dev)
		}
	}
	clear(r.tracked[len(kept):])
	r.tracked = kept
	keptB := r.batches[:0]
	for _, b := range r.batches {
		if b.w.Value() != nil {
			keptB = append(keptB, b)
			continue
		}
		gives = append(gives, give{b.acct.life, b.acct.remaining.Swap(0)})
	}
	clear(r.batches[len(keptB):])
	r.batches = keptB
	r.pruneAt = max(256, 2*(len(kept)+len(keptB)))
	r.largeOut = 0
	inUse := r.largeInUse
	r.mu.Unlock()
	for _, g := range gives {
		g.life.give(g.bytes)
	}
	for _, d := range devs {
		d.Free()
	}
	for _, b := range blocks {
		thePool.put(b)
	}
	thePool.trim(inUse)
}

// collect runs the collector and sweeps, so that every unreachable
// storage has handed its memory and budget back.
func (r *reclaimState) collect() {
	runtime.GC()
	r.sweep()
}

// largeLikelyGarbage reports whether enough large buffers went out since
// the last sweep that a collection before allocating one of bytes is worth
// its cost: at least an eighth of the large bytes in use (which bounds the
// memory a loop of temporaries holds beyond NumPy's), and four blocks of
// this size but at least forceGCMin and at most forceGCMax bytes. A fresh
// block costs a page fault per 4 KiB on first touch (a quarter of a 512²
// product's time), a collection about as much as a few of them: a loop of
// 1-2 MiB products reuses its outputs after four to eight, and one of
// 256 KiB blocks collects every 32 at most, not on every product.
func (r *reclaimState) largeLikelyGarbage(bytes int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	enough := min(max(4*bytes, forceGCMin), forceGCMax)
	return r.largeOut >= enough && r.largeOut >= r.largeInUse/8
}

// block is a pooled host buffer of 8-byte words.
type block struct {
	words []float64
	put   uint64 // when it last went into the pool (blockPool.seq)
}

func (b *block) float64s(n int) []float64 { return b.words[:n:n] }

func (b *block) float32s(n int) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b.words))), 2*len(b.words))[:n:n]
}

// sizeClass rounds a byte count of at least largeBytes up to its class:
// four classes per power of two, so at most a quarter is wasted.
func sizeClass(bytes int64) int64 {
	p := int64(1)
	for p*2 <= bytes {
		p *= 2
	}
	step := p / 4
	return (bytes + step - 1) / step * step
}

// blockPool keeps idle large blocks by size class, each class a stack
// (the block used last is reused first).
type blockPool struct {
	mu    sync.Mutex
	free  map[int64][]*block
	bytes int64
	seq   uint64
}

var thePool = blockPool{free: map[int64][]*block{}}

func (p *blockPool) get(class int64) *block {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.free[class]
	if len(l) == 0 {
		return nil
	}
	b := l[len(l)-1]
	l[len(l)-1] = nil
	p.free[class] = l[:len(l)-1]
	p.bytes -= class
	return b
}

func (p *blockPool) put(b *block) {
	class := int64(len(b.words)) * 8
	p.mu.Lock()
	p.seq++
	b.put = p.seq
	p.free[class] = append(p.free[class], b)
	p.bytes += class
	p.mu.Unlock()
}

// trim drops idle blocks beyond what the pool may keep while inUse large
// bytes are held, the longest idle first; the collector reclaims them.
func (p *blockPool) trim(inUse int64) {
	limit := poolKeep + inUse/2
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.bytes > limit {
		var oldest int64
		for c, l := range p.free {
			if len(l) > 0 && (oldest == 0 || l[0].put < p.free[oldest][0].put) {
				oldest = c
			}
		}
		if oldest == 0 {
			return
		}
		l := p.free[oldest]
		copy(l, l[1:])
		l[len(l)-1] = nil
		p.free[oldest] = l[:len(l)-1]
		p.bytes -= oldest
	}
}

// PoolStats reports the idle bytes the large-buffer pool holds (for tests
// and benchmarks).
func poolBytes() int64 {
	thePool.mu.Lock()
	defer thePool.mu.Unlock()
	return thePool.bytes
}

// largeBlock returns a block of at least bytes bytes: a pooled one when
// one of its class is idle (after a sweep if the collector ran, or after a
// collection when large garbage is likely), else a new one.
func largeBlock(bytes int64) *block {
	class := sizeClass(bytes)
	if b := thePool.get(class); b != nil {
		return b
	}
	if reclaimer.collected() {
		reclaimer.sweep()
		if b := thePool.get(class); b != nil {
			return b
		}
	}
	if reclaimer.largeLikelyGarbage(class) {
		reclaimer.collect()
		if b := thePool.get(class); b != nil {
			return b
		}
	}
	blocksMade.Add(1)
	b := &block{words: make([]float64, class/8)}
	if adviseHugePages {
		adviseHuge(b.words)
	}
	return b
}

// blocksMade counts the large blocks allocated (not recycled), for tests.
var blocksMade atomic.Int64

// adviseHugePages turns on adviseHuge for new large blocks. It is off: on
// the virtual machines measured, faulting huge pages in (with the direct
// compaction THP's "madvise" defrag mode implies) cost more than the 4 KiB
// faults it saves.
var adviseHugePages = false
