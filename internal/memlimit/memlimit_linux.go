package memlimit

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// unlimitedCgroup is the value at or above which a cgroup v1 limit means
// "no limit" (the kernel reports a page-aligned MaxInt64).
const unlimitedCgroup = 1 << 62

func read() Limit {
	var ram Limit
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err == nil {
		ram = Limit{Bytes: int64(info.Totalram) * int64(info.Unit), Source: "RAM"}
	}
	return lowest(ram, cgroupLimit("/proc/self/cgroup", "/proc/self/mountinfo"), rlimitAS())
}

// used returns what the limit counts as in use now.
func (l Limit) used() (int64, bool) {
	switch {
	case l.AddressSpace:
		vm := AddressSpaceUsed()
		return vm, vm > 0
	case l.dir != "":
		usageFile, inactiveKey := "memory.usage_in_bytes", "total_inactive_file"
		if l.v2 {
			usageFile, inactiveKey = "memory.current", "inactive_file"
		}
		usage, ok := readLimitFile(filepath.Join(l.dir, usageFile))
		if !ok {
			return 0, false
		}
		return usage - statValue(filepath.Join(l.dir, "memory.stat"), inactiveKey), true
	}
	avail := statValue("/proc/meminfo", "MemAvailable:") * 1024
	if avail <= 0 {
		return 0, false
	}
	return l.Bytes - avail, true
}

// statValue returns the number after key in a "key value" file
// (memory.stat, /proc/meminfo), or 0.
func statValue(path, key string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func rlimitAS() Limit {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err != nil || rl.Cur == ^uint64(0) || rl.Cur >= unlimitedCgroup {
		return Limit{}
	}
	return Limit{Bytes: int64(rl.Cur), Source: "RLIMIT_AS", AddressSpace: true}
}

// cgroupLimit finds the process's cgroup (v2, or the v1 memory
// controller) from cgroupFile and the cgroup mounts from mountinfoFile,
// and returns the smallest limit set on the cgroup or its ancestors.
func cgroupLimit(cgroupFile, mountinfoFile string) Limit {
	groups, err := os.ReadFile(cgroupFile)
	if err != nil {
		return Limit{}
	}
	mounts, err := os.ReadFile(mountinfoFile)
	if err != nil {
		return Limit{}
	}
	var v2Path, v1Path string
	haveV2, haveV1 := false, false
	for _, line := range strings.Split(string(groups), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2Path, haveV2 = parts[2], true
		case hasController(parts[1], "memory"):
			v1Path, haveV1 = parts[2], true
		}
	}
	var best Limit
	if haveV1 {
		if root, mnt, ok := mountFor(mounts, "cgroup", "memory"); ok {
			best = lowest(best, walkLimit(mnt, root, v1Path, "memory.limit_in_bytes", "cgroup memory.limit_in_bytes", false))
		}
	}
	if haveV2 {
		if root, mnt, ok := mountFor(mounts, "cgroup2", ""); ok {
			best = lowest(best, walkLimit(mnt, root, v2Path, "memory.max", "cgroup memory.max", true))
		}
	}
	return best
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// mountFor returns the root (within the hierarchy) and mount point of a
// cgroup file system of type fstype; for cgroup v1, one whose super
// options name the controller.
func mountFor(mountinfo []byte, fstype, controller string) (root, mountPoint string, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mount-point options [optional...] - fstype source super-options
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+3 > len(fields) || fields[sep+1] != fstype {
			continue
		}
		if controller != "" && !hasController(fields[sep+3], controller) {
			continue
		}
		return unescapeMount(fields[3]), unescapeMount(fields[4]), true
	}
	return "", "", false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// walkLimit reads file in the cgroup's directory and each ancestor's
// that is visible under the mount, and returns the smallest limit.
func walkLimit(mountPoint, mountRoot, cgroupPath, file, source string, v2 bool) Limit {
	rel, err := filepath.Rel(mountRoot, cgroupPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		// The cgroup is outside the mounted part of the hierarchy (a
		// cgroup namespace shows "/"): only the mount's root is visible.
		rel = "."
	}
	var best Limit
	for dir := filepath.Join(mountPoint, rel); ; dir = filepath.Dir(dir) {
		if n, ok := readLimitFile(filepath.Join(dir, file)); ok {
			best = lowest(best, Limit{Bytes: n, Source: source, dir: dir, v2: v2})
		}
		if dir == mountPoint || len(dir) <= len(mountPoint) {
			break
		}
	}
	return best
}

// readLimitFile parses a limit file: a byte count, or "max" (none).
func readLimitFile(path string) (int64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(data))
	if s == "max" || s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= unlimitedCgroup {
		return 0, false
	}
	return n, true
}

// AddressSpaceUsed returns the process's virtual memory size (VmSize),
// which RLIMIT_AS bounds, or 0 when it cannot be read.
func AddressSpaceUsed() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	pages, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
