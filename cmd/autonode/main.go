// Command autonode is the AutoNode command-line tool: it inspects and
// maintains the thread registry (list, show, delete, restore, claim,
// summarize, query, lineage, fsck, recover, compact, token).
package main

import (
	"os"

	"github.com/autonode/autonode/internal/heapfloor"
)

// The collector's settings unless GOGC is set: see main.
const (
	gcPercent = 100
	heapFloor = 64 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		// Array scripts allocate small, short-lived values at a high rate.
		// With a small live heap Go's goal would be only 4 MB, a collection
		// every few milliseconds, each stopping the world twice (on a
		// shared 2-core machine that doubled the time of a small a + b), so
		// the goal is kept at 64 MB at least. Above that, Go's default
		// GOGC: a higher one (200 was the setting before the floor) grows
		// a large heap further before its first collection, and faulting
		// in that fresh memory cost more than the collections it saved.
		heapfloor.Keep(heapFloor, gcPercent)
	}
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if os.Getenv(envPeakRSS) != "" {
		writePeakRSS(os.Stderr)
	}
	os.Exit(code)
}
