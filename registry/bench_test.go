package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var benchSizes = func() []int {
	if os.Getenv("AUTONODE_BENCH_1M") != "" {
		return []int{1_000, 10_000, 100_000, 1_000_000}
	}
	return []int{1_000, 10_000, 100_000}
}()

// writeBenchRegistry writes a seed-shaped registry of n threads, each like
// a seed entry after a spawn (three history lines, small metadata).
func writeBenchRegistry(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), DefaultRegistryFile)
	tab := newTable(emptySnapshot())
	for i := 1; i <= n; i++ {
		t := NewThread(ID(i), stages[i%3])
		t.Metadata = map[string]any{"max_memory_mb": json.Number("1000"), "lr": json.Number("0.1")}
		t.AddHistory("Thread '%s' initialized with priority 1.", t.Name)
		t.AddHistory("Spawning '%s' | ID: %s | Device: CPU | Stage: %s | Priority: 1 | TTL: 10.0s | Metadata: {'max_memory_mb': 1000}", t.Name, t.ID, t.Stage)
		t.AddHistory("CPU computation complete.")
		if i > 1 && i%4 == 0 {
			p := ID(i / 2)
			t.Parent, t.Lineage = &p, []ID{p}
		}
		t.setOwners([]string{tok})
		raw, err := t.MarshalJSON()
		if err != nil {
			b.Fatal(err)
		}
		tab.set(t.Key(), NewRecord(t.Key(), raw, false))
	}
	data, err := tab.encode(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// reportLatency reports the median and 90th percentile of ds.
func reportLatency(b *testing.B, ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(ds[len(ds)*9/10].Microseconds())/1000, "ms-p90")
}

// BenchmarkMutate is one durable mutate (commit with fsync) per op.
func BenchmarkMutate(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			s, err := OpenFile(writeBenchRegistry(b, n), &FileOptions{NoCompactOnClose: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				err := s.Update(func(tx *Tx) error {
					_, _, err := tx.Mutate(ID(i%n+1), map[string]any{"priority": i % 7}, nil, tok)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
			}
			reportLatency(b, ds)
		})
	}
}

// BenchmarkBranch is one durable branch per op.
func BenchmarkBranch(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			s, err := OpenFile(writeBenchRegistry(b, n), &FileOptions{NoCompactOnClose: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				err := s.Update(func(tx *Tx) error {
					_, err := tx.Branch(ID(i%n+1), ID(n+1+i), nil, tok)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
			}
			reportLatency(b, ds)
		})
	}
}

// BenchmarkTransaction10k is one transaction of 10,000 operations (a fork
// of 10,000 children) on a registry of 100,000 threads.
func BenchmarkTransaction10k(b *testing.B) {
	s, err := OpenFile(writeBenchRegistry(b, 100_000), &FileOptions{NoCompactOnClose: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ids := make([]ID, 10_000)
		for k := range ids {
			ids[k] = ID(200_000 + i*10_000 + k)
		}
		if err := s.Update(func(tx *Tx) error { _, err := tx.Fork(1, ids, nil, tok); return err }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen opens a registry and reports the heap it holds as a
// multiple of the file size.
func BenchmarkOpen(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			path := writeBenchRegistry(b, n)
			fi, _ := os.Stat(path)
			var before, after runtime.MemStats
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				runtime.GC()
				runtime.ReadMemStats(&before)
				s, err := OpenFile(path, nil)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(fi.Size()), "heap/file")
				s.Close()
			}
			b.ReportMetric(float64(fi.Size())/1e6, "file-MB")
		})
	}
}

// BenchmarkSeedRewrite is the reference: what the Python seed does for one
// mutate, in Go: parse the whole registry, change one entry, write the
// whole file back indented (without fsync, as the seed).
func BenchmarkSeedRewrite(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			path := writeBenchRegistry(b, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				data, err := os.ReadFile(path)
				if err != nil {
					b.Fatal(err)
				}
				var reg map[string]map[string]any
				if err := json.Unmarshal(data, &reg); err != nil {
					b.Fatal(err)
				}
				reg[ID(i%n+1).Key()]["priority"] = i % 7
				out, err := json.MarshalIndent(reg, "", "  ")
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(path, out, 0o600); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkList decodes every thread of the registry (autonode list --json).
func BenchmarkList(b *testing.B) {
	benchView(b, func(tx *Tx) error { _, err := tx.List(Filter{}); return err })
}

// BenchmarkEachRow lists the rows of every thread, as autonode list does.
func BenchmarkEachRow(b *testing.B) {
	benchView(b, func(tx *Tx) error {
		return tx.EachRow(Filter{}, func(_ Row, err error) error { return err })
	})
}

// benchView runs fn in a View of an open registry, at each size.
func benchView(b *testing.B, fn func(tx *Tx) error) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			s, err := OpenFile(writeBenchRegistry(b, n), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.View(fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkShow opens a registry and reads one thread (autonode show).
func BenchmarkShow(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			path := writeBenchRegistry(b, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := OpenFile(path, &FileOptions{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.View(func(tx *Tx) error { _, err := tx.Get(ID(n / 2)); return err }); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}

// BenchmarkQuery runs the README's query over an open registry.
func BenchmarkQuery(b *testing.B) {
	benchView(b, func(tx *Tx) error { _, err := tx.Query(`@values.#(stage=="CORE")#.id`); return err })
}

// BenchmarkSummarize summarizes an open registry.
func BenchmarkSummarize(b *testing.B) {
	benchView(b, func(tx *Tx) error { tx.Summarize(); return nil })
}

// BenchmarkCreateAutoID is one durable create with the next free id (a
// spawn without an id): the same cost at every size.
func BenchmarkCreateAutoID(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			s, err := OpenFile(writeBenchRegistry(b, n), &FileOptions{NoCompactOnClose: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := s.Update(func(tx *Tx) error { return tx.Create(NewThread(tx.NextID(), ""), tok) }); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
			}
			reportLatency(b, ds)
		})
	}
}

// BenchmarkBranchAutoID is one durable branch to the next free id.
func BenchmarkBranchAutoID(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			s, err := OpenFile(writeBenchRegistry(b, n), &FileOptions{NoCompactOnClose: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := s.Update(func(tx *Tx) error { _, err := tx.Branch(ID(i%n+1), tx.NextID(), nil, tok); return err }); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
			}
			reportLatency(b, ds)
		})
	}
}

// BenchmarkPythonJSONLoad is the reference of BenchmarkShow: Python's
// json.load of the same file and a lookup, timed inside Python (skipped
// without python3).
func BenchmarkPythonJSONLoad(b *testing.B) {
	py, err := exec.LookPath("python3")
	if err != nil {
		b.Skip("python3 not found")
	}
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			path := writeBenchRegistry(b, n)
			script := "import json,sys,time\nt=time.perf_counter()\nd=json.load(open(sys.argv[1]))\nd[sys.argv[2]]\nprint(time.perf_counter()-t)"
			var total float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out, err := exec.Command(py, "-c", script, path, ID(n/2).Key()).Output()
				if err != nil {
					b.Fatal(err)
				}
				f, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
				total += f
			}
			b.ReportMetric(total/float64(b.N)*1000, "ms-in-python")
		})
	}
}
