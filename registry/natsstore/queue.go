package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonode/autonode/registry"
)

// The work queue: a stream with work-queue retention beside the registry's
// bucket (a message is removed once a worker acknowledges it), with a
// subject per device class, stage and thread,
//
//	autonode.q.<bucket>.<cpu|gpu>.<critical|core|base>.<encoded id>
//
// and one durable pull consumer per device class and stage, so that a
// worker drains CRITICAL before CORE before BASE. JetStream has no
// per-message priority: within a stage a worker runs the higher
// priority first among the messages of one fetch, so priority there is
// approximate. The subject names the thread, so that the sweeper can ask
// whether a pending thread still has a message (the record is the truth,
// the message only a hint: it is published after the record is
// committed, and a process that dies in between leaves a pending thread
// that the sweeper enqueues again).
const (
	queuePrefix = "autonode.q."
	// delayHeader holds the milliseconds a job waits before it may start
	// (a retry's delay): the first delivery is put back with that delay.
	delayHeader = "Autonode-Delay-Ms"
	// DefaultLease is the lease of a worker's attempt, and the queue
	// consumers' AckWait, unless QueueOptions says otherwise.
	DefaultLease = 30 * time.Second
)

// DeviceClasses are the queue's device classes: a thread on "cpu" goes to
// cpu, any GPU device (gpu, cuda, metal, opencl) to gpu.
var DeviceClasses = []string{"cpu", "gpu"}

// DeviceClass returns the queue's class of a thread's device.
func DeviceClass(device string) string {
	if device == "" || device == "cpu" {
		return "cpu"
	}
	return "gpu"
}

// Job names one attempt of a thread for the queue.
type Job struct {
	ID       registry.ID
	Attempt  int
	Device   string // the thread's device ("cpu", "gpu", ...)
	Stage    string
	Priority int64
	// Delay holds the attempt back that long after it is enqueued.
	Delay time.Duration
}

// JobOf returns the job the queue holds for t, from its record and queue
// marker.
func JobOf(t *registry.Thread) (Job, bool) {
	q, ok := QueueOf(t)
	if !ok {
		return Job{}, false
	}
	return Job{ID: t.ID, Attempt: q.Attempt, Device: t.Device, Stage: t.Stage, Priority: t.Priority,
		Delay: time.Duration(q.Delay * float64(time.Second))}, true
}

// QueueOptions configures Store.Queue.
type QueueOptions struct {
	// Lease is the consumers' AckWait when this call creates them (an
	// existing consumer keeps its own): how long a message a worker
	// holds without a heartbeat (InProgress) stays with it. 0 means
	// DefaultLease.
	Lease time.Duration
}

// Queue is the registry's work queue. It is safe for concurrent use.
type Queue struct {
	s       *Store
	name    string // stream
	prefix  string // "autonode.q.<bucket>."
	stream  jetstream.Stream
	cons    map[string]jetstream.Consumer // by "<class>.<stage>"
	ackWait time.Duration
}

// queueMsg is a message's body.
type queueMsg struct {
	ID       string `json:"id"`
	Attempt  int    `json:"attempt"`
	Priority int64  `json:"priority,omitempty"`
}

// Queue opens the registry's work queue, creating its stream and
// consumers when they are missing (with the registry bucket's replicas).
func (s *Store) Queue(o QueueOptions) (*Queue, error) {
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	q := &Queue{s: s, name: "AUTONODE_Q_" + s.opts.Bucket, prefix: queuePrefix + s.opts.Bucket + ".", cons: map[string]jetstream.Consumer{}}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
	defer cancel()
	stream, err := retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.Stream, error) {
		st, err := s.js.Stream(ctx, q.name)
		if !errors.Is(err, jetstream.ErrStreamNotFound) || s.opts.ReadOnly {
			return st, err
		}
		st, err = justCreated(s.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        q.name,
			Description: "AutoNode work queue of bucket " + s.opts.Bucket + ": one message per thread attempt left to autonode worker",
			Subjects:    []string{q.prefix + ">"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    s.replicas(),
			Duplicates:  2 * time.Minute,
		}))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return justCreated(s.js.Stream(ctx, q.name))
		}
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("work queue %s on %s: %w", q.name, s.where(), unavailableIf(err))
	}
	q.stream = stream
	for _, class := range DeviceClasses {
		for _, stage := range registry.Stages() {
			key := class + "." + strings.ToLower(stage)
			name := "q-" + class + "-" + strings.ToLower(stage)
			c, err := retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.Consumer, error) {
				c, err := stream.Consumer(ctx, name)
				if !errors.Is(err, jetstream.ErrConsumerNotFound) || s.opts.ReadOnly {
					return c, err
				}
				c, err = justCreated(stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
					Durable:       name,
					Description:   "AutoNode workers take " + stage + " threads for " + class + " here",
					FilterSubject: q.prefix + key + ".>",
					AckPolicy:     jetstream.AckExplicitPolicy,
					AckWait:       o.Lease,
					MaxDeliver:    -1,
					MaxAckPending: -1,
				}))
				if errors.Is(err, jetstream.ErrConsumerExists) {
					return justCreated(stream.Consumer(ctx, name))
				}
				return c, err
			})
			if err != nil {
				return nil, fmt.Errorf("work queue %s: consumer %s: %w", q.name, name, unavailableIf(err))
			}
			q.cons[key] = c
			if w := c.CachedInfo().Config.AckWait; q.ackWait == 0 || w < q.ackWait {
				q.ackWait = w
			}
		}
	}
	return q, nil
}

