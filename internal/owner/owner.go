// Package owner identifies the processes that run threads and tells
// whether one is still alive, by pid and process start time, so that a
// reused pid is not taken for the process that wrote a record. The engine
// stamps the records it runs with Self; readers (autonode list and show,
// threads(), the web view) use a Checker to show a thread whose owner is
// gone as crashed without waiting for a writer to mark it.
package owner

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/autonode/autonode/registry"
)

// ID identifies a process: host, pid and start time (ms since the epoch).
type ID struct {
	Host  string
	PID   int
	Start int64
}

// String is the owner text stored in records: "pid=N host=H start=T".
func (o ID) String() string {
	return fmt.Sprintf("pid=%d host=%s start=%d", o.PID, o.Host, o.Start)
}

// Parse reads what String wrote.
func Parse(s string) (ID, bool) {
	var o ID
	n := 0
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return o, false
		}
		var err error
		switch k {
		case "pid":
			o.PID, err = strconv.Atoi(v)
			n++
		case "host":
			o.Host = v
			n++
		case "start":
			o.Start, err = strconv.ParseInt(v, 10, 64)
			n++
		}
		if err != nil {
			return o, false
		}
	}
	return o, n == 3 && o.PID > 0
}

var (
	selfOnce sync.Once
	selfID   ID
)

// Self returns this process's identity.
func Self() ID {
	selfOnce.Do(func() {
		host, _ := os.Hostname()
		host = strings.Join(strings.Fields(host), "_")
		if host == "" {
			host = "unknown"
		}
		selfID = ID{Host: host, PID: os.Getpid(), Start: processStart(os.Getpid())}
	})
	return selfID
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

// Alive reports whether the process that wrote owner text s may still
// run. Owners on another host are assumed alive (this process cannot
// tell); an unreadable owner is dead.
func Alive(s string) bool {
	o, ok := Parse(s)
	if !ok {
		return false
	}
	me := Self()
	if o.Host != me.Host {
		return true
	}
	if o.PID == me.PID {
		return o.Start == me.Start
	}
	p, err := process.NewProcess(int32(o.PID))
	if err != nil {
		return false // no such process
	}
	t, err := p.CreateTime()
	if err != nil {
		if exists, e := process.PidExists(int32(o.PID)); e == nil && !exists {
			return false
		}
		return true // it exists but we cannot read it: do not guess
	}
	return t == o.Start
}

// Checker answers Alive once per owner text: a reader that looks at many
// records asks the operating system once per process.
type Checker struct {
	mu sync.Mutex
	m  map[string]bool
}

// Alive is the package's Alive, remembered.
func (c *Checker) Alive(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if alive, ok := c.m[s]; ok {
		return alive
	}
	if c.m == nil {
		c.m = map[string]bool{}
	}
	alive := Alive(s)
	c.m[s] = alive
	return alive
}

// MayBeStale reports whether a record with status may be stale (its owner
// gone) and so read as crashed: pending, waiting, running, or crashed
// itself. A reader that filters by such a status filters after Apply.
func MayBeStale(status string) bool {
	switch status {
	case registry.StatusPending, registry.StatusWaiting, registry.StatusRunning, registry.StatusCrashed:
		return true
	}
	return false
}

// Gone returns why t's record is stale, "owner pid N gone", when the
// record says pending, waiting or running for a process (its owner) that
// is no longer alive; "" otherwise.
func (c *Checker) Gone(t *registry.Thread) string { return c.GoneStatus(t.Status, t.Owner) }

// GoneStatus is Gone for a record's status and owner text (what a
// listing's row holds).
func (c *Checker) GoneStatus(status, ownerText string) string {
	switch status {
	case registry.StatusPending, registry.StatusWaiting:
		if ownerText == "" {
			return "" // not queued anywhere: a branch waiting for run()
		}
	case registry.StatusRunning:
	default:
		return ""
	}
	if ownerText != "" && c.Alive(ownerText) {
		return ""
	}
	if o, ok := Parse(ownerText); ok {
		return fmt.Sprintf("owner pid %d gone", o.PID)
	}
	return "owner gone"
}

// Apply shows t as a reader should: a record whose owner is gone (Gone)
// gets status crashed and, when it has none, the error "crashed: owner
// pid N gone (the record says running)". It returns the note, "" when t
// is left as it is. The registry is not changed: the next writer marks
// such a thread for good (registry.Tx.MarkCrashed).
func (c *Checker) Apply(t *registry.Thread) string {
	note := c.Gone(t)
	if note == "" {
		return ""
	}
	if t.Error == "" {
		t.Error = fmt.Sprintf("crashed: %s (the record says %s)", note, t.Status)
	}
	t.Status = registry.StatusCrashed
	return note
}
