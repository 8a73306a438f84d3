package natsstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonode/autonode/registry"
)

// Defaults and environment.
const (
	// DefaultBucket is the KV bucket that holds the registry.
	DefaultBucket = "autonode"
	// EnvURL names the environment variable with the NATS server URL
	// (the CLI's --nats).
	EnvURL = "AUTONODE_NATS"
	// EnvBucket names the environment variable with the bucket (the
	// CLI's --nats-bucket).
	EnvBucket = "AUTONODE_NATS_BUCKET"

	defaultTimeout       = 5 * time.Second
	defaultCommitTimeout = 30 * time.Second
	defaultMaxAttempts   = 100
	defaultConnectWait   = 3 * time.Second
	// headerRoom is what a record leaves of max_payload for the headers
	// of its message.
	headerRoom = 1024
)

// Options configures Open. URL (or Conn) is required; the rest has
// defaults.
type Options struct {
	// URL is the NATS server (or a comma-separated list of a cluster's
	// servers): nats://HOST:PORT.
	URL string
	// Conn, when set, is used instead of dialling URL; Close leaves it
	// open.
	Conn *nats.Conn
	// Bucket is the KV bucket; "" means DefaultBucket.
	Bucket string
	// Replicas of a bucket this store creates: 0 means 3 when the server
	// is part of a cluster and 1 otherwise. An existing bucket keeps its
	// own.
	Replicas int
	// ConnectWait bounds the wait for a server to accept the connection
	// (one that is still starting); 0 means 3s.
	ConnectWait time.Duration
	// Timeout bounds one request to JetStream; 0 means 5s.
	Timeout time.Duration
	// CommitTimeout bounds how long an Update waits out an unavailable
	// stream (a leader election) and resends a commit whose
	// acknowledgement was lost; 0 means 30s.
	CommitTimeout time.Duration
	// MaxAttempts bounds the runs of an Update's function when other
	// writers keep changing what it read; 0 means 100.
	MaxAttempts int
	// ReadOnly opens the registry for reading: Update fails with
	// registry.ErrReadOnly, and a missing bucket is ErrNoRegistry.
	ReadOnly bool
	// MustExist refuses to create a missing bucket (ErrNoRegistry).
	MustExist bool
	// LeaderReads makes View (and an Update that changes nothing or
	// fails) ask the stream's leader for its last sequence instead of
	// writing a barrier through the stream: one replicated write less
	// per read, but a leader cut off from its cluster keeps answering for
	// itself until it notices (seconds), so such a read may miss commits
	// the new leader acknowledged meanwhile. It changes nothing on a
	// single server, whose reads are always current.
	LeaderReads bool
}

// Stats counts what a store's Updates went through.
type Stats struct {
	// Commits is the number of transactions committed.
	Commits int64
	// Conflicts is the number of commits refused because a record read
	// had changed (each one ran the function again).
	Conflicts int64
	// Resent is the number of commits sent again after a transient error
	// or a lost acknowledgement.
	Resent int64
	// Deduplicated is the number of resent commits that the server
	// recognised as already applied.
	Deduplicated int64
	// Unknown is the number of Updates that ended with ErrUnknownOutcome.
	Unknown int64
}

// Store is the registry on a JetStream KV bucket. It implements
// registry.Store and registry.Locator. It is safe for concurrent use.
type Store struct {
	opts       Options
	nc         *nats.Conn
	ownConn    bool
	js         jetstream.JetStream
	stream     jetstream.Stream
	streamName string
	prefix     string
	m          *mirror
	cc         jetstream.ConsumeContext
	maxPayload int
	location   string
	closed     atomic.Bool
	retryMu    sync.Mutex
	replicated bool
	barriers   barriers
	outs       outputs // see outputs.go
	srcs       sources // see source.go

	commits, conflicts, resent, deduplicated, unknown atomic.Int64
}

var (
	_ registry.Store   = (*Store)(nil)
	_ registry.Locator = (*Store)(nil)
)

