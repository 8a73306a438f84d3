package natsstore_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natstest"
)

func TestMain(m *testing.M) {
	natstest.NodeMain()
	os.Exit(m.Run())
}

// EnvSoak names the environment variable that makes the fault tests run
// longer, with more faults: a duration such as 3m.
const envSoak = "AUTONODE_NATS_SOAK"

// The workload: groups of groupSize thread ids; every operation works
// within one group, so that the history can be checked group by group.
const groupSize = 5

// slot is what the model knows of one id: absent ('-'), live ('L') or
// archived ('A'), and the name it has.
type slot struct {
	where byte
	name  string
}

type groupState [groupSize]slot

type opKind int

const (
	opCreate opKind = iota
	opRename
	opBranch
	opFork
	opMerge
	opDelete
	opRestore
	opRead
	opReadAll
)

var opNames = []string{"create", "rename", "branch", "fork", "merge", "delete", "restore", "read", "read-all"}

// lin is one operation's input: its kind, its group and the slots it
// names (for fork: source and two targets; for merge: left, right,
// target), with the name it writes.
type lin struct {
	kind  opKind
	group int
	slots []int
	name  string
}

// result is an operation's outcome as the client saw it.
type result struct {
	kind   resultKind
	states []slot // what a read saw, in the order of the input's slots
}

type resultKind int

const (
	resOK       resultKind = iota
	resRefused             // the registry said no (exists, no access, not found)
	resNoEffect            // failed before anything could be applied
	resUnknown             // may or may not have been applied
)

func groupID(group, slot int) registry.ID { return registry.ID(group*10 + slot + 1) }

// apply says whether in's preconditions hold in st and what st becomes
// when in is applied.
func apply(st groupState, in lin) (bool, groupState) {
	s := in.slots
	switch in.kind {
	case opCreate:
		if st[s[0]].where != '-' {
			return false, st
		}
		st[s[0]] = slot{'L', in.name}
	case opRename:
		if st[s[0]].where != 'L' {
			return false, st
		}
		st[s[0]].name = in.name
	case opBranch:
		if st[s[0]].where != 'L' || st[s[1]].where != '-' {
			return false, st
		}
		st[s[1]] = slot{'L', in.name}
	case opFork:
		if st[s[0]].where != 'L' || st[s[1]].where != '-' || st[s[2]].where != '-' {
			return false, st
		}
		st[s[1]], st[s[2]] = slot{'L', in.name + "-1"}, slot{'L', in.name + "-2"}
	case opMerge:
		if st[s[0]].where != 'L' || st[s[1]].where != 'L' || st[s[2]].where != '-' {
			return false, st
		}
		st[s[2]] = slot{'L', in.name}
	case opDelete:
		if st[s[0]].where != 'L' {
			return false, st
		}
		st[s[0]].where = 'A'
	case opRestore:
		if st[s[0]].where != 'A' {
			return false, st
		}
		st[s[0]].where = 'L'
	}
	return true, st
}

