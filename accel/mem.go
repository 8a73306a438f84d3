package accel

import "github.com/autonode/autonode/internal/memlimit"

// physicalMemory returns the memory this process may use in bytes (the
// machine's RAM, lowered by a cgroup's memory limit and by RLIMIT_AS), or 0
// when unknown. An allocation larger than this cannot succeed and would
// crash the process inside the runtime, so alloc refuses it with an error
// instead.
func physicalMemory() int64 { return memlimit.Get().Bytes }

// memorySource names what sets physicalMemory: "RAM", "RLIMIT_AS", "cgroup
// memory.max", ...
func memorySource() string { return memlimit.Get().Source }
