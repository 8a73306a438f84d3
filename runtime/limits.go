package runtime

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/autonode/autonode/internal/memlimit"
	"github.com/autonode/autonode/registry"
)

// spawnTree counts the threads spawned from the bodies under one
// top-level thread (Options.MaxDescendants).
type spawnTree struct {
	root registry.ID
	n    atomic.Int64
}

// spawnLimits returns Options.MaxChildren and MaxDescendants with their
// defaults applied; negative values forbid spawning from bodies.
func (r *Runtime) spawnLimits() (children, descendants int64) {
	children, descendants = int64(r.opts.MaxChildren), int64(r.opts.MaxDescendants)
	if children == 0 {
		children = DefaultMaxChildren
	}
	if descendants == 0 {
		descendants = DefaultMaxDescendants
	}
	return children, descendants
}

// reserveSpawn counts one more thread spawned by parent's body (nil: a
// top-level spawn, which is not bounded), or refuses it with an error
// wrapping ErrSpawnLimit. A spawn that then fails gives it back with
// releaseSpawn.
func (r *Runtime) reserveSpawn(fn string, parent *run) error {
	if parent == nil {
		return nil
	}
	maxChildren, maxDesc := r.spawnLimits()
	if maxChildren < 0 || maxDesc < 0 {
		return limitf(ErrSpawnLimit, "%s: refused: the embedding application does not let thread bodies spawn threads (thread %s)", fn, parent.id)
	}
	if n := parent.children.Add(1); n > maxChildren {
		parent.children.Add(-1)
		return limitf(ErrSpawnLimit, "%s: refused: thread %s has spawned %d threads, the most one thread body may (runtime.Options.MaxChildren)", fn, parent.id, maxChildren)
	}
	if n := parent.tree.n.Add(1); n > maxDesc {
		parent.tree.n.Add(-1)
		parent.children.Add(-1)
		return limitf(ErrSpawnLimit, "%s: refused: the bodies under thread %s have spawned %d threads, the most allowed under one top-level thread (runtime.Options.MaxDescendants)", fn, parent.tree.root, maxDesc)
	}
	return nil
}

// releaseSpawn gives back what reserveSpawn counted.
func releaseSpawn(parent *run) {
	if parent != nil {
		parent.children.Add(-1)
		parent.tree.n.Add(-1)
	}
}

// inherit applies what a thread spawned by a body gets from the body's
// thread (DESIGN §6): at most the TTL the parent has left. (Its sandbox is
// checked by prepare: a sandboxed body cannot spawn an unsandboxed
// thread.)
func (p *plan) inherit() error {
	parent := p.parent
	parent.mu.Lock()
	ctx := parent.ctx
	parent.mu.Unlock()
	if ctx == nil {
		return nil
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	left := time.Until(deadline).Seconds()
	if left <= 0 {
		return limitf(ErrTTLExceeded, "refused: thread %s has reached its TTL of %ss", parent.id, registry.PyFloat(parent.ttl))
	}
	if p.ttl > left+ttlSlack {
		left = math.Round(left*1000) / 1000
		if left <= 0 {
			left = 0.001
		}
		p.notes = append(p.notes, fmt.Sprintf("TTL capped at %ss, what its parent thread %s has left (asked for %ss).", registry.PyFloat(left), parent.id, registry.PyFloat(p.ttl)))
		p.ttl = left
	}
	return nil
}

// ttlSlack: a child's TTL is capped only when it asks for more than this
// beyond what its parent has left (its parent's end stops it anyway).
const ttlSlack = 0.05

// memoryBudget returns a thread's memory budget in MB from its metadata's
// max_memory_mb (default registry.DefaultMaxMemoryMB) and its text as the
// seed prints it. A budget must be a positive number of at least one byte;
// one larger than the process may use is kept (the limit of the process
// applies anyway: accel refuses arrays larger than it, and the memory
// guard stops Starlark code before it is reached).
func memoryBudget(metadata map[string]any) (float64, string, error) {
	v, ok := metadata["max_memory_mb"]
	if !ok {
		return registry.DefaultMaxMemoryMB, fmt.Sprint(registry.DefaultMaxMemoryMB), nil
	}
	f, isNum := numberOf(v)
	if !isNum || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0, "", fmt.Errorf("metadata: max_memory_mb: got %s, want a positive number of megabytes", pyRepr(v))
	}
	const oneByte = 1.0 / (1 << 20)
	if f < oneByte {
		return 0, "", fmt.Errorf("metadata: max_memory_mb: got %s, less than one byte (%s MB); want at least one byte, or leave it out for the default %v",
			pyRepr(v), registry.PyFloat(oneByte), registry.DefaultMaxMemoryMB)
	}
	return f, pyRepr(v), nil
}

// machineNote says, for a history line, when a budget is larger than what
// the process may use.
func machineNote(budgetMB float64) string {
	lim := memlimit.Get()
	if lim.Bytes <= 0 || budgetMB*(1<<20) <= float64(lim.Bytes) {
		return ""
	}
	return fmt.Sprintf("Memory budget of %sMB is more than this process may use (%s); that limit applies.", registry.PyFloat(budgetMB), lim)
}
