package natsstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/autonode/autonode/registry"
)

// Atomic batch publish headers (ADR-50; nats.go has no helper for them).
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
)

// JetStream error codes the commit tells apart.
const (
	codeNoPeers               = 10005 // no suitable peers for placement (a peer not yet seen online)
	codeUnavailable           = 10008 // JetStream system temporarily unavailable
	codeNotLeader             = 10009
	codeInsufficientResources = 10023
	codeTooLargeMsg           = 10054
	codeWrongLastSeq          = 10071
	codeDuplicateInFlight     = 10158
	codeWrongLastSeqConst     = 10164 // the same conflict, as replicated streams report it
	codeBatchDisabled         = 10174
	codeBatchIncomplete       = 10176
	codeBatchTooLarge         = 10199
	codeBatchDuplicate        = 10201
	codeBatchInflight         = 10210
)

// errConflict marks a commit refused because a record it read changed.
var errConflict = errors.New("a record the transaction read has changed since")

// errNotSent marks a batch whose messages did not all leave this process.
var errNotSent = errors.New("the batch could not be sent")

// batch is one transaction as messages: each change with the sequence
// its key must still have, then the highest id when it grew, then one
// check per key that was only read. The first message carries the
// transaction's id (Nats-Msg-Id), so that a resent batch that was in fact
// applied is recognised as a duplicate, and, when the transaction ranged
// over the registry, the stream sequence it read at.
type batch struct {
	txid string
	msgs []*nats.Msg
}

// build makes the batch for changes; the mirror is read-locked.
func (s *Store) build(changes []registry.Change, recs *records) (*batch, error) {
	limit := s.maxPayload - headerRoom
	b := &batch{txid: nuid.Next(), msgs: make([]*nats.Msg, 0, len(changes)+len(recs.reads)+1)}
	written := make(map[string]bool, len(changes)+1)
	expect := func(m *nats.Msg, kv string) {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(s.m.seqs[kv], 10))
	}
	maxWritten := math.Inf(-1)
	for _, c := range changes {
		kv, err := threadKV(c.Key)
		if c.Archive {
			kv, err = archiveKV(c.Key)
		}
		if err != nil {
			return nil, err
		}
		m := nats.NewMsg(s.prefix + kv)
		if c.Raw == nil {
			m.Header.Set(kvOpHeader, kvOpDel)
		} else {
			if len(c.Raw) > limit {
				return nil, &TooLargeError{Key: c.Key, Archive: c.Archive, Size: len(c.Raw), Limit: limit, MaxBytes: s.maxPayload}
			}
			m.Data = c.Raw
			if id, err := registry.ParseID(c.Key); err == nil {
				maxWritten = math.Max(maxWritten, float64(id))
			}
		}
		expect(m, kv)
		written[kv] = true
		b.msgs = append(b.msgs, m)
	}
	if maxWritten > s.m.maxID {
		m := nats.NewMsg(s.prefix + maxIDKey)
		m.Data = []byte(registry.PyFloat(maxWritten))
		expect(m, maxIDKey)
		written[maxIDKey] = true
		b.msgs = append(b.msgs, m)
	}
	var only []string
	for kv := range recs.reads {
		if !written[kv] {
			only = append(only, kv)
		}
	}
	slices.Sort(only)
	for _, kv := range only {
		m := nats.NewMsg(s.prefix + checkKey)
		m.Header.Set(kvOpHeader, kvOpDel)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(recs.reads[kv], 10))
		m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, s.prefix+kv)
		b.msgs = append(b.msgs, m)
	}
	first := b.msgs[0]
	first.Header.Set(jetstream.MsgIDHeader, b.txid)
	if recs.all {
		first.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(s.m.seen.Load(), 10))
	}
	return b, nil
}