var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Open connects to JetStream, creates the bucket when it is missing
// (unless ReadOnly or MustExist), makes sure its stream accepts atomic
// batches, and loads the registry into this process's copy.
func Open(opts Options) (*Store, error) {
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if !bucketName.MatchString(opts.Bucket) {
		return nil, fmt.Errorf("%w: bucket name %q: use letters, digits, '-' and '_'", registry.ErrInvalid, opts.Bucket)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = defaultCommitTimeout
	}
	if opts.ConnectWait <= 0 {
		opts.ConnectWait = defaultConnectWait
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = defaultMaxAttempts
	}
	if opts.Replicas < 0 || opts.Replicas > 5 {
		return nil, fmt.Errorf("%w: %d replicas; want 0 (automatic) or 1 to 5", registry.ErrInvalid, opts.Replicas)
	}
	s := &Store{opts: opts, nc: opts.Conn, streamName: "KV_" + opts.Bucket, prefix: "$KV." + opts.Bucket + "."}
	if s.nc == nil {
		if opts.URL == "" {
			return nil, fmt.Errorf("%w: no NATS server URL given (nats://HOST:PORT)", registry.ErrInvalid)
		}
		nc, err := connect(opts)
		if err != nil {
			return nil, err
		}
		s.nc, s.ownConn = nc, true
	}
	s.location = fmt.Sprintf("bucket %s on %s", opts.Bucket, s.where())
	if err := s.open(); err != nil {
		s.shut()
		return nil, err
	}
	return s, nil
}

// connect dials opts.URL, waiting up to ConnectWait for a server that is
// still starting (autonode serve in the background).
func connect(opts Options) (*nats.Conn, error) {
	up := make(chan struct{}, 1)
	nc, err := nats.Connect(opts.URL, nats.Name("autonode"), nats.Timeout(opts.Timeout),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) { up <- struct{}{} }))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", RedactURL(opts.URL), err)
	}
	if nc.IsConnected() {
		return nc, nil
	}
	select {
	case <-up:
		return nc, nil
	case <-time.After(opts.ConnectWait):
		nc.Close()
		return nil, fmt.Errorf("connect to NATS at %s: %w: no server answered within %v", RedactURL(opts.URL), nats.ErrNoServers, opts.ConnectWait)
	}
}

// where names the server for messages, without credentials.
func (s *Store) where() string {
	if s.opts.URL == "" {
		return s.nc.ConnectedUrlRedacted()
	}
	return RedactURL(s.opts.URL)
}

// RedactURL hides the user names, passwords and tokens of a
// comma-separated list of server URLs, for messages.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

func (s *Store) open() error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return err
	}
	s.js = js
	s.maxPayload = int(s.nc.MaxPayload())
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
	defer cancel()
	if err := s.ensureBucket(ctx); err != nil {
		return err
	}
	s.m = newMirror(s.prefix)
	cc, err := retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.ConsumeContext, error) {
		cons, err := justCreated(s.js.OrderedConsumer(ctx, s.streamName, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{s.prefix + ">"},
			DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		}))
		if err != nil {
			return nil, err
		}
		return cons.Consume(s.m.apply)
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", s.location, unavailableIf(err))
	}
	s.cc = cc
	return s.sync(ctx, false)
}

