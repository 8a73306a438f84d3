package builtins_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/autonode/autonode/runtime"
)

// BenchmarkStarlarkSmallAdd measures a + b on 16-element arrays from a
// script, the loop included: the path `autonode bench numpy` compares with
// NumPy. b.N iterations run in one script.
func BenchmarkStarlarkSmallAdd(b *testing.B) { smallAdd(b, 0) }

// BenchmarkStarlarkSmallAddLargeHeap is BenchmarkStarlarkSmallAdd with
// 300000 arrays kept alive, as in a long script.
func BenchmarkStarlarkSmallAddLargeHeap(b *testing.B) { smallAdd(b, 300000) }

func smallAdd(b *testing.B, keep int) {
	rt, err := runtime.New(runtime.Options{RegistryPath: filepath.Join(b.TempDir(), "r.json"), SessionToken: sessionToken})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	setup := fmt.Sprintf("keep = [accel.full(16, i) for i in range(%d)]\n", keep)
	if _, err := rt.ExecFile(context.Background(), "setup.star", setup); err != nil {
		b.Fatal(err)
	}
	src := fmt.Sprintf("def main():\n    a = accel.rand(16, seed = 1)\n    c = a\n    for _ in range(%d):\n        c = a + a\n    return c\nr = main()\n", b.N)
	b.ResetTimer()
	if _, err := rt.ExecFile(context.Background(), "bench.star", src); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStarlarkLoop is the same loop adding two ints: the interpreter's
// own share of BenchmarkStarlarkSmallAdd.
func BenchmarkStarlarkLoop(b *testing.B) {
	rt, err := runtime.New(runtime.Options{RegistryPath: filepath.Join(b.TempDir(), "r.json"), SessionToken: sessionToken})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	src := fmt.Sprintf("def main():\n    a = 1\n    c = a\n    for _ in range(%d):\n        c = a + a\n    return c\nr = main()\n", b.N)
	b.ResetTimer()
	if _, err := rt.ExecFile(context.Background(), "bench.star", src); err != nil {
		b.Fatal(err)
	}
}
