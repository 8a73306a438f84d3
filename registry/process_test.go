package registry

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Child processes: the test binary runs itself with AUTONODE_TEST_CHILD set.
func TestMain(m *testing.M) {
	switch os.Getenv("AUTONODE_TEST_CHILD") {
	case "crash":
		os.Exit(crashChild(os.Getenv("AUTONODE_TEST_PATH"), os.Getenv("AUTONODE_TEST_BASE")))
	case "counter":
		os.Exit(counterChild(os.Getenv("AUTONODE_TEST_PATH"), os.Getenv("AUTONODE_TEST_BASE")))
	case "outputs":
		os.Exit(outputsChild(os.Getenv("AUTONODE_TEST_PATH")))
	}
	os.Exit(m.Run())
}

func child(t *testing.T, mode, path string, base int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AUTONODE_TEST_CHILD="+mode, "AUTONODE_TEST_PATH="+path, "AUTONODE_TEST_BASE="+strconv.Itoa(base))
	cmd.Stderr = os.Stderr
	return cmd
}

// crashChild commits operations forever and prints "ACK ..." after each
// commit returns: creates, mutates, deletes and 50-thread forks, with a
// small compaction threshold so that kills also land inside compactions.
func crashChild(path, baseS string) int {
	base, _ := strconv.Atoi(baseS)
	s, err := OpenFile(path, &FileOptions{CompactBytes: 32 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		id := ID(base + i*100)
		var ack string
		switch {
		case i%10 == 9:
			kids := make([]ID, 50)
			for k := range kids {
				kids[k] = id + ID(k+1)
			}
			err = s.Update(func(tx *Tx) error {
				if err := tx.Create(NewThread(id, ""), tok); err != nil {
					return err
				}
				_, err := tx.Fork(id, kids, nil, tok)
				return err
			})
			ack = fmt.Sprintf("ACK fork %s", id)
		case i%10 == 4:
			prev := id - 100
			err = s.Update(func(tx *Tx) error {
				_, _, err := tx.Mutate(prev, map[string]any{"metadata": map[string]any{"n": i}}, nil, tok)
				return err
			})
			ack = fmt.Sprintf("ACK mutate %s %d", prev, i)
			if err == nil {
				err = s.Update(func(tx *Tx) error { return tx.Create(NewThread(id, ""), tok) })
				ack += fmt.Sprintf("\nACK create %s", id)
			}
		case i%10 == 7:
			prev := id - 300
			err = s.Update(func(tx *Tx) error { _, err := tx.Delete(prev, tok); return err })
			ack = fmt.Sprintf("ACK delete %s", prev)
		default:
			err = s.Update(func(tx *Tx) error { return tx.Create(NewThread(id, ""), tok) })
			ack = fmt.Sprintf("ACK create %s", id)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 4
		}
		fmt.Fprintln(out, ack)
		out.Flush()
	}
}

func TestCrashSafety(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 40
	}
	if v, err := strconv.Atoi(os.Getenv("AUTONODE_CRASH_KILLS")); err == nil {
		kills = v
	}
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	type state struct {
		exists, deleted bool
		n               int
	}
	acked := map[ID]*state{}
	forks := map[ID]bool{}
	for k := 0; k < kills; k++ {
		base := (k + 1) * 1_000_000
		cmd := child(t, "crash", path, base)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var lines []string
		done := make(chan struct{})
		first := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if len(lines) == 0 {
					close(first)
				}
				lines = append(lines, sc.Text())
			}
			close(done)
		}()
		// Every other kill waits for the child's first commit, so that a
		// slow start on a busy machine still leaves operations to check;
		// the others may land while the child opens the registry.
		if k%2 == 0 {
			select {
			case <-first:
			case <-done:
			case <-time.After(10 * time.Second):
			}
		}
		time.Sleep(time.Duration(rng.Intn(60)+1) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: child ended by itself: %v (lines %d)", k, err, len(lines))
		}
		for _, l := range lines {
			f := strings.Fields(l)
			id, _ := ParseID(f[2])
			switch f[1] {
			case "create":
				acked[id] = &state{exists: true}
			case "fork":
				acked[id] = &state{exists: true}
				forks[id] = true
			case "mutate":
				acked[id].n, _ = strconv.Atoi(f[3])
			case "delete":
				acked[id].deleted = true
			}
		}
		// Every acknowledged operation is there after the kill; forks are
		// all-or-nothing even when not acknowledged.
		s, err := OpenFile(path, nil)
		if err != nil {
			t.Fatalf("kill %d: registry does not load: %v", k, err)
		}
		err = s.View(func(tx *Tx) error {
			present := map[ID]*Record{}
			children := map[ID]int{}
			tx.rangeThreads(func(r *Record) bool {
				present[r.ID()] = r
				for _, p := range r.Parents() {
					children[p]++
				}
				return true
			})
			for id, st := range acked {
				th, ok := present[id]
				_, aerr := tx.Archived(id)
				switch {
				case st.deleted && ok:
					return fmt.Errorf("thread %s: deletion acknowledged but still in the registry", id)
				case st.deleted && aerr != nil:
					return fmt.Errorf("thread %s: deleted but in neither file", id)
				case !ok && aerr != nil:
					return fmt.Errorf("acknowledged thread %s lost: in neither file", id)
				case ok && st.n != 0:
					// (An absent thread was deleted by the operation in
					// flight, committed but not yet acknowledged.)
					th, err := decodeThread(th)
					if err != nil {
						return err
					}
					n, _ := th.Metadata["n"].(json.Number)
					if string(n) != strconv.Itoa(st.n) {
						return fmt.Errorf("thread %s: acknowledged mutate n=%d lost (n=%v)", id, st.n, th.Metadata["n"])
					}
				}
			}
			for id, r := range present {
				if int64(id)%100 == 0 && len(r.Parents()) == 0 {
					if c := children[id]; c != 0 && c != 50 {
						return fmt.Errorf("fork %s half applied: %d children", id, c)
					}
				}
			}
			return nil
		})
		if cerr := s.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			if d := os.Getenv("AUTONODE_CRASH_KEEP"); d != "" {
				exec.Command("cp", "-r", filepath.Dir(path), d).Run()
				os.WriteFile(filepath.Join(d, "acks.txt"), []byte(strings.Join(lines, "\n")), 0o600)
			}
			t.Fatalf("kill %d: %v", k, err)
		}
	}
	t.Logf("%d kills, %d acknowledged threads checked after each, %d forks", kills, len(acked), len(forks))
	if len(acked) < kills/2 {
		t.Errorf("only %d operations acknowledged over %d kills: children die too early to test much", len(acked), kills)
	}
}

