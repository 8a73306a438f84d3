package webui_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/runtime"
)

// testToken protects the threads that the tests make.
const testToken = "0123456789abcdef0123456789abcdef"

// runScript runs a .star file through the real runtime on the registry at
// reg, as `autonode run` does.
func runScript(t testing.TB, reg, file string) string {
	t.Helper()
	out, err := execScript(reg, file)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// execScript is runScript for a goroutine: it returns the error.
func execScript(reg, file string) (string, error) {
	var out bytes.Buffer
	rt, err := runtime.New(runtime.Options{RegistryPath: reg, Stdout: &out, Stderr: &out, TopLevelHost: true})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = rt.ExecFile(ctx, file, nil)
	if cerr := rt.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("run %s: %w\n%s", file, err, out.String())
	}
	return out.String(), nil
}

// lineageRegistry is a registry made by scripts/lineage.star.
func lineageRegistry(t testing.TB) string {
	t.Helper()
	reg := filepath.Join(t.TempDir(), registry.DefaultRegistryFile)
	runScript(t, reg, filepath.Join("..", "scripts", "lineage.star"))
	return reg
}

// openStore opens a registry read-only (no compaction on close) for the
// view, closed with the test.
func openStore(t testing.TB, reg string) *registry.FileStore {
	t.Helper()
	s, err := registry.OpenFile(reg, &registry.FileOptions{NoCompactOnClose: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// bigRegistry writes n threads in families of about familySize: each
// thread but a family's first branches from an earlier thread of its
// family, one in twenty is a merge of two, one family's root is deleted
// (archived), and statuses, stages, devices and durations vary as in a
// real registry. It is seeded, so the same n gives the same registry.
func bigRegistry(t testing.TB, n, familySize int) string {
	t.Helper()
	reg := filepath.Join(t.TempDir(), registry.DefaultRegistryFile)
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	statuses := []string{registry.StatusSucceeded, registry.StatusSucceeded, registry.StatusSucceeded, registry.StatusFailed,
		registry.StatusCached, registry.StatusTimedOut, registry.StatusPending, registry.StatusRunning}
	base := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	err = s.Update(func(tx *registry.Tx) error {
		var family []registry.ID
		for i := 1; i <= n; i++ {
			id := registry.ID(i)
			stage := registry.Stages()[rng.IntN(3)]
			th := registry.NewThread(id, stage)
			th.Name = fmt.Sprintf("%s-%s-%d", []string{"train", "eval", "sweep", "prep"}[rng.IntN(4)], []string{"resnet", "bert", "mlp", "gbm", "vit"}[rng.IntN(5)], i)
			th.Priority = int64(rng.IntN(10))
			th.Device = []string{"cpu", "cpu", "gpu"}[rng.IntN(3)]
			th.Metadata = map[string]any{"lr": float64(rng.IntN(100)) / 1000, "seed": int64(rng.IntN(1000))}
			if i%familySize == 1 || familySize == 1 {
				family = family[:0]
			} else {
				p := family[rng.IntN(len(family))]
				th.Parent = &p
				pt, err := tx.Get(p)
				if err != nil {
					return err
				}
				th.Lineage = append(append([]registry.ID(nil), pt.Lineage...), p)
				if len(family) > 2 && rng.IntN(20) == 0 {
					other := family[rng.IntN(len(family))]
					if other != p {
						th.MergedFrom = []registry.ID{p, other}
					}
				}
			}
			family = append(family, id)
			th.Status = statuses[rng.IntN(len(statuses))]
			start := base.Add(time.Duration(i) * 7 * time.Second)
			th.History = []string{fmt.Sprintf("[%s] Thread '%s' initialized with priority %d.", start.Format("2006-01-02 15:04:05"), th.Name, th.Priority)}
			if th.Status != registry.StatusPending {
				th.StartedAt = start.Format(time.RFC3339Nano)
				th.DeviceUsed = "cpu"
			}
			if th.Status != registry.StatusPending && th.Status != registry.StatusRunning {
				d := time.Duration(rng.IntN(90000)) * time.Millisecond
				th.FinishedAt = start.Add(d).Format(time.RFC3339Nano)
				th.DurationMS = float64(d.Milliseconds())
				th.Result = []byte(fmt.Sprintf(`{"loss": %.4f}`, rng.Float64()))
			}
			if th.Status == registry.StatusFailed {
				th.Error = "ValueError: loss is NaN at step 1200"
			}
			if err := tx.Create(th, testToken); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n > familySize {
		// A deleted root: its children point at an archived thread.
		if err := s.Update(func(tx *registry.Tx) error {
			_, err := tx.Delete(registry.ID(familySize+1), testToken)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return reg
}

// artefacts is where screenshots go: $AUTONODE_UI_ARTEFACTS, else a
// temporary directory named in the test log.
func artefacts(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("AUTONODE_UI_ARTEFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := t.TempDir()
	t.Logf("screenshots in %s (set AUTONODE_UI_ARTEFACTS to keep them)", d)
	return d
}
