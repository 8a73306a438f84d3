// Command autonode is the AutoNode command-line tool: it inspects and
// maintains the thread registry (list, show, delete, restore, claim,
// summarize, query, lineage, fsck, recover, compact, token).
package main

import (
	"os"
	"runtime/debug"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// Array scripts allocate small, short-lived values at a high rate:
		// a collection every doubling of the heap costs them a third of
		// their time; every tripling halves that. Large arrays are pooled
		// and collected by accel itself, so this costs little memory.
		debug.SetGCPercent(200)
	}
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if os.Getenv(envPeakRSS) != "" {
		writePeakRSS(os.Stderr)
	}
	os.Exit(code)
}