// counterChild does 250 operations, each a transaction that creates its
// own thread and increments a shared counter on thread 1.0.
func counterChild(path, baseS string) int {
	base, _ := strconv.Atoi(baseS)
	s, err := OpenFile(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	for i := 0; i < 250; i++ {
		err := s.Update(func(tx *Tx) error {
			th, err := tx.Get(1)
			if err != nil {
				return err
			}
			n, _ := th.Metadata["count"].(json.Number)
			c, _ := n.Int64()
			if _, _, err := tx.Mutate(1, map[string]any{"metadata": map[string]any{"count": c + 1}}, nil, tok); err != nil {
				return err
			}
			return tx.Create(NewThread(ID(base+i), ""), tok)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 4
		}
	}
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 5
	}
	return 0
}

func TestConcurrentProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	s := open(t, path, nil)
	if err := s.Update(func(tx *Tx) error { return tx.Create(NewThread(1, ""), tok) }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			errs[p] = child(t, "counter", path, (p+1)*1000).Run()
		}(p)
	}
	// This process keeps reading meanwhile.
	for i := 0; i < 20; i++ {
		s.View(func(tx *Tx) error { tx.Len(); return nil })
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			t.Fatalf("process %d: %v", p, err)
		}
	}
	s.View(func(tx *Tx) error {
		if n := tx.Len(); n != 1001 {
			t.Errorf("%d threads, want 1001 (4 processes x 250 + the counter)", n)
		}
		th, _ := tx.Get(1)
		if c := fmt.Sprint(th.Metadata["count"]); c != "1000" {
			t.Errorf("shared counter = %s, want 1000: updates were lost", c)
		}
		return nil
	})
}
