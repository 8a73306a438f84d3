//go:build !linux

package memlimit

// read knows no portable way to ask for RAM or cgroup limits outside
// linux; RLIMIT_AS is read where the platform has it.
func read() Limit { return rlimitAS() }

// AddressSpaceUsed returns 0 (unknown) outside linux.
func AddressSpaceUsed() int64 { return 0 }

// used is unknown outside linux.
func (l Limit) used() (int64, bool) { return 0, false }
