package runtime

import (
	"context"
	"testing"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/builtins"
)

// trivialBody returns a Starlark function that returns its argument.
func trivialBody(b testing.TB, rt *Runtime) starlark.Callable {
	g, err := rt.ExecFile(context.Background(), "bench.star", "def trivial(i):\n    return i\n")
	if err != nil {
		b.Fatal(err)
	}
	return g["trivial"].(starlark.Callable)
}

func trivialRequest(body starlark.Callable, i int, wait bool) *builtins.SpawnRequest {
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
	reqs := make([]*builtins.SpawnRequest, b.N)
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
