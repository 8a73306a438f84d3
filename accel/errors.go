package accel

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package that is about one of
// these cases wraps the matching sentinel, so callers can tell the cases apart
// with errors.Is while showing the full message to users. Cancellation wraps
// the context's own error (context.Canceled or context.DeadlineExceeded).
var (
	// ErrShape reports shapes that do not fit the operation: operands that do
	// not broadcast, misaligned matrix products, bad reshapes, ragged input.
	ErrShape = errors.New("shape error")
	// ErrDType reports an unknown dtype or dtypes that an operation cannot mix.
	ErrDType = errors.New("dtype error")
	// ErrIndex reports an index or axis outside an array's bounds.
	ErrIndex = errors.New("index error")
	// ErrArgument reports any other invalid argument (a zero step, a negative
	// size, a lower clip bound above the upper one, an empty reduction).
	ErrArgument = errors.New("invalid argument")
	// ErrBudget reports an allocation that would exceed the memory budget.
	ErrBudget = errors.New("memory budget exceeded")
	// ErrFreed reports use of an array after Free.
	ErrFreed = errors.New("array was freed")
	// ErrClosed reports an allocation through an Exec after Close.
	ErrClosed = errors.New("exec closed")
	// ErrDevice reports an unknown or unavailable device, or operands that
	// live on different devices.
	ErrDevice = errors.New("device error")
	// ErrReadOnly reports a write into a read-only array (see
	// Array.SetReadOnly): a frozen Starlark array, or a view of one.
	ErrReadOnly = errors.New("array is read-only")
	// ErrUnsupported is returned by a Device's Run for an operation the
	// device does not implement; the Exec then runs it on the host.
	ErrUnsupported = errors.New("operation not supported by device")
)

// opError is an error with a complete, user-facing message that also matches
// a sentinel under errors.Is.
type opError struct {
	msg  string
	kind error
}

func (e *opError) Error() string { return e.msg }
func (e *opError) Unwrap() error { return e.kind }

// errorf returns an error whose text is the formatted message and which
// wraps kind.
func errorf(kind error, format string, args ...any) error {
	return &opError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// wrapCtx prefixes a context's error with the operation name; the result
// still matches context.Canceled / context.DeadlineExceeded.
func wrapCtx(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
