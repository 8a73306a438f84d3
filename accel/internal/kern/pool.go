package kern

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// task is one parallel loop over chunks [0, n) handed to the worker pool.
// Participants grab chunks with an atomic counter, so a busy or descheduled
// worker never holds up the others, and a worker that arrives after all
// chunks are taken simply leaves.
type task struct {
	fn    func(w, lo, hi int)
	n     int
	grain int
	next  atomic.Int64

	mu     sync.Mutex
	closed bool
	active int
	joined int
	done   chan struct{}
	// panicked is the first panic of a participant, raised again in the
	// caller's goroutine by finish.
	panicked any
}

func (t *task) work(w int) {
	defer func() {
		if r := recover(); r != nil {
			t.mu.Lock()
			if t.panicked == nil {
				t.panicked = r
			}
			t.mu.Unlock()
			t.next.Store(int64(t.n)) // the others stop at their next chunk
		}
	}()
	for {
		i := int(t.next.Add(1) - 1)
		lo := i * t.grain
		if lo >= t.n || lo < 0 {
			return
		}
		t.fn(w, lo, min(lo+t.grain, t.n))
	}
}

// join registers a pool worker; it reports its participant index, or false
// when the caller has already finished the loop.
func (t *task) join() (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, false
	}
	t.active++
	t.joined++
	return t.joined, true
}

func (t *task) leave() {
	t.mu.Lock()
	t.active--
	if t.active == 0 && t.closed {
		close(t.done)
	}
	t.mu.Unlock()
}

// finish closes the task to late joiners and waits for active ones. A
// panic in any participant (a bug) is raised again here, in the caller's
// goroutine, where it can be recovered, instead of crashing the process
// from a pool goroutine.
func (t *task) finish() {
	t.mu.Lock()
	t.closed = true
	n := t.active
	t.mu.Unlock()
	if n > 0 {
		<-t.done
	}
	t.mu.Lock()
	p := t.panicked
	t.mu.Unlock()
	if p != nil {
		panic(p)
	}
}

var (
	poolMu      sync.Mutex
	poolWorkers int
	// poolCh is buffered so that handing out a task never blocks and never
	// misses a worker that is just about to come back for more.
	poolCh = make(chan *task, 256)
)

// spinPolls is how many times an idle worker polls for the next task
// before it blocks (a few tens of microseconds): kernels such as gemm hand
// out several parallel phases back to back, and waking a blocked thread
// costs more than that on a virtual machine.
var spinPolls = 2000

func poolWorker() {
	for {
		t := nextTask()
		if w, ok := t.join(); ok {
			t.work(w)
			t.leave()
		}
	}
}

func nextTask() *task {
	for i := 0; i < spinPolls; i++ {
		select {
		case t := <-poolCh:
			return t
		default:
		}
	}
	return <-poolCh
}

// ensureWorkers makes sure at least n pool goroutines exist.
func ensureWorkers(n int) {
	poolMu.Lock()
	for poolWorkers < n {
		poolWorkers++
		go poolWorker()
	}
	poolMu.Unlock()
}

// numWorkers is the number of cores a call may use.
func numWorkers() int {
	return max(1, runtime.GOMAXPROCS(0))
}

// parallelFor runs fn over [0, n) in chunks of grain on up to nw
// participants (the caller included). fn receives a participant index in
// [0, nw) that is unique among the participants of this loop. With nw <= 1
// or a single chunk it runs inline without allocating.
func parallelFor(nw, n, grain int, fn func(w, lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	chunks := (n-1)/grain + 1
	nw = min(nw, chunks)
	if nw <= 1 {
		fn(0, 0, n)
		return
	}
	ensureWorkers(nw - 1)
	t := &task{fn: fn, n: n, grain: grain, done: make(chan struct{})}
	for i := 1; i < nw; i++ {
		select {
		case poolCh <- t:
		default:
			// The hand-off queue is full (many concurrent callers): go on
			// with fewer participants rather than wait.
		}
	}
	t.work(0)
	t.finish()
}
