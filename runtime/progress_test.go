package runtime

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestBatchProgress(t *testing.T) {
	var mu sync.Mutex
	var calls [][2]int
	rt := newTestRuntime(t, Options{Progress: func(label string, done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if label != "spawn_batch" {
			t.Errorf("label %q", label)
		}
		calls = append(calls, [2]int{done, total})
	}})
	_, err := rt.ExecFile(context.Background(), "p.star", `
results = spawn_batch([{"run": lambda i: i, "args": (i,), "caching": False} for i in range(25)])
`)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(calls)
		last := [2]int{}
		if n > 0 {
			last = calls[n-1]
		}
		mu.Unlock()
		if last == [2]int{25, 25} {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress never reached 25/25: %v", calls)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls[0] != [2]int{0, 25} || len(calls) != 26 {
		t.Errorf("progress calls = %v", calls)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] != calls[i-1][0]+1 {
			t.Errorf("progress not monotonic: %v", calls)
		}
	}
}
