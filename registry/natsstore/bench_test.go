package natsstore_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore"
	"github.com/autonode/autonode/registry/natsstore/natstest"
)

// benchStores are the stores one registry benchmark compares, all in the
// same run: the JSON file (the reference), one JetStream node, and a
// 3-node JetStream cluster.
func benchStores(b *testing.B) (names []string, stores []registry.Store) {
	fs, err := registry.OpenFile(filepath.Join(b.TempDir(), registry.DefaultRegistryFile), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fs.Close() })
	one := natstest.RunNode(b)
	c := natstest.RunCluster(b, 3, natstest.ClusterOptions{})
	open := func(url string) registry.Store {
		s, err := natsstore.Open(natsstore.Options{URL: url, Bucket: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	return []string{"file", "nats-1", "nats-3"}, []registry.Store{fs, open(one.ClientURL()), open(c.URLs())}
}

const benchTok = "token-benchbenchbenchbench"

// BenchmarkRegistryOp measures registry operations on the three stores,
// interleaved (one operation on each store in turn), and reports each
// store's median latency in ms and its ratio to the file store's.
func BenchmarkRegistryOp(b *testing.B) {
	names, stores := benchStores(b)
	for _, s := range stores {
		if err := s.Update(func(tx *registry.Tx) error {
			return tx.Create(registry.NewThread(1, "CORE"), benchTok)
		}); err != nil {
			b.Fatal(err)
		}
	}
	ops := []struct {
		name string
		fn   func(s registry.Store, i int) error
	}{
		{"rename", func(s registry.Store, i int) error {
			return s.Update(func(tx *registry.Tx) error {
				_, err := tx.Rename(1, "n"+time.Now().Format("150405.000000"), benchTok)
				return err
			})
		}},
		{"branch", func(s registry.Store, i int) error {
			return s.Update(func(tx *registry.Tx) error {
				_, err := tx.Branch(1, tx.NextID(), nil, benchTok)
				return err
			})
		}},
		{"get", func(s registry.Store, i int) error {
			return s.View(func(tx *registry.Tx) error {
				_, err := tx.Get(1)
				return err
			})
		}},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			lat := make([][]time.Duration, len(stores))
			for i := 0; b.Loop(); i++ {
				for k, s := range stores {
					t0 := time.Now()
					if err := op.fn(s, i); err != nil {
						b.Fatal(err)
					}
					lat[k] = append(lat[k], time.Since(t0))
				}
			}
			ref := median(lat[0])
			for k, name := range names {
				m := median(lat[k])
				b.ReportMetric(float64(m)/1e6, "p50-ms-"+name)
				if k > 0 {
					b.ReportMetric(float64(m)/float64(ref), "x-file-"+name)
				}
			}
		})
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
