//go:build unix

package benchtable

import (
	"os"
	"runtime"
	"syscall"
)

// processUsage returns a finished process's peak resident set in bytes and
// its minor page faults.
func processUsage(ps *os.ProcessState) (maxRSS, faults int64) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, -1
	}
	rss := int64(ru.Maxrss)
	if runtime.GOOS != "darwin" { // darwin reports bytes, the others KiB
		rss *= 1024
	}
	return rss, int64(ru.Minflt)
}
