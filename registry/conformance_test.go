package registry_test

import (
	"path/filepath"
	"testing"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/registrytest"
)

// fileFactory opens JSON-file stores in temporary directories, with a
// small compaction threshold so that compaction runs during the suite.
func fileFactory(compactBytes int64) registrytest.Factory {
	return registrytest.Factory{
		New: func(t *testing.T) registry.Store {
			s, err := registry.OpenFile(filepath.Join(t.TempDir(), registry.DefaultRegistryFile), &registry.FileOptions{CompactBytes: compactBytes})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		Reopen: func(t *testing.T, s registry.Store) registry.Store {
			fs := s.(*registry.FileStore)
			if err := fs.Close(); err != nil {
				t.Fatal(err)
			}
			n, err := registry.OpenFile(fs.Path(), &registry.FileOptions{CompactBytes: compactBytes})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			return n
		},
	}
}

func TestFileStoreConformance(t *testing.T) {
	registrytest.Run(t, fileFactory(0))
}

func TestFileStoreConformanceFrequentCompaction(t *testing.T) {
	registrytest.Run(t, fileFactory(2048))
}