// AckWait is the shortest AckWait of the queue's consumers: a worker
// heartbeats its messages well within it.
func (q *Queue) AckWait() time.Duration { return q.ackWait }

// Stream is the name of the queue's stream.
func (q *Queue) Stream() string { return q.name }

// subject is the subject of job j.
func (q *Queue) subject(j Job) (string, error) {
	tok, err := EncodeKey(j.ID.Key())
	if err != nil {
		return "", err
	}
	stage := strings.ToLower(j.Stage)
	if stage == "" {
		stage = "base"
	}
	return q.prefix + DeviceClass(j.Device) + "." + stage + "." + tok, nil
}

// msgID is the deduplication id of job j: the same attempt enqueued twice
// (by its spawner and a sweeper) is one message.
func (q *Queue) msgID(j Job) string {
	return q.s.opts.Bucket + "/" + j.ID.Key() + "/" + strconv.Itoa(j.Attempt)
}

// Enqueue publishes one message per job, concurrently, and returns once
// JetStream has acknowledged every one (an attempt enqueued twice is one
// message, by its id), or the first error after retrying what failed for
// up to the store's CommitTimeout.
func (q *Queue) Enqueue(ctx context.Context, jobs ...Job) error {
	if len(jobs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, q.s.opts.CommitTimeout)
	defer cancel()
	msgs := make([]*nats.Msg, len(jobs))
	for i, j := range jobs {
		subj, err := q.subject(j)
		if err != nil {
			return err
		}
		body, _ := json.Marshal(queueMsg{ID: j.ID.Key(), Attempt: j.Attempt, Priority: j.Priority})
		m := nats.NewMsg(subj)
		m.Data = body
		m.Header.Set(jetstream.MsgIDHeader, q.msgID(j))
		if j.Delay > 0 {
			m.Header.Set(delayHeader, strconv.FormatInt(j.Delay.Milliseconds(), 10))
		}
		msgs[i] = m
	}
	for try := 0; ; try++ {
		futures := make([]jetstream.PubAckFuture, 0, len(msgs))
		var failed []*nats.Msg
		var last error
		for _, m := range msgs {
			f, err := q.s.js.PublishMsgAsync(m)
			if err != nil {
				failed, last = append(failed, m), err
				continue
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				failed, last = append(failed, f.Msg()), err
			case <-ctx.Done():
				return fmt.Errorf("enqueue on %s: %w", q.name, unavailable(context.Cause(ctx)))
			}
		}
		if len(failed) == 0 {
			return nil
		}
		if !transient(last) && !errors.Is(last, nats.ErrNoResponders) || !sleep(ctx, backoff(try+3)) {
			return fmt.Errorf("enqueue %d of %d message(s) on %s: %w", len(failed), len(msgs), q.name, unavailableIf(last))
		}
		msgs = failed
	}
}

// Holding returns the subjects on which the queue holds messages (one
// request, however many threads wait): a thread has a message when the
// subject of its job (Subject) is among them.
func (q *Queue) Holding(ctx context.Context) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, q.s.opts.Timeout)
	defer cancel()
	info, err := q.stream.Info(ctx, jetstream.WithSubjectFilter(q.prefix+">"))
	if err != nil {
		return nil, fmt.Errorf("work queue %s: %w", q.name, unavailableIf(err))
	}
	if info.State.Subjects == nil {
		return map[string]uint64{}, nil
	}
	return info.State.Subjects, nil
}

