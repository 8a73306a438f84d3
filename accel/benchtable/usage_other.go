//go:build !unix

package benchtable

import "os"

// processUsage reports nothing where the OS gives no rusage.
func processUsage(*os.ProcessState) (maxRSS, faults int64) { return 0, -1 }