// ensureBucket finds (or creates) the bucket and its stream, and turns
// on atomic batches when a writer needs them. It waits out a cluster
// that is still electing its leaders.
func (s *Store) ensureBucket(ctx context.Context) error {
	// A look while another process creates the bucket may go unanswered.
	stream, err := retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.Stream, error) {
		return s.js.Stream(ctx, s.streamName)
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if s.opts.ReadOnly || s.opts.MustExist {
			return fmt.Errorf("%s: %w: nothing has been written there yet", s.location, ErrNoRegistry)
		}
		replicas := s.opts.Replicas
		if replicas == 0 {
			replicas = 1
			if s.nc.ConnectedClusterName() != "" {
				replicas = 3
			}
		}
		stream, err = retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.Stream, error) {
			_, err := s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket:      s.opts.Bucket,
				Description: "AutoNode thread registry: t.<id> threads, a.<id> archive, m.* the store's own records",
				History:     1,
				Storage:     jetstream.FileStorage,
				Replicas:    replicas,
			})
			if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
				return justCreated[jetstream.Stream](nil, err)
			}
			return justCreated(s.js.Stream(ctx, s.streamName))
		})
		if err != nil {
			return fmt.Errorf("create %s with %d replica(s) (a cluster needs that many JetStream nodes; Options.Replicas sets it): %w", s.location, replicas, err)
		}
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", s.location, unavailableIf(err))
	}
	if !stream.CachedInfo().Config.AllowAtomicPublish && !s.opts.ReadOnly {
		// Another process may be turning them on at the same moment (two
		// processes that both found the bucket new): look again before
		// each try.
		stream, err = retryRacing(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.Stream, error) {
			st, err := justCreated(s.js.Stream(ctx, s.streamName))
			if err != nil || st.CachedInfo().Config.AllowAtomicPublish {
				return st, err
			}
			cfg := st.CachedInfo().Config
			cfg.AllowAtomicPublish = true
			if _, err := justCreated(s.js.UpdateStream(ctx, cfg)); err != nil {
				return nil, err
			}
			return justCreated(s.js.Stream(ctx, s.streamName))
		})
		if err != nil {
			return fmt.Errorf("%s: enable atomic batch publish on stream %s (needs nats-server 2.12 or later): %w", s.location, s.streamName, unavailableIf(err))
		}
	}
	s.stream = stream
	s.replicated = stream.CachedInfo().Config.Replicas > 1
	return nil
}

// errNotYet marks an error that may go away once a cluster has formed.
var errNotYet = errors.New("not yet")

// justCreated is what a create of a stream, bucket or consumer, or a
// look at one just created (by this process or another), returned, with
// "not found" and "not every node has joined" marked errNotYet: in a
// cluster a create is acknowledged once the meta leader has assigned
// it, and the peer asked a moment later may not serve it yet; and on a
// cluster just formed the meta leader may not yet count every peer as
// online, and refuses placement ("no suitable peers", which a cluster
// with fewer nodes than replicas keeps saying until Options.Timeout).
func justCreated[T any](v T, err error) (T, error) {
	var ae *jetstream.APIError
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) || errors.As(err, &ae) && (ae.ErrorCode == codeInsufficientResources || ae.ErrorCode == codeNoPeers) {
		return v, fmt.Errorf("%w: %w", errNotYet, err)
	}
	return v, err
}

// unavailableIf wraps a transient error with ErrUnavailable.
func unavailableIf(err error) error {
	if transient(err) {
		return unavailable(err)
	}
	return err
}

// retryTransient calls fn, each call bounded by timeout, until it
// succeeds, fails for a reason other than JetStream being unavailable
// (or a cluster still forming), or ctx ends.
func retryTransient[T any](ctx context.Context, timeout time.Duration, fn func(ctx context.Context) (T, error)) (T, error) {
	return retry(ctx, timeout, timeout, fn)
}

// racingRequestTimeout bounds the first try of a request that other
// processes may be making at the same moment (a worker and `run
// --remote` starting together both create the bucket, its queue and
// its streams). A cluster answers one of the creates and may leave the
// others unanswered: they look again after this long, not after the
// whole Options.Timeout.
const racingRequestTimeout = time.Second

// retryRacing is retryTransient for fn that finds or creates something
// other processes may be creating too: each try waits
// racingRequestTimeout at first, twice as long each time after, at most
// timeout. fn passes what it gets back from a create, and from a look
// right after one, through justCreated.
func retryRacing[T any](ctx context.Context, timeout time.Duration, fn func(ctx context.Context) (T, error)) (T, error) {
	return retry(ctx, min(timeout, racingRequestTimeout), timeout, fn)
}

// retry is retryTransient and retryRacing: the first try bounded by
// first, each next one by twice the last, at most limit.
func retry[T any](ctx context.Context, first, limit time.Duration, fn func(ctx context.Context) (T, error)) (T, error) {
	timeout := first
	for try := 0; ; try++ {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		v, err := fn(rctx)
		cancel()
		if err == nil || !transient(err) && !errors.Is(err, errNotYet) || ctx.Err() != nil {
			return v, err
		}
		timeout = min(2*timeout, limit)
		if !sleep(ctx, backoff(try)) {
			return v, err
		}
	}
}

