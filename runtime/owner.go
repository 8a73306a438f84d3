package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/shirou/gopsutil/v4/process"
)

// owner identifies a process that runs threads: host, pid and the
// process's start time (ms since the epoch), so that a reused pid is not
// mistaken for the process that wrote the record.
type owner struct {
	host  string
	pid   int
	start int64
}

func (o owner) String() string {
	return fmt.Sprintf("pid=%d host=%s start=%d", o.pid, o.host, o.start)
}

// parseOwner reads what owner.String wrote.
func parseOwner(s string) (owner, bool) {
	var o owner
	n := 0
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return o, false
		}
		var err error
		switch k {
		case "pid":
			o.pid, err = strconv.Atoi(v)
			n++
		case "host":
			o.host = v
			n++
		case "start":
			o.start, err = strconv.ParseInt(v, 10, 64)
			n++
		}
		if err != nil {
			return o, false
		}
	}
	return o, n == 3 && o.pid > 0
}

var (
	selfOnce  sync.Once
	selfOwner owner
)

// self returns this process's owner identity.
func self() owner {
	selfOnce.Do(func() {
		host, _ := os.Hostname()
		host = strings.Join(strings.Fields(host), "_")
		if host == "" {
			host = "unknown"
		}
		selfOwner = owner{host: host, pid: os.Getpid(), start: processStart(os.Getpid())}
	})
	return selfOwner
}

// processStart returns the start time of process pid in ms since the
// epoch, or -1 when it cannot be read.
func processStart(pid int) int64 {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return -1
	}
	t, err := p.CreateTime()
	if err != nil {
		return -1
	}
	return t
}

// ownerAlive reports whether the process that wrote owner text s may
// still run. Owners on another host are assumed alive (this process
// cannot tell); an unreadable owner is dead.
func ownerAlive(s string) bool {
	o, ok := parseOwner(s)
	if !ok {
		return false
	}
	me := self()
	if o.host != me.host {
		return true
	}
	if o.pid == me.pid {
		return o.start == me.start
	}
	p, err := process.NewProcess(int32(o.pid))
	if err != nil {
		return false // no such process
	}
	t, err := p.CreateTime()
	if err != nil {
		if exists, e := process.PidExists(int32(o.pid)); e == nil && !exists {
			return false
		}
		return true // it exists but we cannot read it: do not guess
	}
	return t == o.start
}
