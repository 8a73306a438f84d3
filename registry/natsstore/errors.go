package natsstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/autonode/autonode/registry"
)

// Sentinel errors (wrapped with context). Use errors.Is.
var (
	// ErrNoRegistry: the bucket does not exist and the store was opened
	// with MustExist or ReadOnly, so it was not created.
	ErrNoRegistry = errors.New("no registry in this JetStream bucket")

	// ErrContention: an Update gave up after Options.MaxAttempts runs,
	// each refused because another writer changed a record it had read.
	// Nothing of it was committed (a *ContentionError says more).
	ErrContention = errors.New("the registry kept changing under this transaction")

	// ErrUnknownOutcome: the commit was sent but its acknowledgement was
	// lost (a timeout, a lost connection, a leader that went away) and
	// resending it could not tell whether it had been applied. The
	// transaction may or may not be in the registry: read it back.
	ErrUnknownOutcome = errors.New("the outcome of the commit is unknown")

	// ErrUnavailable: JetStream did not answer in time (no leader for the
	// bucket's stream, no quorum, no server), before anything was sent.
	ErrUnavailable = errors.New("JetStream is unavailable")

	// ErrTooLarge: a record does not fit in one NATS message (the
	// server's max_payload). It also matches registry.ErrInvalid.
	ErrTooLarge = errors.New("record too large for a NATS message")

	// ErrBatchTooLarge: a transaction changes more records than the
	// server accepts in one atomic batch (jetstream limits batch
	// max_msgs: 1,000 by default, 10,000 on nodes natsnode starts).
	ErrBatchTooLarge = errors.New("transaction too large for one atomic batch")

	// ErrServer: the server refused the commit for a reason that is not a
	// conflict (the message says which).
	ErrServer = errors.New("JetStream refused the commit")
)

// ContentionError reports an Update that gave up. It matches
// ErrContention.
type ContentionError struct {
	Attempts int
	Elapsed  time.Duration
	// Last is the server's last refusal.
	Last error
}

func (e *ContentionError) Error() string {
	return fmt.Sprintf("gave up after %d attempts in %v: other writers kept changing the records this transaction read (last refusal: %v); nothing was committed", e.Attempts, e.Elapsed.Round(time.Millisecond), e.Last)
}

// Is makes errors.Is(err, ErrContention) hold.
func (e *ContentionError) Is(target error) bool { return target == ErrContention }

// Unwrap returns the last refusal.
func (e *ContentionError) Unwrap() error { return e.Last }

// TooLargeError reports a record that does not fit in a NATS message. It
// matches ErrTooLarge and registry.ErrInvalid.
type TooLargeError struct {
	Key      string // registry key
	Archive  bool
	Size     int // bytes of JSON
	Limit    int // bytes allowed for a record
	MaxBytes int // the server's max_payload
}

func (e *TooLargeError) Error() string {
	what := "thread " + e.Key
	if e.Archive {
		what = "archive entry " + e.Key
	}
	return fmt.Sprintf("%s is %d bytes as JSON; the NATS server takes records of at most %d bytes (its max_payload is %d, less room for headers): keep large results out of the record", what, e.Size, e.Limit, e.MaxBytes)
}

// Is makes errors.Is hold for ErrTooLarge and registry.ErrInvalid.
func (e *TooLargeError) Is(target error) bool {
	return target == ErrTooLarge || target == registry.ErrInvalid
}
