package accel

import (
	"sync"
	"syscall"
)

// physicalMemory returns the machine's RAM in bytes, or 0 when unknown. An
// allocation larger than this cannot succeed and would crash the process
// inside the runtime, so alloc refuses it with an error instead.
var physicalMemory = sync.OnceValue(func() int64 {
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		return 0
	}
	return int64(info.Totalram) * int64(info.Unit)
})
