package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		base, want  int
	}{
		{0, 64 * mb, 200, 1600},           // 4 MB * 16 = 64 MB
		{3 * mb, 64 * mb, 200, 1600},      // below the collector's minimum heap
		{16 * mb, 64 * mb, 200, 300},      // 16 MB * 4 = 64 MB
		{20 * mb, 64 * mb, 100, 220},      // 20 MB * 3.2 = 64 MB
		{30 * mb, 64 * mb, 200, 200},      // 30 MB * 3 = 90 MB: GOGC alone is enough
		{64 * mb, 64 * mb, 200, 200},      // at the floor
		{500 * mb, 64 * mb, 100, 100},     // far above
		{5 * mb, 8 * mb, 100, 100},        // 5 MB * 2 = 10 MB
		{5 * mb, 16 * mb, 100, 220},       // 5 MB * 3.2 = 16 MB
		{0, 1 * mb, 100, 100},             // a floor under the minimum heap
		{4*mb + 1, 64 * mb, 100, 1500},    // just above the minimum heap
		{7 * mb, 64*mb + 1, 50, 815},      // rounded up: 7 MB * 9.15 >= 64 MB + 1
		{1 * mb, 64 * mb, 100000, 100000}, // a base above what the floor needs
	} {
		got := PercentFor(c.live, c.floor, c.base)
		if got != c.want {
			t.Errorf("PercentFor(%d MB, %d MB, %d) = %d, want %d", c.live/mb, c.floor/mb, c.base, got, c.want)
		}
		if goal := goalOf(c.live, got); c.floor > goMinHeap && goal < c.floor {
			t.Errorf("PercentFor(%d, %d, %d) = %d: goal %d is under the floor", c.live, c.floor, c.base, got, goal)
		}
	}
}

// goalOf is the collector's heap goal for a live heap and GOGC.
func goalOf(live uint64, percent int) uint64 {
	return max(goMinHeap*uint64(percent)/100, live+live*uint64(percent)/100)
}

var sink []byte

// churn allocates total bytes of garbage in small pieces and returns how
// many collections ran meanwhile.
func churn(total int) uint64 {
	before := cycles()
	for i := 0; i < total/1024; i++ {
		sink = make([]byte, 1024)
	}
	sink = nil
	return cycles() - before
}

func cycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestKeepCollectsLessOften allocates the same garbage with a small live
// heap, first as GOGC=100 has it, then with a 64 MB floor: the floor must
// cut the collections to about the garbage over 64 MB.
func TestKeepCollectsLessOften(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	runtime.GC()
	const garbage = 512 << 20
	plain := churn(garbage)
	stop := Keep(64<<20, 100)
	defer stop()
	runtime.GC() // the live heap the keeper sees is this test's, a few MB
	waitFor(t, func() bool { return gogc() > 1000 })
	kept := churn(garbage)
	t.Logf("collections for %d MB of garbage: %d with GOGC=100, %d with a 64 MB floor (GOGC %d)", garbage>>20, plain, kept, gogc())
	if want := uint64(garbage/(64<<20) + 3); kept > want {
		t.Errorf("with a 64 MB floor, %d MB of garbage took %d collections, want at most %d", garbage>>20, kept, want)
	}
	if plain < 4*kept {
		t.Errorf("GOGC=100 alone took %d collections, the floor %d: want the floor to cut them by at least 4", plain, kept)
	}
}

// TestKeepGivesGOGCBack checks that a live heap above the floor gets the
// base GOGC, and that stop restores it.
func TestKeepGivesGOGCBack(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	stop := Keep(16<<20, 150)
	runtime.GC()
	waitFor(t, func() bool { return gogc() > 150 })
	live := make([][]byte, 24)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	runtime.GC() // marks the 24 MB
	runtime.GC() // the cleanup of the first cycle's sentinel has run by now or soon
	waitFor(t, func() bool { return gogc() == 150 })
	runtime.KeepAlive(live)
	live = nil
	runtime.GC()
	runtime.GC()
	waitFor(t, func() bool { return gogc() > 150 })
	stop()
	if got := gogc(); got != 150 {
		t.Errorf("after stop, GOGC = %d, want the base 150", got)
	}
	runtime.GC()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if got := gogc(); got != 150 {
		t.Errorf("a collection after stop changed GOGC to %d", got)
	}
}

// waitFor waits up to 5 s for cond, collecting now and then so that the
// keeper's cleanup runs.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC stayed %d", gogc())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}
