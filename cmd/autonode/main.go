// Command autonode is the AutoNode command-line tool: it inspects and
// maintains the thread registry (list, show, delete, restore, claim,
// summarize, query, lineage, fsck, recover, compact, token).
package main

import (
	"os"
	"runtime/debug"

	"github.com/autonode/autonode/internal/heapfloor"
)

// The collector's settings unless GOGC is set: see main.
const (
	gcPercent = 200
	heapFloor = 64 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		// Array scripts allocate small, short-lived values at a high rate:
		// a collection every doubling of the heap costs them a third of
		// their time; every tripling halves that. Large arrays are pooled
		// and collected by accel itself, so this costs little memory. With
		// a small live heap the goal would still be only 8 MB, a collection
		// every few milliseconds, each stopping the world twice (on a
		// shared 2-core machine that doubled the time of a small a + b):
		// the goal is kept at 64 MB at least.
		debug.SetGCPercent(gcPercent)
		heapfloor.Keep(heapFloor, gcPercent)
	}
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if os.Getenv(envPeakRSS) != "" {
		writePeakRSS(os.Stderr)
	}
	os.Exit(code)
}
