package runtime

import (
	"container/heap"
	"sync"

	"github.com/autonode/autonode/registry"
)

// stageRank orders stages for the scheduler: CRITICAL, then CORE, then BASE.
func stageRank(stage string) int {
	switch stage {
	case registry.StageCritical:
		return 0
	case registry.StageCore:
		return 1
	}
	return 2
}

// pool is a bounded worker pool for one kind of device. Submitted runs
// wait in a priority queue (stage, then priority, higher first, then
// submission order) and start, each on its own goroutine, while fewer than
// limit run. A run that blocks waiting for other threads gives its slot
// back for the duration (see release/reacquire), so that a body waiting
// for its children cannot deadlock a small pool.
type pool struct {
	name  string
	limit int

	mu      sync.Mutex
	q       runQueue
	running int
}

func newPool(name string, limit int) *pool {
	if limit < 1 {
		limit = 1
	}
	return &pool{name: name, limit: limit}
}

// submit queues j and starts what fits.
func (p *pool) submit(j *run) {
	p.mu.Lock()
	heap.Push(&p.q, j)
	p.dispatchLocked()
	p.mu.Unlock()
}

func (p *pool) dispatchLocked() {
	for p.running < p.limit && p.q.Len() > 0 {
		j := heap.Pop(&p.q).(*run)
		p.running++
		go j.execute()
	}
}

// remove takes a queued run out of the queue; it reports false when j is
// not queued (already dispatched, or never submitted).
func (p *pool) remove(j *run) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j.heapIdx < 0 || j.heapIdx >= p.q.Len() || p.q[j.heapIdx] != j {
		return false
	}
	heap.Remove(&p.q, j.heapIdx)
	return true
}

// done gives back the slot of a run that has ended.
func (p *pool) done() {
	p.mu.Lock()
	p.running--
	p.dispatchLocked()
	p.mu.Unlock()
}

// release gives back a running body's slot while it blocks.
func (p *pool) release() { p.done() }

// reacquire takes the slot back after a block. It does not wait: the
// pool may run one over its limit until a run ends, which keeps a waiting
// parent from queueing behind work it does not depend on.
func (p *pool) reacquire() {
	p.mu.Lock()
	p.running++
	p.mu.Unlock()
}

// runQueue is a container/heap of runs in scheduling order.
type runQueue []*run

func (q runQueue) Len() int { return len(q) }

func (q runQueue) Less(i, k int) bool {
	a, b := q[i], q[k]
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	return a.seq < b.seq
}

func (q runQueue) Swap(i, k int) {
	q[i], q[k] = q[k], q[i]
	q[i].heapIdx = i
	q[k].heapIdx = k
}

func (q *runQueue) Push(x any) {
	j := x.(*run)
	j.heapIdx = len(*q)
	*q = append(*q, j)
}

func (q *runQueue) Pop() any {
	old := *q
	n := len(old)
	j := old[n-1]
	old[n-1] = nil
	j.heapIdx = -1
	*q = old[:n-1]
	return j
}
