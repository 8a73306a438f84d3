package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/autonode/autonode/runtime"
)

// interruptible returns a context that the first SIGINT or SIGTERM
// cancels, with a cause wrapping runtime.ErrInterrupted: the runtime then
// cancels every thread and records it cancelled. A second signal exits the
// process at once with the signal's exit status. stop releases the
// signals; received returns the first signal, or nil.
func interruptible(parent context.Context, stderr io.Writer) (ctx context.Context, stop func(), received func() os.Signal) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(parent)
	var first atomic.Pointer[os.Signal]
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			first.Store(&s)
			fmt.Fprintf(stderr, "autonode: %s: cancelling the running threads (%s again exits at once)\n", signalName(s), signalName(s))
			cancel(fmt.Errorf("%w by %s", runtime.ErrInterrupted, signalName(s)))
		case <-done:
			return
		}
		select {
		case s := <-ch:
			fmt.Fprintf(stderr, "autonode: %s again: exiting at once\n", signalName(s))
			os.Exit(signalExit(s))
		case <-done:
		}
	}()
	var once atomic.Bool
	stop = func() {
		if once.CompareAndSwap(false, true) {
			signal.Stop(ch)
			close(done)
			cancel(nil)
		}
	}
	received = func() os.Signal {
		if s := first.Load(); s != nil {
			return *s
		}
		return nil
	}
	return ctx, stop, received
}

// signalName is how messages name a signal: SIGINT, SIGTERM.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// signalExit is the exit status of a process ended by s, as shells
// report it: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
func signalExit(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return exitFailure
}
