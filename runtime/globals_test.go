package runtime

import (
	"strconv"
	"strings"
	"testing"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/registrytest"
)

// A body the top level started with wait=False spawns while the top
// level is still assigning globals. Reading the module's globals copies
// every slot, so the spawn must not read them itself (go test -race
// caught Module.Globals racing SETGLOBAL): it gets the copy the top
// level made at its own spawn, and the child's cache key still holds the
// global the child reads.
func TestSpawnFromBodyWhileTopLevelAssigns(t *testing.T) {
	rt := newTestRuntime(t, Options{CPUWorkers: 4})
	execScript(t, rt, `
factor = 3
def leaf(x):
    return x * factor
def fan():
    return [spawn(run=leaf, args=[i], caching=True).result for i in range(30)]
t = spawn(id=1, run=fan, ttl=60, wait=False)
n = 0
for i in range(200000):
    n = n + 1
    last = [i]
`)
	r := waitFor(t, rt, 1)
	if r.Status != registry.StatusSucceeded {
		t.Fatalf("fan: %s %s", r.Status, r.Error)
	}
	var want []string
	for i := 0; i < 30; i++ {
		want = append(want, strconv.Itoa(3*i))
	}
	if got := string(r.Result); got != "["+strings.Join(want, ",")+"]" {
		t.Errorf("fan: %s", got)
	}
	children := 0
	for _, th := range registrytest.Threads(t, rt.Store()) {
		if th.ID == 1 {
			continue
		}
		children++
		for _, h := range th.History {
			if strings.Contains(h, "Caching skipped") {
				t.Errorf("child %s: %s", th.ID, h)
			}
		}
	}
	if children != 30 {
		t.Errorf("%d children, want 30", children)
	}
}
