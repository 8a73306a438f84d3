package natsstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// sync waits until this process's copy holds every commit acknowledged
// before sync was called, from any process. With linear set on a
// replicated stream it writes a barrier through the stream and waits
// for it (a leader cut off from its cluster cannot acknowledge one);
// otherwise it asks the stream's leader for its last sequence, which a
// deposed leader may still answer for itself. A commit is checked at the
// leader either way, so a stale copy can only make it conflict.
func (s *Store) sync(ctx context.Context, linear bool) error {
	for try := 0; ; try++ {
		rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		var seq uint64
		var err error
		if linear && s.needsBarrier() {
			seq, err = s.barriers.await(rctx, s.barrier)
		} else {
			var info *jetstream.StreamInfo
			if info, err = s.stream.Info(rctx); err == nil {
				seq = info.State.LastSeq
			}
		}
		if err == nil {
			err = s.m.wait(rctx, seq)
		}
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !transient(err) && !errors.Is(err, ErrUnavailable) {
			return fmt.Errorf("read %s: %w", s.location, unavailable(err))
		}
		if !sleep(ctx, backoff(try)) {
			return fmt.Errorf("read %s: %w", s.location, unavailable(err))
		}
	}
}

// needsBarrier reports whether a current read needs a barrier.
func (s *Store) needsBarrier() bool { return s.replicated && !s.opts.LeaderReads }

// barrier writes a delete marker to the check key: once acknowledged,
// every commit acknowledged before it was sent has a lower sequence.
func (s *Store) barrier(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	m := nats.NewMsg(s.prefix + checkKey)
	m.Header.Set(kvOpHeader, kvOpDel)
	ack, err := s.js.PublishMsg(ctx, m, jetstream.WithRetryAttempts(0))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// barriers lets the reads of one process share barriers: a read joins
// the next barrier to be sent (never one already in flight, which may
// have left before the read began), and one barrier is in flight at a
// time.
type barriers struct {
	mu       sync.Mutex
	inflight bool
	next     *flight
}

type flight struct {
	done chan struct{}
	seq  uint64
	err  error
}

// await returns the sequence of a barrier sent after await was called.
func (b *barriers) await(ctx context.Context, send func(context.Context) (uint64, error)) (uint64, error) {
	b.mu.Lock()
	if b.next == nil {
		b.next = &flight{done: make(chan struct{})}
	}
	f := b.next
	if !b.inflight {
		b.launch(send)
	}
	b.mu.Unlock()
	select {
	case <-f.done:
		return f.seq, f.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// launch sends the next barrier; b.mu is held.
func (b *barriers) launch(send func(context.Context) (uint64, error)) {
	f := b.next
	b.next, b.inflight = nil, true
	go func() {
		// Not the reader's context: a read that gives up stops waiting,
		// the others may still use the barrier (send has its deadline).
		f.seq, f.err = send(context.Background())
		close(f.done)
		b.mu.Lock()
		b.inflight = false
		if b.next != nil {
			b.launch(send)
		}
		b.mu.Unlock()
	}()
}
