package runtime

import (
	"context"
	"testing"
	"time"

	"go.starlark.net/starlark"
)

// trivialBody returns a Starlark function that returns its argument.
func trivialBody(b testing.TB, rt *Runtime) starlark.Callable {
	g, err := rt.ExecFile(context.Background(), "bench.star", "def trivial(i):\n    return i\n")
	if err != nil {
		b.Fatal(err)
	}
	return g["trivial"].(starlark.Callable)
}

func trivialRequest(body starlark.Callable, i int, wait bool) *SpawnRequest {
	req := DefaultSpawnRequest()
	req.Run, req.Args, req.Caching, req.Wait = body, starlark.Tuple{starlark.MakeInt(i)}, false, wait
	return req
}

// BenchmarkSpawn measures one spawn(run=trivial) that waits for its end:
// validation, three persisted transitions (pending, running, succeeded),
// scheduling and the body's run.
func BenchmarkSpawn(b *testing.B) {
	rt := newTestRuntime(b, Options{})
	body := trivialBody(b, rt)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := rt.Spawn(context.Background(), trivialRequest(body, i, true)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "threads/s")
}

// BenchmarkSpawnParallel spawns from many goroutines at once: the
// committer groups their registry writes.
func BenchmarkSpawnParallel(b *testing.B) {
	rt := newTestRuntime(b, Options{})
	body := trivialBody(b, rt)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := rt.Spawn(context.Background(), trivialRequest(body, i, true)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "threads/s")
}

// BenchmarkSpawnBatch is spawn_batch: b.N threads created in one
// transaction, then run and waited for.
func BenchmarkSpawnBatch(b *testing.B) {
	rt := newTestRuntime(b, Options{})
	body := trivialBody(b, rt)
	reqs := make([]*SpawnRequest, b.N)
	for i := range reqs {
		reqs[i] = trivialRequest(body, i, false)
	}
	b.ResetTimer()
	res := rt.SpawnBatch(context.Background(), reqs, 0)
	for _, r := range res {
		if r.Err != nil {
			b.Fatal(r.Err)
		}
		if _, err := r.Handle.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "threads/s")
}

// loopSrc is a tight Starlark loop, the worst case for the guard that
// checks limits between instructions.
const loopSrc = "def loop(n):\n    x = 0\n    for i in range(n):\n        x = i + 1\n    return x\n"

// BenchmarkGuard compares a tight loop run by the runtime (its guard
// checks steps, memory and cancellation every 8 instructions) with the
// same loop on a bare starlark.Thread, the reference, interleaved in each
// iteration; it reports both per loop iteration and their ratio:
// go test -run '^$' -bench Guard -count 5 ./runtime
func BenchmarkGuard(b *testing.B) {
	rt := newTestRuntime(b, Options{})
	g := execScript(b, rt, loopSrc)
	const n = 200_000
	arg := starlark.Tuple{starlark.MakeInt(n)}
	var bare, guarded time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := starlark.Call(&starlark.Thread{}, g["loop"], arg, nil); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := rt.Call(context.Background(), "loop", arg...); err != nil {
			b.Fatal(err)
		}
		bare, guarded = bare+t1.Sub(t0), guarded+time.Since(t1)
	}
	per := float64(b.N * n)
	b.ReportMetric(float64(bare.Nanoseconds())/per, "bare-ns/iter")
	b.ReportMetric(float64(guarded.Nanoseconds())/per, "guarded-ns/iter")
	b.ReportMetric(float64(guarded)/float64(bare), "guarded/bare")
}
