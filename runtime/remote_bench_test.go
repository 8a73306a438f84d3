package runtime

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore/natstest"
)

// BenchmarkSpawnBatchWorkers is the throughput target of the JetStream
// issue: a spawn_batch of 2,000 trivial threads through 3 workers on a
// 3-node cluster (in this process, on loopback, every write fsynced),
// against the same batch run in the spawning process on the JSON file,
// interleaved round by round. It reports threads/s of each and their
// ratio (medians over the rounds).
//
//	go test -run '^$' -bench SpawnBatchWorkers -benchtime 3x ./runtime
func BenchmarkSpawnBatchWorkers(b *testing.B) {
	const n = 2000
	c := natstest.RunCluster(b, 3, natstest.ClusterOptions{})
	urls := c.URLs()
	bucket := fmt.Sprintf("bench%d", bucketSeq.Add(1))
	for i := range 3 {
		w, err := NewWorker(WorkerOptions{
			Runtime: Options{NATS: urls, NATSBucket: bucket, LoadSampler: func() (float64, float64, error) { return 10, 10, nil }},
			Name:    fmt.Sprintf("bench-%d", i), Concurrency: 64,
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx, nil) }()
		b.Cleanup(func() { stop(); <-done })
	}
	remote := newTestRuntime(b, Options{NATS: urls, NATSBucket: bucket, Remote: true})
	local := newTestRuntime(b, Options{})
	batch := func(rt *Runtime) float64 {
		body := trivialBody(b, rt)
		reqs := make([]*SpawnRequest, n)
		for i := range reqs {
			reqs[i] = trivialRequest(body, i, false)
		}
		start := time.Now()
		res := rt.SpawnBatch(context.Background(), reqs, 0)
		for i, r := range res {
			if r.Err != nil {
				b.Fatalf("thread %d: %v", i, r.Err)
			}
			t, err := r.Handle.Wait(context.Background())
			if err != nil || t.Status != registry.StatusSucceeded {
				b.Fatalf("thread %d: %v %v", i, t.Status, err)
			}
		}
		return n / time.Since(start).Seconds()
	}
	var onWorkers, here []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		onWorkers = append(onWorkers, batch(remote))
		here = append(here, batch(local))
	}
	b.StopTimer()
	w, f := median(onWorkers), median(here)
	b.ReportMetric(w, "threads/s-3-workers")
	b.ReportMetric(f, "threads/s-file")
	b.ReportMetric(w/f, "workers/file")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
