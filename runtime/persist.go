package runtime

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
)

// commitOp is a group of registry operations that one caller submits to
// the committer. Each function performs its reads first and its single
// write last, so that one that fails leaves nothing behind in the shared
// transaction.
type commitOp struct {
	fns  []func(tx *registry.Tx) error
	errs []error
	done chan struct{} // nil: nobody waits (starts, history lines)
	// then, when set, is called on the committer's goroutine with the
	// errors once the group is durable (or has failed).
	then func(errs []error)
}

// Bounds of the operations committed in one registry transaction. A
// JetStream server takes at most 1,000 messages in an atomic batch (a
// larger transaction is split, see run); a file store takes any number
// in one journal append and fsync, and a larger group costs fewer of
// them when thousands of ends arrive at once (a signal during a
// spawn_batch of 80 000 threads).
const (
	maxGroup     = 512
	maxFileGroup = 8192
)

// committer serializes the engine's registry writes and groups those that
// arrive together into one transaction (one journal append and fsync),
// which is what makes hundreds of concurrent spawns cheap. Operations of
// one caller apply in submission order.
type committer struct {
	store registry.Store
	warn  func(format string, args ...any)

	maxGroup int // maxGroup or maxFileGroup

	mu     sync.RWMutex
	ch     chan *commitOp
	closed bool
	done   chan struct{}

	// txGen numbers the transactions the committer runs; ids caches the
	// next free id within one (see nextID). Both are used only on the
	// committer's goroutine, inside a transaction.
	txGen uint64
	ids   struct {
		gen uint64
		max registry.ID
	}
}

// nextID returns the next free id in tx, as tx.NextID does, scanning the
// registry once per transaction rather than once per thread: a
// spawn_batch of 80 000 threads creates them all in one transaction.
func (c *committer) nextID(tx *registry.Tx) registry.ID {
	if c.ids.gen != c.txGen {
		c.ids.gen, c.ids.max = c.txGen, tx.NextID()-1
	}
	return registry.ID(math.Floor(float64(c.ids.max)) + 1)
}

// used records that id was created in the current transaction.
func (c *committer) used(id registry.ID) {
	if c.ids.gen == c.txGen && id > c.ids.max {
		c.ids.max = id
	}
}

func newCommitter(store registry.Store, warn func(string, ...any)) *committer {
	c := &committer{store: store, warn: warn, maxGroup: maxGroup, ch: make(chan *commitOp, 1024), done: make(chan struct{})}
	if _, ok := store.(*registry.FileStore); ok {
		c.maxGroup = maxFileGroup
	}
	go c.loop()
	return c
}

func (c *committer) loop() {
	defer close(c.done)
	for op := range c.ch {
		group := []*commitOp{op}
		n := len(op.fns)
	drain:
		for n < c.maxGroup {
			select {
			case o, ok := <-c.ch:
				if !ok {
					break drain
				}
				group = append(group, o)
				n += len(o.fns)
			default:
				break drain
			}
		}
		c.apply(group)
	}
}

func (c *committer) apply(group []*commitOp) {
	var slots []slot
	for _, op := range group {
		op.errs = make([]error, len(op.fns))
		for i := range op.fns {
			slots = append(slots, slot{op, i})
		}
	}
	c.run(slots)
	for _, op := range group {
		if op.then != nil {
			op.then(op.errs)
			continue
		}
		if op.done != nil {
			close(op.done)
			continue
		}
		for _, e := range op.errs {
			if e != nil {
				c.warn("could not update a thread's record: %v", e)
			}
		}
	}
}

// slot is one function of an operation, in a transaction of the
// committer.
type slot struct {
	op *commitOp
	i  int
}

// run commits the functions of slots in one transaction, and sets each
// one's error. A transaction larger than the store takes in one commit
// (natsstore.ErrBatchTooLarge: a JetStream server's atomic batch limit)
// is split in halves, each committed on its own: the functions of one
// operation are independent of each other (each does its reads first
// and its single write last).
func (c *committer) run(slots []slot) {
	err := c.store.Update(func(tx *registry.Tx) error {
		c.txGen++ // each attempt is a new transaction
		for _, s := range slots {
			s.op.errs[s.i] = s.op.fns[s.i](tx)
		}
		return nil
	})
	if errors.Is(err, natsstore.ErrBatchTooLarge) && len(slots) > 1 {
		half := len(slots) / 2
		c.run(slots[:half])
		c.run(slots[half:])
		return
	}
	if err != nil {
		for _, s := range slots {
			s.op.errs[s.i] = fmt.Errorf("registry: %w", err)
		}
	}
}

var errCommitterClosed = ErrClosed

// submit queues op; it reports false when the committer has stopped.
func (c *committer) submit(op *commitOp) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return false
	}
	c.ch <- op
	return true
}

// commit runs fns in one transaction shared with other callers' operations
// and returns each function's error.
func (c *committer) commit(fns ...func(tx *registry.Tx) error) []error {
	op := &commitOp{fns: fns, done: make(chan struct{})}
	if !c.submit(op) {
		errs := make([]error, len(fns))
		for i := range errs {
			errs[i] = errCommitterClosed
		}
		return errs
	}
	<-op.done
	return op.errs
}

// commit1 is commit for one function.
func (c *committer) commit1(fn func(tx *registry.Tx) error) error {
	return c.commit(fn)[0]
}

// async queues fn and calls then with its error once it is committed;
// when the committer has stopped, then gets errCommitterClosed at once.
func (c *committer) async(fn func(tx *registry.Tx) error, then func(error)) {
	op := &commitOp{fns: []func(*registry.Tx) error{fn}, then: func(errs []error) { then(errs[0]) }}
	if !c.submit(op) {
		then(errCommitterClosed)
	}
}

// post queues fn without waiting for it.
func (c *committer) post(fn func(tx *registry.Tx) error) {
	c.submit(&commitOp{fns: []func(*registry.Tx) error{fn}})
}

// close commits what is queued and stops the committer.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.ch)
	}
	c.mu.Unlock()
	<-c.done
}
