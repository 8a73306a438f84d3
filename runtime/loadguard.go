package runtime

import (
	"fmt"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/autonode/autonode/internal/memlimit"
)

// loadLimit is the memory or CPU use, in percent, above which spawn
// refuses new threads (DESIGN §3).
const loadLimit = 95.0

// loadInterval is how often the background sampler runs.
const loadInterval = time.Second

// loadGuard keeps the latest machine load sample, taken by a background
// goroutine, so that spawn only reads two numbers.
type loadGuard struct {
	sample func() (memPct, cpuPct float64, err error)
	once   sync.Once
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	have    bool
	memPct  float64
	cpuPct  float64
	started bool
}

func newLoadGuard(sample func() (float64, float64, error)) *loadGuard {
	if sample == nil {
		sample = machineSampler()
	}
	return &loadGuard{sample: sample, stop: make(chan struct{}), done: make(chan struct{})}
}

// start launches the sampler on first use; the first sample is taken
// before start returns, so that the first spawn is already guarded.
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
	m, c, err := g.sample()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.have = false // unknown load: do not refuse
		return
	}
	g.have, g.memPct, g.cpuPct = true, m, c
}

// check returns an error when the latest sample is above the limit.
func (g *loadGuard) check(fn string) error {
	g.start()
	g.mu.Lock()
	have, m, c := g.have, g.memPct, g.cpuPct
	g.mu.Unlock()
	if !have || (m <= loadLimit && c <= loadLimit) {
		return nil
	}
	return fmt.Errorf("%s: refused: the machine is overloaded (memory %.1f%% used, CPU %.1f%% busy; the limit is %.0f%%); retry when the load drops", fn, m, c, loadLimit)
}

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

// machineSampler samples memory and CPU use with gopsutil. Memory use is
// the machine's, or the share of the cgroup's limit in use when the
// process's cgroup sets a lower one (memlimit; RLIMIT_AS counts address
// space, not memory, and is left out); CPU use is the busy share of CPU
// time since the previous sample.
func machineSampler() func() (float64, float64, error) {
	var prevBusy, prevTotal float64
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
		ts, err := cpu.Times(false)
		if err != nil || len(ts) == 0 {
			return memPct, 0, nil
		}
		total := ts[0].Total()
		busy := total - ts[0].Idle - ts[0].Iowait
		pct := 0.0
		if prevTotal > 0 && total > prevTotal {
			pct = 100 * (busy - prevBusy) / (total - prevTotal)
		}
		prevBusy, prevTotal = busy, total
		return memPct, pct, nil
	}
}
