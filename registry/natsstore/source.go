package natsstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Sources of the Starlark files whose functions run on workers, in a KV
// bucket of their own beside the registry ("AUTONODE_SRC_<bucket>"), each
// under the SHA-256 of its bytes: a thread's record names the digest, so
// that the 2,000 threads of one spawn_batch carry the script once.

var digestRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// sources is a store's handle on its sources bucket, opened on first use.
type sources struct {
	mu sync.Mutex
	kv jetstream.KeyValue
}

func (s *Store) sourceKV(ctx context.Context) (jetstream.KeyValue, error) {
	s.srcs.mu.Lock()
	defer s.srcs.mu.Unlock()
	if s.srcs.kv != nil {
		return s.srcs.kv, nil
	}
	name := "AUTONODE_SRC_" + s.opts.Bucket
	kv, err := retryTransient(ctx, s.opts.Timeout, func(ctx context.Context) (jetstream.KeyValue, error) {
		kv, err := s.js.KeyValue(ctx, name)
		if !errors.Is(err, jetstream.ErrBucketNotFound) || s.opts.ReadOnly {
			return kv, err
		}
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      name,
			Description: "AutoNode: sources of the Starlark files whose functions run on workers, by SHA-256",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    s.replicas(),
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			return s.js.KeyValue(ctx, name)
		}
		return kv, err
	})
	if err != nil {
		return nil, fmt.Errorf("sources bucket %s on %s: %w", name, s.where(), unavailableIf(err))
	}
	s.srcs.kv = kv
	return kv, nil
}

// PutSource stores a file's source and returns its digest (SHA-256, hex).
// Storing the same bytes again changes nothing.
func (s *Store) PutSource(ctx context.Context, src []byte) (string, error) {
	sum := sha256.Sum256(src)
	digest := hex.EncodeToString(sum[:])
	if limit := s.maxPayload - headerRoom; len(src) > limit {
		return "", fmt.Errorf("%w: a source of %d bytes; the NATS server takes at most %d (its max_payload)", ErrTooLarge, len(src), limit)
	}
	kv, err := s.sourceKV(ctx)
	if err != nil {
		return "", err
	}
	if _, err := kv.Get(ctx, digest); err == nil {
		return digest, nil
	}
	if _, err := kv.Put(ctx, digest, src); err != nil {
		return "", fmt.Errorf("store source %s: %w", digest[:12], unavailableIf(err))
	}
	return digest, nil
}

// Source returns the source stored under digest.
func (s *Store) Source(ctx context.Context, digest string) ([]byte, error) {
	if !digestRe.MatchString(digest) {
		return nil, fmt.Errorf("source digest %q: want 64 hex digits", digest)
	}
	kv, err := s.sourceKV(ctx)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, digest)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", digest[:12], unavailableIf(err))
	}
	src := e.Value()
	if sum := sha256.Sum256(src); hex.EncodeToString(sum[:]) != digest {
		return nil, fmt.Errorf("source %s: the stored bytes do not have that digest", digest[:12])
	}
	return src, nil
}