// model is the registry as per-thread registers: a group's slots, with
// lineage operations that touch several of them as one transaction.
var model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range history {
			g := op.Input.(lin).group
			by[g] = append(by[g], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any {
		var st groupState
		for i := range st {
			st[i].where = '-'
		}
		return st
	},
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(groupState), input.(lin), output.(result)
		if in.kind == opRead || in.kind == opReadAll {
			for i, s := range in.slots {
				if out.states[i] != st[s] {
					return false, st
				}
			}
			return true, st
		}
		pre, next := apply(st, in)
		switch out.kind {
		case resOK:
			return pre, next
		case resRefused:
			return !pre, st
		case resNoEffect:
			return true, st
		default: // unknown: applied here when it could be; never applied is its linearization at the end
			if pre {
				return true, next
			}
			return true, st
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(lin), output.(result)
		var ids []string
		for _, s := range in.slots {
			ids = append(ids, groupID(in.group, s).Key())
		}
		res := []string{"ok", "refused", "no effect", "unknown"}[out.kind]
		if in.kind == opRead || in.kind == opReadAll {
			var b []string
			for _, s := range out.states {
				b = append(b, fmt.Sprintf("%c:%s", s.where, s.name))
			}
			res = strings.Join(b, " ")
		}
		return fmt.Sprintf("%s(%s %s) -> %s", opNames[in.kind], strings.Join(ids, ","), in.name, res)
	},
}

// history collects operations from concurrent clients.
type history struct {
	mu    sync.Mutex
	ops   []porcupine.Operation
	start time.Time
	count [4]int // by result kind
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(client int, in lin, call int64, out result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ret := h.now()
	if out.kind == resUnknown {
		ret = math.MaxInt64 // it may take effect at any time from its call on
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	h.count[out.kind]++
}

// classify turns an operation's error into its result kind.
func classify(err error) (resultKind, bool) {
	switch {
	case err == nil:
		return resOK, true
	case errors.Is(err, registry.ErrExists), errors.Is(err, registry.ErrAccess), errors.Is(err, registry.ErrNotFound):
		return resRefused, true
	case errors.Is(err, natsstore.ErrUnknownOutcome):
		return resUnknown, true
	case errors.Is(err, natsstore.ErrUnavailable), errors.Is(err, natsstore.ErrContention):
		return resNoEffect, true
	}
	return resUnknown, false
}

// run performs in on s.
func run(s registry.Store, in lin) (result, error) {
	id := func(i int) registry.ID { return groupID(in.group, in.slots[i]) }
	var err error
	switch in.kind {
	case opRead, opReadAll:
		var states []slot
		err = s.View(func(tx *registry.Tx) error {
			states = states[:0]
			for i := range in.slots {
				if th, err := tx.Get(id(i)); err == nil {
					states = append(states, slot{'L', th.Name})
				} else if a, err := tx.Archived(id(i)); err == nil {
					states = append(states, slot{'A', a.Thread.Name})
				} else {
					states = append(states, slot{'-', ""})
				}
			}
			return nil
		})
		return result{states: states}, err
	}
	err = s.Update(func(tx *registry.Tx) error {
		var err error
		switch in.kind {
		case opCreate:
			th := registry.NewThread(id(0), "CORE")
			th.Name = in.name
			err = tx.Create(th, tokA)
		case opRename:
			_, err = tx.Rename(id(0), in.name, tokA)
		case opBranch:
			_, err = tx.Branch(id(0), id(1), map[string]any{"name": in.name}, tokA)
		case opFork:
			_, err = tx.Fork(id(0), []registry.ID{id(1), id(2)}, []map[string]any{{"name": in.name + "-1"}, {"name": in.name + "-2"}}, tokA)
		case opMerge:
			nid := id(2)
			_, err = tx.Merge(id(0), id(1), registry.MergeOptions{NewID: &nid, Token: tokA, Name: in.name})
		case opDelete:
			_, err = tx.Delete(id(0), tokA)
		case opRestore:
			_, err = tx.Restore(id(0), tokA)
		}
		return err
	})
	return result{}, err
}

// randomOp picks an operation on a random group.
func randomOp(r *rand.Rand, groups int, name string) lin {
	in := lin{group: r.IntN(groups), name: name}
	perm := r.Perm(groupSize)
	switch n := r.IntN(100); {
	case n < 18:
		in.kind, in.slots = opCreate, perm[:1]
	case n < 30:
		in.kind, in.slots = opRename, perm[:1]
	case n < 40:
		in.kind, in.slots = opBranch, perm[:2]
	case n < 46:
		in.kind, in.slots = opFork, perm[:3]
	case n < 52:
		in.kind, in.slots = opMerge, perm[:3]
	case n < 60:
		in.kind, in.slots = opDelete, perm[:1]
	case n < 66:
		in.kind, in.slots = opRestore, perm[:1]
	case n < 88:
		in.kind, in.slots = opRead, perm[:1]
	default:
		in.kind, in.slots = opReadAll, []int{0, 1, 2, 3, 4}
	}
	return in
}

// faultLog records the faults injected.
type faultLog struct {
	mu     sync.Mutex
	events []string
	start  time.Time
}

func (f *faultLog) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, fmt.Sprintf("%6.1fs ", time.Since(f.start).Seconds())+fmt.Sprintf(format, args...))
}

// waitLeader waits until the stream has a leader again.
func waitLeader(t *testing.T, c *natstest.Cluster, stream string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if l := c.StreamLeader(stream); l >= 0 {
			return l
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("stream %s has no leader after 60s", stream)
	return -1
}

// leaderReads turns natsstore.Options.LeaderReads on for the clients of
// the fault test (to see the checker catch the stale reads it allows).
var leaderReads = os.Getenv("AUTONODE_NATS_LEADER_READS") != ""

// TestLinearizableUnderFaults runs concurrent lineage operations from
// several clients (each its own connection and copy of the registry) on
// a 3-node cluster whose nodes run in child processes, while it SIGKILLs
// the stream leader and restarts it and cuts the leader off behind the
// route proxies and heals it (the soak adds SIGKILL of every node at
// once, and random kills and partitions); then it
// reads every thread back and checks with porcupine that the history is
// linearizable (every acknowledged operation is in it), and that no
// acknowledged creation is missing. AUTONODE_NATS_SOAK=3m runs it longer
// with a fault every few seconds.
func TestLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	t.Parallel()
	soak := time.Duration(0)
	if v := os.Getenv(envSoak); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", envSoak, v, err)
		}
		soak = d
	}
	c := natstest.RunCluster(t, 3, natstest.ClusterOptions{Proxied: true, Processes: true})
	const clients, groups = 6, 6
	bucket := "linear"
	stream := "KV_" + bucket
	open := func(url string) *natsstore.Store {
		s, err := natsstore.Open(natsstore.Options{URL: url, Bucket: bucket, Timeout: 2 * time.Second, CommitTimeout: 8 * time.Second, LeaderReads: leaderReads})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	// Half the clients know every node; the others know one node each, so
	// that some can reach only a node that is cut off or killed.
	stores := make([]*natsstore.Store, clients)
	for i := range stores {
		url := c.URLs()
		if i%2 == 1 {
			url = c.URL(i / 2 % 3)
		}
		stores[i] = open(url)
	}
	h := &history{start: time.Now()}
	faults := &faultLog{start: h.start}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var odd atomic.Int64
	for cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(cl), uint64(time.Now().UnixNano())))
			for i := 0; !stop.Load(); i++ {
				in := randomOp(r, groups, fmt.Sprintf("c%d-%d", cl, i))
				call := h.now()
				out, err := run(stores[cl], in)
				kind, known := classify(err)
				if !known {
					odd.Add(1)
					t.Logf("client %d: %s: unexpected error (counted as unknown): %v", cl, opNames[in.kind], err)
				}
				if in.kind == opRead || in.kind == opReadAll {
					if err != nil {
						continue // a read that failed saw nothing
					}
				} else {
					out.kind = kind
				}
				h.add(cl, in, call, out)
			}
		}()
	}

	pause := func(d time.Duration) { time.Sleep(d) }
	killLeader := func() {
		l := waitLeader(t, c, stream)
		faults.add("SIGKILL stream leader %s", c.Name(l))
		c.Kill(l)
		pause(time.Second)
		c.Restart(l)
		faults.add("restarted %s", c.Name(l))
	}
	partitionLeader := func(d time.Duration) {
		l := waitLeader(t, c, stream)
		faults.add("partition stream leader %s for %v", c.Name(l), d)
		c.Partition(l, true)
		pause(d)
		c.Partition(l, false)
		faults.add("healed %s", c.Name(l))
	}
	killAll := func() {
		faults.add("SIGKILL all nodes")
		for i := range 3 {
			c.Kill(i)
		}
		pause(time.Second)
		var wgr sync.WaitGroup
		for i := range 3 {
			wgr.Add(1)
			go func() { defer wgr.Done(); c.Restart(i) }()
		}
		wgr.Wait()
		faults.add("restarted all nodes")
	}
	// The partition outlasts an election (4 to 9 s), so that the cut-off
	// leader still answers for itself while the others commit.
	pause(time.Second)
	partitionLeader(14 * time.Second)
	killLeader()
	waitLeader(t, c, stream)
	if soak > 0 {
		pause(2 * time.Second)
		killAll()
		waitLeader(t, c, stream)
		end := time.Now().Add(soak)
		r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
		for time.Now().Before(end) {
			pause(time.Duration(2+r.IntN(4)) * time.Second)
			switch r.IntN(3) {
			case 0:
				killLeader()
			case 1:
				partitionLeader(time.Duration(4+r.IntN(8)) * time.Second)
			default:
				i := r.IntN(3)
				faults.add("partition follower-or-leader %s", c.Name(i))
				c.Partition(i, true)
				pause(time.Duration(3+r.IntN(6)) * time.Second)
				c.Partition(i, false)
				faults.add("healed %s", c.Name(i))
			}
			waitLeader(t, c, stream)
		}
	}
	pause(2 * time.Second)
	stop.Store(true)
	wg.Wait()

	// Read everything back with a fresh client, after every operation. The
	// cluster may still be electing or catching a restarted node up after
	// the last fault, and a machine busy with other tests (-race, packages
	// in parallel) makes that slow: the reads retry, for up to two minutes,
	// with a generous timeout; what they read is checked all the same.
	var final *natsstore.Store
	readDeadline := time.Now().Add(2 * time.Minute)
	for {
		s, err := natsstore.Open(natsstore.Options{URL: c.URLs(), Bucket: bucket, Timeout: 20 * time.Second, CommitTimeout: 20 * time.Second, LeaderReads: leaderReads})
		if err == nil {
			final = s
			t.Cleanup(func() { s.Close() })
			break
		}
		if time.Now().After(readDeadline) {
			t.Fatalf("open the store for the final reads: %v", err)
		}
		t.Logf("open the store for the final reads: %v; again", err)
		time.Sleep(time.Second)
	}
	for g := range groups {
		in := lin{kind: opReadAll, group: g, slots: []int{0, 1, 2, 3, 4}}
		for {
			call := h.now()
			out, err := run(final, in)
			if err == nil {
				h.add(clients, in, call, out)
				break
			}
			if time.Now().After(readDeadline) {
				t.Fatalf("final read of group %d: %v", g, err)
			}
			t.Logf("final read of group %d: %v; again", g, err)
			time.Sleep(time.Second)
		}
	}
	lost := lostCreations(h)

	res, info := porcupine.CheckOperationsVerbose(model, h.ops, 2*time.Minute)
	var st natsstore.Stats
	for _, s := range stores {
		x := s.Stats()
		st.Commits += x.Commits
		st.Conflicts += x.Conflicts
		st.Resent += x.Resent
		st.Deduplicated += x.Deduplicated
		st.Unknown += x.Unknown
	}
	report := fmt.Sprintf("%d operations (%d ok, %d refused, %d no effect, %d unknown outcome; %d unexpected errors), %d faults injected, %d acknowledged creations lost; stores: %+v; porcupine: %s",
		len(h.ops), h.count[resOK], h.count[resRefused], h.count[resNoEffect], h.count[resUnknown], odd.Load(), countFaults(faults.events), lost, st, res)
	t.Log(report)
	for _, e := range faults.events {
		t.Log("fault: " + e)
	}
	if out := os.Getenv("AUTONODE_NATS_REPORT"); out != "" {
		os.WriteFile(out, []byte(report+"\n"+strings.Join(faults.events, "\n")+"\n"), 0o644)
	}
	if res != porcupine.Ok {
		path := filepath.Join(t.TempDir(), "history.html")
		if f, err := os.Create(path); err == nil {
			porcupine.Visualize(model, info, f)
			f.Close()
		}
		t.Fatalf("history is %s (visualization: %s)", res, path)
	}
	if lost != 0 {
		t.Fatalf("%d acknowledged creations lost", lost)
	}
	if h.count[resOK] < 200 {
		t.Errorf("only %d operations succeeded: the cluster did not recover between faults", h.count[resOK])
	}
}

