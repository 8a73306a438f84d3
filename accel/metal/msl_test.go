package metal

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autonode/autonode/accel/internal/gpukern"
)

// TestMSLSyntax compiles the MSL library with the host C++ compiler
// against testdata/mslshim, a stand-in for <metal_stdlib>, so that a typo
// or type error in the kernels fails here and not first on a Mac. (MSL is
// C++ with address spaces and attributes; Metal's own compiler checks more.)
func TestMSLSyntax(t *testing.T) {
	cxx, err := exec.LookPath("c++")
	if err != nil {
		t.Skip("no C++ compiler (c++) to check the MSL source with")
	}
	src := filepath.Join(t.TempDir(), "kernels.cpp")
	if err := os.WriteFile(src, []byte(mslSource), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cxx, "-std=c++17", "-fsyntax-only", "-Wno-attributes", "-Itestdata/mslshim",
		"-Dkernel=extern \"C\"", "-Ddevice=", "-Dconstant=const", "-Dthreadgroup=static", src).CombinedOutput()
	if err != nil {
		t.Fatalf("the MSL library does not compile as C++: %v\n%s", err, out)
	}
}

// TestKernelNames checks that the MSL library defines every kernel gpukern
// launches.
func TestKernelNames(t *testing.T) {
	for _, name := range gpukern.KernelNames {
		if !strings.Contains(mslKernels, "kernel void "+name+"(") {
			t.Errorf("kernels.metal does not define %s", name)
		}
	}
}