// commit sends b until the server answers for it: the stream sequence
// of its last message, errConflict (nothing applied; run the transaction
// again), or an error. An acknowledgement that went missing makes the
// outcome unknown until a resend of the same batch is either applied or
// recognised as a duplicate; any other answer after that is
// ErrUnknownOutcome.
func (s *Store) commit(ctx context.Context, b *batch) (uint64, error) {
	lost := false
	for try := 0; ; try++ {
		if try > 0 {
			s.resent.Add(1)
		}
		seq, err := s.publish(ctx, b)
		if err == nil {
			return seq, nil
		}
		var ae *jetstream.APIError
		switch {
		case errors.As(err, &ae):
			switch ae.ErrorCode {
			case codeWrongLastSeq, codeWrongLastSeqConst:
				if lost {
					return 0, s.unknownOutcome(b, err)
				}
				return 0, fmt.Errorf("%w: %v", errConflict, err)
			case codeBatchDuplicate:
				s.deduplicated.Add(1)
				return 0, nil
			case codeDuplicateInFlight:
				lost = true
			case codeUnavailable, codeNotLeader, codeBatchIncomplete, codeBatchInflight:
				// Refused before it was proposed: send it again.
			case codeBatchTooLarge:
				return 0, fmt.Errorf("%s: %w: it has %d messages (%d records changed, plus checks); the server's limit is in its answer: %v; split the operation or raise the server's limit (jetstream { limits { batch { max_msgs: 10000 } } }; autonode serve has 10000)", s.location, ErrBatchTooLarge, len(b.msgs), countWrites(b), err)
			case codeTooLargeMsg:
				return 0, fmt.Errorf("%s: %w: %v", s.location, ErrTooLarge, err)
			case codeBatchDisabled:
				return 0, fmt.Errorf("%s: %w: the stream %s does not accept atomic batches; open the registry for writing once with AutoNode (it turns them on) or set allow_atomic on the stream: %v", s.location, ErrServer, s.streamName, err)
			default:
				if lost {
					return 0, s.unknownOutcome(b, err)
				}
				return 0, fmt.Errorf("%s: %w: %v", s.location, ErrServer, err)
			}
		case errors.Is(err, errNotSent):
			// Nothing was committed: the batch never reached its commit.
		case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
			// No server took the commit message.
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
			errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
			lost = true
		default:
			if lost {
				return 0, s.unknownOutcome(b, err)
			}
			return 0, fmt.Errorf("%s: commit: %w", s.location, err)
		}
		if ctx.Err() != nil || !sleep(ctx, backoff(try)) {
			if lost {
				return 0, s.unknownOutcome(b, err)
			}
			return 0, fmt.Errorf("%s: commit: %w", s.location, unavailable(err))
		}
	}
}

func countWrites(b *batch) int {
	n := 0
	for _, m := range b.msgs {
		if m.Header.Get(jetstream.ExpectedLastSubjSeqSubjHeader) == "" {
			n++
		}
	}
	return n
}

func (s *Store) unknownOutcome(b *batch, err error) error {
	s.unknown.Add(1)
	return fmt.Errorf("%s: %w: the acknowledgement of transaction %s was lost and resending it did not settle whether it was applied (%v); read the records back to see", s.location, ErrUnknownOutcome, b.txid, err)
}

// publish sends b as one atomic batch under a fresh batch id (or as one
// message, when it is one) and waits for the commit's acknowledgement.
func (s *Store) publish(ctx context.Context, b *batch) (uint64, error) {
	n := len(b.msgs)
	if n == 1 {
		// One message is atomic by itself: no batch (on a single server a
		// batch costs a temporary store on disk).
		rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		defer cancel()
		ack, err := s.js.PublishMsg(rctx, b.msgs[0], jetstream.WithRetryAttempts(0))
		if err != nil {
			return 0, err
		}
		if ack.Duplicate {
			s.deduplicated.Add(1)
		}
		return ack.Sequence, nil
	}
	id := nuid.Next()
	for i, m := range b.msgs {
		m.Header.Set(batchIDHeader, id)
		m.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
	}
	b.msgs[n-1].Header.Set(batchCommitHeader, "1")
	for _, m := range b.msgs[:n-1] {
		if err := s.nc.PublishMsg(m); err != nil {
			return 0, fmt.Errorf("%w: %v", errNotSent, err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	ack, err := s.js.PublishMsg(rctx, b.msgs[n-1], jetstream.WithRetryAttempts(0))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// transient reports an error after which the same request may succeed.
func transient(err error) bool {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode {
		case codeUnavailable, codeNotLeader:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionReconnecting)
}

// backoff is the pause before try number try+1: exponential from 1ms to
// 100ms, with jitter so that competing writers spread out.
func backoff(try int) time.Duration {
	d := time.Millisecond << min(try, 7)
	d = min(d, 100*time.Millisecond)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// sleep waits d, or less when ctx ends first (then false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
