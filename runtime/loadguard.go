package runtime

import (
	"fmt"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/mem"

	"github.com/autonode/autonode/internal/memlimit"
)

// loadLimit is the memory use, in percent, above which a thread waits
// before it starts (memory admission; DESIGN §3).
const loadLimit = 95.0

// loadInterval is how often the background sampler runs.
const loadInterval = time.Second

// loadGuard keeps the latest memory sample, taken by a background
// goroutine, so that admission only reads numbers.
type loadGuard struct {
	sample func() (memPct, cpuPct float64, err error)
	// free returns the memory available to the process in bytes, or -1
	// when unknown (a custom sampler).
	free func() int64
	once sync.Once
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	have      bool
	memPct    float64
	freeBytes int64
	started   bool
}

func newLoadGuard(sample func() (float64, float64, error)) *loadGuard {
	g := &loadGuard{sample: sample, free: func() int64 { return -1 }, stop: make(chan struct{}), done: make(chan struct{})}
	if sample == nil {
		g.sample, g.free = machineSampler(), freeMemory
	}
	return g
}

// start launches the sampler on first use; the first sample is taken
// before start returns, so that the first thread is already admitted by
// it.
func (g *loadGuard) start() {
	g.once.Do(func() {
		g.take()
		g.mu.Lock()
		g.started = true
		g.mu.Unlock()
		go g.loop()
	})
}

func (g *loadGuard) loop() {
	defer close(g.done)
	t := time.NewTicker(loadInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.take()
		}
	}
}

func (g *loadGuard) take() {
	m, _, err := g.sample()
	free := g.free()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.have = false // unknown load: admit
		return
	}
	g.have, g.memPct, g.freeBytes = true, m, free
}

// admit reports whether a thread with a memory budget of budgetMB may
// start now, and if not why: memory use above 95%, or, when the thread
// asked for its budget (metadata.max_memory_mb) and the budget is within
// what the process may use at all, less free memory than that.
func (g *loadGuard) admit(budgetMB float64, asked bool) (bool, string) {
	g.start()
	g.mu.Lock()
	have, m, free := g.have, g.memPct, g.freeBytes
	g.mu.Unlock()
	if !have {
		return true, ""
	}
	if m > loadLimit {
		return false, fmt.Sprintf("memory %.1f%% used; the limit is %.0f%%", m, loadLimit)
	}
	need := int64(budgetMB * (1 << 20))
	if lim := memlimit.Get(); asked && free >= 0 && need > free && (lim.Bytes <= 0 || need <= lim.Bytes) {
		return false, fmt.Sprintf("%s free, less than its max_memory_mb of %s", memlimit.FormatBytes(free), fmtMB(budgetMB))
	}
	return true, ""
}

func fmtMB(mb float64) string { return fmt.Sprintf("%g MB", mb) }

// close stops the sampler.
func (g *loadGuard) close() {
	g.once.Do(func() {}) // waits for a start in progress; prevents later ones
	g.mu.Lock()
	started := g.started
	g.mu.Unlock()
	if !started {
		return
	}
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	<-g.done
}

// machineSampler samples memory use with gopsutil: the machine's, or the
// share of the cgroup's limit in use when the process's cgroup sets a
// lower one (memlimit; RLIMIT_AS counts address space, not memory, and is
// left out). CPU use is not sampled: it never holds a thread back.
func machineSampler() func() (float64, float64, error) {
	return func() (float64, float64, error) {
		vm, err := mem.VirtualMemory()
		if err != nil {
			return 0, 0, err
		}
		memPct := vm.UsedPercent
		if lim := memlimit.Get(); lim.Source != "RAM" && !lim.AddressSpace {
			if left, ok := lim.Left(); ok && lim.Bytes > 0 {
				memPct = max(memPct, 100*float64(lim.Bytes-left)/float64(lim.Bytes))
			}
		}
		return memPct, 0, nil
	}
}

// freeMemory is the memory available to the process: the machine's
// available memory, or what its cgroup's limit leaves when that is less.
func freeMemory() int64 {
	vm, err := mem.VirtualMemory()
	if err != nil {
		return -1
	}
	free := int64(vm.Available)
	if lim := memlimit.Get(); lim.Source != "RAM" && !lim.AddressSpace {
		if left, ok := lim.Left(); ok {
			free = min(free, left)
		}
	}
	return free
}
