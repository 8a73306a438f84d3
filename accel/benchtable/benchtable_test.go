package benchtable

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestRunQuick runs a tiny table (small sizes, one round) to check that
// the references build and the table prints. Set AUTONODE_BENCHTABLE=full
// to run the full table instead (takes about a minute).
func TestRunQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds C references; skipped in -short mode")
	}
	opts := Options{Rounds: 1, StreamN: 1 << 16, GemmSizes: []int{64}, NaiveN: 64, Quick: true}
	if os.Getenv("AUTONODE_BENCHTABLE") == "full" {
		opts = Options{}
	}
	var b strings.Builder
	if err := Run(context.Background(), &b, opts); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	if !strings.Contains(b.String(), "summary:") {
		t.Fatal("no summary line")
	}
}

func TestMissingCompiler(t *testing.T) {
	var b strings.Builder
	opts := Options{Rounds: 1, StreamN: 1 << 10, GemmSizes: []int{8}, NaiveN: 8, Quick: true, CC: "no-such-compiler-xyz"}
	if err := Run(context.Background(), &b, opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "SKIPPED all C references") || !strings.Contains(b.String(), "SKIPPED") {
		t.Fatalf("missing skip notice:\n%s", b.String())
	}
}

// The NumPy header names NumPy's BLAS and warns when it is not OpenBLAS
// (Debian's python3-numpy alone runs on the reference BLAS).
func TestBLASNote(t *testing.T) {
	for _, c := range []struct{ blas, want, not string }{
		{"/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", "BLAS /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", "WARNING"},
		{"/opt/venv/numpy.libs/libopenblas64_p-r0-15028c96.3.21.so", "libopenblas64_p", "WARNING"},
		{"/usr/lib/x86_64-linux-gnu/blas/libblas.so.3", "WARNING: NumPy does not use OpenBLAS", ""},
		{"unknown", "BLAS unknown", "WARNING"},
	} {
		got := blasNote(c.blas)
		if !strings.Contains(got, c.want) || (c.not != "" && strings.Contains(got, c.not)) {
			t.Errorf("blasNote(%q) = %q; want it to contain %q and not %q", c.blas, got, c.want, c.not)
		}
	}
}