func countFaults(events []string) int {
	n := 0
	for _, e := range events {
		if strings.Contains(e, "SIGKILL") || strings.Contains(e, "partition") {
			n++
		}
	}
	return n
}

// lostCreations counts thread ids that an acknowledged operation created
// but that the final reads found absent: a thread once created is live
// or archived forever.
func lostCreations(h *history) int {
	created := map[registry.ID]bool{}
	final := map[registry.ID]byte{}
	for _, op := range h.ops {
		in, out := op.Input.(lin), op.Output.(result)
		switch {
		case out.kind != resOK:
		case in.kind == opCreate:
			created[groupID(in.group, in.slots[0])] = true
		case in.kind == opBranch:
			created[groupID(in.group, in.slots[1])] = true
		case in.kind == opFork:
			created[groupID(in.group, in.slots[1])] = true
			created[groupID(in.group, in.slots[2])] = true
		case in.kind == opMerge:
			created[groupID(in.group, in.slots[2])] = true
		}
	}
	// The final reads are the last groups' read-alls.
	last := map[int]porcupine.Operation{}
	for _, op := range h.ops {
		if in := op.Input.(lin); in.kind == opReadAll && (last[in.group].Call <= op.Call) {
			last[in.group] = op
		}
	}
	for g, op := range last {
		for i, s := range op.Output.(result).states {
			final[groupID(g, i)] = s.where
		}
	}
	ids := make([]registry.ID, 0, len(created))
	for id := range created {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	n := 0
	for _, id := range ids {
		if w, ok := final[id]; !ok || w == '-' {
			n++
		}
	}
	return n
}
