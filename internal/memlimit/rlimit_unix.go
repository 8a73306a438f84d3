//go:build unix && !linux

package memlimit

import "syscall"

func rlimitAS() Limit {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err != nil || rl.Cur == ^uint64(0) || rl.Cur >= 1<<62 {
		return Limit{}
	}
	return Limit{Bytes: int64(rl.Cur), Source: "RLIMIT_AS", AddressSpace: true}
}