// Location implements registry.Locator.
func (s *Store) Location() string { return s.location }

// ArchiveLocation implements registry.Locator.
func (s *Store) ArchiveLocation() string { return "the archive (a.* keys) of " + s.location }

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.opts.Bucket }

// Stats returns what this store's Updates went through so far.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Conflicts: s.conflicts.Load(), Resent: s.resent.Load(), Deduplicated: s.deduplicated.Load(), Unknown: s.unknown.Load()}
}

// unavailable wraps err with ErrUnavailable unless it already says so.
func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// View implements registry.Store: fn sees every commit acknowledged
// before View was called, from any process.
func (s *Store) View(fn func(tx *registry.Tx) error) error {
	if s.closed.Load() {
		return registry.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
	defer cancel()
	if err := s.sync(ctx, true); err != nil {
		return err
	}
	s.m.mu.RLock()
	defer s.m.mu.RUnlock()
	tx := registry.NewTx(&records{m: s.m}, false)
	defer tx.Close()
	return fn(tx)
}

// Update implements registry.Store. fn runs against this process's copy
// of the registry, brought up to date first; its changes, with a check
// that every record it read is unchanged, are committed as one atomic
// batch. When another writer got in first the server refuses the batch,
// and fn runs again on the new state (at most Options.MaxAttempts
// times, then ErrContention).
func (s *Store) Update(fn func(tx *registry.Tx) error) error {
	if s.closed.Load() {
		return registry.ErrClosed
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("registry %s: %w: it was opened read-only", s.location, registry.ErrReadOnly)
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		var err error
		if attempt == 1 {
			err = s.try(fn)
		} else {
			// A transaction that lost once takes turns with this
			// process's other losers: they would only refuse each
			// other again.
			s.retryMu.Lock()
			err = s.try(fn)
			s.retryMu.Unlock()
		}
		if !errors.Is(err, errConflict) {
			return err
		}
		s.conflicts.Add(1)
		if attempt >= s.opts.MaxAttempts {
			return &ContentionError{Attempts: attempt, Elapsed: time.Since(start), Last: err}
		}
		time.Sleep(backoff(attempt))
	}
}

// try runs fn once on an up-to-date copy and commits what it changed.
func (s *Store) try(fn func(tx *registry.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
	defer cancel()
	var b *batch
	for linear := false; ; linear = true {
		if err := s.sync(ctx, linear); err != nil {
			return err
		}
		var err error
		b, err = s.plan(fn)
		if err == nil && b != nil {
			break // the commit checks that what fn read is current
		}
		if linear || !s.needsBarrier() {
			return err
		}
		// A refusal, or nothing to change, must hold on a copy that is
		// certainly current: run fn again after a barrier.
	}
	seq, err := s.commit(ctx, b)
	if err != nil {
		return err
	}
	s.commits.Add(1)
	// Read your writes: the next transaction of this process finds this
	// one in its copy without waiting.
	wctx, wcancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	_ = s.m.wait(wctx, seq)
	wcancel()
	return nil
}

// plan runs fn on the mirror and turns its changes into a batch; nil
// when fn changed nothing.
func (s *Store) plan(fn func(tx *registry.Tx) error) (*batch, error) {
	s.m.mu.RLock()
	defer s.m.mu.RUnlock()
	recs := &records{m: s.m}
	tx := registry.NewTx(recs, true)
	err := fn(tx)
	tx.Close()
	if err != nil {
		return nil, err
	}
	changes := tx.Changes()
	if len(changes) == 0 {
		return nil, nil
	}
	if recs.bad != nil {
		return nil, recs.bad
	}
	return s.build(changes, recs)
}

// Close implements registry.Store. It stops this process's copy and
// closes the connection Open made.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.shut()
	return nil
}

func (s *Store) shut() {
	if s.cc != nil {
		s.cc.Stop()
	}
	if s.ownConn && s.nc != nil {
		s.nc.Close()
	}
}
