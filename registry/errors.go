package registry

import "errors"

// Sentinel errors returned (wrapped with context) by the registry. Use
// errors.Is to tell them apart.
var (
	// ErrNotFound: the thread (or archived thread) does not exist. Reads
	// return it; operations that need a token return ErrAccess instead, so
	// that a caller without the token cannot tell a missing thread from a
	// protected one.
	ErrNotFound = errors.New("no such thread")

	// ErrAccess: the thread does not exist or the token does not match.
	ErrAccess = errors.New("no such thread or wrong token")

	// ErrExists: the target id is already taken.
	ErrExists = errors.New("thread already exists")

	// ErrInvalid: an argument or a record field has a value that is not
	// allowed; the message says which and what is allowed.
	ErrInvalid = errors.New("invalid value")

	// ErrTokenRequired: a new thread needs a token that will protect it.
	ErrTokenRequired = errors.New("a token is required")

	// ErrCycle: a reparent would make a thread its own ancestor.
	ErrCycle = errors.New("lineage cycle")

	// ErrConflict: a manual merge has conflicting keys without a resolution.
	ErrConflict = errors.New("unresolved merge conflicts")

	// ErrCorrupt: a registry, archive or journal file does not parse. The
	// file is never overwritten; Fsck reports the damage and Recover
	// salvages what parses.
	ErrCorrupt = errors.New("corrupt registry file")

	// ErrModified: the registry or archive was changed by another program
	// while AutoNode still had journaled operations for it.
	ErrModified = errors.New("registry changed outside AutoNode")

	// ErrReadOnly: a write was attempted inside View.
	ErrReadOnly = errors.New("read-only transaction")

	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("registry is closed")

	// ErrQuery: a query path is malformed.
	ErrQuery = errors.New("invalid query path")

	// ErrTxClosed: a transaction was used after its View or Update
	// returned.
	ErrTxClosed = errors.New("transaction used after its View or Update returned")

	// ErrVersionMismatch: a record is not at the version a caller expected
	// (Tx.Expect): it changed since the caller read it.
	ErrVersionMismatch = errors.New("record version mismatch")

	// ErrProtected: Claim refuses a thread that already has a token.
	ErrProtected = errors.New("already protected by a token; only its token opens it")

	// ErrJournalLost: the journal was removed or replaced by another
	// program while it held committed operations (see JournalLostError);
	// Recover replays the copy that was saved.
	ErrJournalLost = errors.New("registry journal lost")
)
