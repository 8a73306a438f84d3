package natsstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// On a cluster just formed the meta leader refuses placement until it has
// heard from every peer (nats-server: "no suitable peers for placement,
// peer offline", seen on CI as the first create of a bucket): a create
// that gets it tries again within the timeout, like "not found" after a
// create; an error that will not go away is returned at once.
func TestCreateRetriesWhileThePeersAreNotYetSeen(t *testing.T) {
	noPeers := &jetstream.APIError{Code: 400, ErrorCode: codeNoPeers, Description: "no suitable peers for placement, peer offline"}
	if _, err := justCreated(0, noPeers); !errors.Is(err, errNotYet) {
		t.Fatalf("justCreated(no suitable peers) = %v, want errNotYet", err)
	}
	tries := 0
	v, err := retryRacing(context.Background(), 5*time.Second, func(context.Context) (int, error) {
		tries++
		if tries < 3 {
			return justCreated(0, noPeers)
		}
		return 7, nil
	})
	if err != nil || v != 7 || tries != 3 {
		t.Fatalf("retryRacing: %d, %v after %d tries; want 7 after 3", v, err, tries)
	}
	bad := &jetstream.APIError{Code: 400, ErrorCode: 10052, Description: "invalid stream config"}
	tries = 0
	if _, err := retryRacing(context.Background(), 5*time.Second, func(context.Context) (int, error) {
		tries++
		return justCreated(0, bad)
	}); !errors.Is(err, bad) || tries != 1 {
		t.Fatalf("a config error: %v after %d tries; want it at once", err, tries)
	}
}
