package gpukern

import (
	"strings"
	"testing"
)

// TestKernelNames checks that the shared kernel library defines every
// kernel Run launches.
func TestKernelNames(t *testing.T) {
	for _, name := range append(append([]string(nil), KernelNames...), ConvertKernels...) {
		if !strings.Contains(Kernels, "KERNEL void "+name+"(") {
			t.Errorf("src/kernels.h does not define %s", name)
		}
	}
}

// TestHelpers checks that the shared helpers are assembled from their
// parts, element-wise operations included.
func TestHelpers(t *testing.T) {
	for _, part := range []string{helperTypes, ElementwiseOps, reductionSteps} {
		if part == "" || !strings.Contains(Helpers, part) {
			t.Fatalf("Helpers lacks a part: %.60q", part)
		}
	}
	if !strings.HasPrefix(Source, Helpers) || !strings.HasSuffix(Source, Kernels) {
		t.Fatal("Source is not Helpers + Kernels")
	}
}
