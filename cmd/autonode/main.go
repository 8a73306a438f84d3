// Command autonode is the AutoNode command-line tool: it inspects and
// maintains the thread registry (list, show, delete, restore, claim,
// summarize, query, lineage, fsck, recover, compact, token).
package main

import "os"

func main() {
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if os.Getenv(envPeakRSS) != "" {
		writePeakRSS(os.Stderr)
	}
	os.Exit(code)
}
