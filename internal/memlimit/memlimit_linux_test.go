package memlimit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeCgroups writes /proc/self/cgroup and mountinfo look-alikes and the
// cgroup directories they name below a temporary directory.
func fakeCgroups(t *testing.T, cgroup string, mounts []string, files map[string]string) (cgroupFile, mountinfoFile, root string) {
	t.Helper()
	root = t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cgroupFile = filepath.Join(root, "cgroup")
	mountinfoFile = filepath.Join(root, "mountinfo")
	for i := range mounts {
		mounts[i] = strings.ReplaceAll(mounts[i], "ROOT", root)
	}
	if err := os.WriteFile(cgroupFile, []byte(cgroup), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mountinfoFile, []byte(strings.Join(mounts, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cgroupFile, mountinfoFile, root
}

func TestCgroupV2(t *testing.T) {
	cg, mi, root := fakeCgroups(t, "0::/user.slice/job\n",
		[]string{"41 23 0:38 / ROOT/unified rw,relatime - cgroup2 cgroup2 rw"},
		map[string]string{
			"unified/memory.max":                    "max\n",
			"unified/user.slice/memory.max":         "4294967296\n",
			"unified/user.slice/job/memory.max":     "max\n",
			"unified/user.slice/job/memory.current": "1073741824\n",
			"unified/user.slice/job/memory.stat":    "anon 700000000\ninactive_file 73741824\n",
			"unified/user.slice/memory.current":     "2147483648\n",
			"unified/user.slice/memory.stat":        "anon 1\ninactive_file 147483648\n",
		})
	l := cgroupLimit(cg, mi)
	if l.Bytes != 4<<30 || l.Source != "cgroup memory.max" || l.dir != filepath.Join(root, "unified/user.slice") || !l.v2 {
		t.Fatalf("v2 limit = %+v; want the parent's 4 GiB", l)
	}
	if left, ok := l.Left(); !ok || left != 4<<30-(2<<30-147483648) {
		t.Errorf("Left() = %d, %v", left, ok)
	}
}

func TestCgroupV1(t *testing.T) {
	cg, mi, _ := fakeCgroups(t, "9:pids:/\n4:memory:/process_api/abc\n0::/\n",
		[]string{
			"32 31 0:29 / ROOT/cpu rw,relatime - cgroup cgroup rw,cpu",
			"35 31 0:32 / ROOT/mem\\040ory rw,relatime - cgroup cgroup rw,memory",
		},
		map[string]string{
			"mem ory/memory.limit_in_bytes":                 "9223372036854771712\n",
			"mem ory/process_api/memory.limit_in_bytes":     "9223372036854771712\n",
			"mem ory/process_api/abc/memory.limit_in_bytes": "2147483648\n",
			"mem ory/process_api/abc/memory.usage_in_bytes": "536870912\n",
			"mem ory/process_api/abc/memory.stat":           "cache 1\ntotal_inactive_file 36870912\n",
		})
	l := cgroupLimit(cg, mi)
	if l.Bytes != 2<<30 || l.Source != "cgroup memory.limit_in_bytes" || l.v2 {
		t.Fatalf("v1 limit = %+v", l)
	}
	if left, ok := l.Left(); !ok || left != 2<<30-500000000 {
		t.Errorf("Left() = %d, %v", left, ok)
	}
	if got := l.String(); got != "2.00GiB (cgroup memory.limit_in_bytes)" {
		t.Errorf("String() = %q", got)
	}
}

func TestCgroupNone(t *testing.T) {
	cg, mi, _ := fakeCgroups(t, "0::/\n", []string{"41 23 0:38 / ROOT/unified rw - cgroup2 cgroup2 rw"},
		map[string]string{"unified/cgroup.procs": ""})
	if l := cgroupLimit(cg, mi); l.Bytes != 0 {
		t.Errorf("no memory.max: %+v, want none", l)
	}
	if l := cgroupLimit(filepath.Join(t.TempDir(), "missing"), mi); l.Bytes != 0 {
		t.Errorf("no cgroup file: %+v", l)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1.00KiB", 3 << 29: "1.50GiB", 5 << 40: "5.00TiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRLIMIT_AS runs this test binary again under ulimit -v and checks
// that Get reports that limit.
func TestRLIMIT_AS(t *testing.T) {
	if v := os.Getenv("MEMLIMIT_CHILD_KB"); v != "" {
		kb, _ := strconv.ParseInt(v, 10, 64)
		l := Get()
		if l.Bytes != kb<<10 || l.Source != "RLIMIT_AS" || !l.AddressSpace {
			fmt.Printf("got %+v\n", l)
			os.Exit(3)
		}
		if left, ok := l.Left(); !ok || left <= 0 || left >= l.Bytes {
			fmt.Printf("Left() = %d, %v\n", left, ok)
			os.Exit(4)
		}
		return
	}
	const kb = 3 << 20 // 3 GiB, less than this machine's RAM
	if Get().Bytes < kb<<10 && Get().Source != "RLIMIT_AS" {
		t.Skipf("this machine has less than 3 GiB (%s)", Get())
	}
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -v %d && exec "$0" -test.run '^TestRLIMIT_AS$'`, kb), os.Args[0])
	cmd.Env = append(os.Environ(), "MEMLIMIT_CHILD_KB="+strconv.Itoa(kb))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("under ulimit -v %d: %v\n%s", kb, err, out)
	}
}