// Subject is the subject of job j's messages: it names the device class,
// the stage and the thread.
func (q *Queue) Subject(j Job) (string, error) { return q.subject(j) }

// Delivery is one message a worker fetched: the attempt it names and the
// message to acknowledge.
type Delivery struct {
	Job
	// Delivered counts the deliveries of the message (1 the first time).
	Delivered uint64
	msg       jetstream.Msg
}

// InProgress resets the message's AckWait: the heartbeat of a worker
// that still works on it.
func (d *Delivery) InProgress() error { return d.msg.InProgress() }

// Ack removes the message from the queue: the attempt is recorded.
func (d *Delivery) Ack() error { return d.msg.Ack() }

// Term removes the message without running it: it is obsolete (the
// record says so).
func (d *Delivery) Term() error { return d.msg.Term() }

// Nak puts the message back, to be delivered again after delay.
func (d *Delivery) Nak(delay time.Duration) error { return d.msg.NakWithDelay(delay) }

// Fetch takes up to max messages for the device classes given (nil: all),
// without waiting: CRITICAL first, then CORE, then BASE, and within what
// it takes, higher priority first (JetStream keeps no priority, so
// priority within a stage is approximate). A message the queue cannot
// read is terminated.
func (q *Queue) Fetch(ctx context.Context, classes []string, max int) ([]*Delivery, error) {
	if classes == nil {
		classes = DeviceClasses
	}
	var out []*Delivery
	var firstErr error
	for _, stage := range registry.Stages() {
		var got []*Delivery
		for _, class := range classes {
			if len(out)+len(got) >= max {
				break
			}
			c := q.cons[class+"."+strings.ToLower(stage)]
			if c == nil {
				return nil, fmt.Errorf("work queue %s: no device class %q (want one of %s)", q.name, class, strings.Join(DeviceClasses, ", "))
			}
			batch, err := c.FetchNoWait(max - len(out) - len(got))
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			for m := range batch.Messages() {
				if d := q.delivery(m, stage, class); d != nil {
					got = append(got, d)
				}
			}
			if err := batch.Error(); err != nil && firstErr == nil && !errors.Is(err, nats.ErrTimeout) {
				firstErr = err
			}
		}
		slices.SortStableFunc(got, func(a, b *Delivery) int {
			switch {
			case a.Priority > b.Priority:
				return -1
			case a.Priority < b.Priority:
				return 1
			}
			return 0
		})
		out = append(out, got...)
		if len(out) >= max {
			break
		}
	}
	if len(out) == 0 && firstErr != nil {
		return nil, fmt.Errorf("fetch from work queue %s: %w", q.name, unavailableIf(firstErr))
	}
	return out, nil
}

// delivery reads message m of consumer stage/class; nil (and the message
// terminated) when it is not one of the queue's.
func (q *Queue) delivery(m jetstream.Msg, stage, class string) *Delivery {
	var body queueMsg
	id, err := registry.ID(0), json.Unmarshal(m.Data(), &body)
	if err == nil {
		id, err = registry.ParseID(body.ID)
	}
	if err != nil || body.Attempt < 1 {
		_ = m.Term()
		return nil
	}
	d := &Delivery{Job: Job{ID: id, Attempt: body.Attempt, Stage: stage, Device: class, Priority: body.Priority}, msg: m, Delivered: 1}
	if md, err := m.Metadata(); err == nil {
		d.Delivered = md.NumDelivered
	}
	if ms, err := strconv.ParseInt(m.Headers().Get(delayHeader), 10, 64); err == nil && ms > 0 {
		d.Delay = time.Duration(ms) * time.Millisecond
	}
	return d
}

// Wake returns a subscription that receives every message published to
// the queue (a hint for idle workers: something was enqueued), and a
// function that ends it. Signals are coalesced: the channel holds one.
func (q *Queue) Wake() (<-chan struct{}, func(), error) {
	ch := make(chan struct{}, 1)
	sub, err := q.s.nc.Subscribe(q.prefix+">", func(*nats.Msg) {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("work queue %s: %w", q.name, err)
	}
	return ch, func() { _ = sub.Unsubscribe() }, nil
}
