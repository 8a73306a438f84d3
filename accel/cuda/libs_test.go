//go:build linux

package cuda

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLibraryDirs checks where the libraries are looked for (defect 4):
// the override, the toolkit from $CUDA_HOME and /usr/local/cuda, and the
// pip wheel layouts of CUDA 13 and 12 in a virtualenv, each only once, in
// that order, with the sonames first.
func TestLibraryDirs(t *testing.T) {
	root := t.TempDir()
	mk := func(parts ...string) string {
		d := filepath.Join(append([]string{root}, parts...)...)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	venvSite := mk("venv", "lib", "python3.12", "site-packages")
	condaSite := mk("conda", "lib", "python3.11", "site-packages")
	toolkit := mk("cuda-12.6")
	targets := mk("cuda-12.6", "targets", "x86_64-linux", "lib")
	env := map[string]string{
		"AUTONODE_CUDA_LIB_PATH": "/opt/a:/opt/b",
		"CUDA_HOME":              toolkit,
		"VIRTUAL_ENV":            filepath.Join(root, "venv"),
		"CONDA_PREFIX":           filepath.Join(root, "conda"),
	}
	dirs := libraryDirs(func(k string) string { return env[k] }, filepath.Glob)
	want := []string{
		"/opt/a", "/opt/b",
		filepath.Join(toolkit, "lib64"), filepath.Join(toolkit, "lib"), targets,
		"/usr/local/cuda/lib64",
		filepath.Join(venvSite, "nvidia", "cu13", "lib"),
		filepath.Join(venvSite, "nvidia", "cuda_nvrtc", "lib"),
		filepath.Join(venvSite, "nvidia", "cublas", "lib"),
		filepath.Join(condaSite, "nvidia", "cuda_nvrtc", "lib"),
		filepath.Join(root, "conda", "lib"),
		"/usr/lib/wsl/lib",
	}
	at := -1
	for _, w := range want {
		i := slices.Index(dirs, w)
		if i < 0 {
			t.Errorf("%s is not searched; dirs: %q", w, dirs)
			continue
		}
		if i <= at {
			t.Errorf("%s is searched at %d, before an earlier entry (%d)", w, i, at)
		}
		at = i
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d] {
			t.Errorf("%s listed twice", d)
		}
		seen[d] = true
	}
	paths := candidates([]string{"libnvrtc.so.13", "libnvrtc.so.12"}, dirs)
	if paths[0] != "libnvrtc.so.13" || paths[1] != "libnvrtc.so.12" ||
		!slices.Contains(paths, filepath.Join(venvSite, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so.12")) {
		t.Errorf("candidates: %q", paths[:min(len(paths), 8)])
	}
}

// TestLoadFromToolkitAndWheel opens the fake NVRTC and cuBLAS from where
// pip puts them (a virtualenv) and from a CUDA 13 toolkit ($CUDA_HOME),
// through the real search, and picks by version against the driver.
func TestLoadFromToolkitAndWheel(t *testing.T) {
	f := buildFake(t)
	dirs := libraryDirs(func(k string) string { return f.env[k] }, filepath.Glob)
	var nvPaths, blasPaths []string
	for _, p := range candidates(nvrtcNames, dirs) {
		if strings.HasPrefix(p, f.dir+"/") {
			nvPaths = append(nvPaths, p)
		}
	}
	for _, p := range candidates(cublasNames, dirs) {
		if strings.HasPrefix(p, f.dir+"/") {
			blasPaths = append(blasPaths, p)
		}
	}
	for _, c := range []struct {
		driver      int
		nvrtc, blas string
	}{{12040, f.nvrtc12, f.cublas12}, {13000, f.nvrtc13, f.cublas13}, {11080, f.nvrtc12, f.cublas12}} {
		nv, err := loadNVRTC(nvPaths, c.driver)
		if err != nil || nv.path != c.nvrtc {
			t.Errorf("driver %d: NVRTC %v, %v; want %s", c.driver, nv, err, c.nvrtc)
		}
		b, err := loadBLAS(blasPaths, c.driver)
		if err != nil || b.path != c.blas {
			t.Errorf("driver %d: cuBLAS %v, %v; want %s", c.driver, b, err, c.blas)
		}
	}
}
