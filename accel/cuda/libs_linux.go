package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ebitengine/purego"
)

// Where CUDA's libraries are looked for. The bare sonames come first (the
// dynamic loader finds them through LD_LIBRARY_PATH and the ld cache), then
// every directory libraryDirs lists, joined with each soname.
var (
	driverNames = []string{"libcuda.so.1", "libcuda.so"}
	nvrtcNames  = []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"}
	cublasNames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}
)

// Candidate paths for each library; tests replace them.
var (
	driverPaths = candidates(driverNames, libraryDirs(os.Getenv, filepath.Glob))
	nvrtcPaths  = candidates(nvrtcNames, libraryDirs(os.Getenv, filepath.Glob))
	cublasPaths = candidates(cublasNames, libraryDirs(os.Getenv, filepath.Glob))
)

// candidates returns the sonames, then each directory joined with each
// soname, without duplicates.
func candidates(names, dirs []string) []string {
	out := append([]string(nil), names...)
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for _, d := range dirs {
		for _, n := range names {
			p := filepath.Join(d, n)
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// libraryDirs lists the directories where CUDA installs put the driver,
// NVRTC and cuBLAS, in the order they are tried:
//   - AUTONODE_CUDA_LIB_PATH (a colon-separated list, for anything else);
//   - the toolkit: $CUDA_HOME and $CUDA_PATH (lib64, lib), /usr/local/cuda,
//     /usr/local/cuda-* (newest first) and their targets/*/lib;
//   - pip wheels, which is where a machine with only PyTorch or CuPy has
//     them: site-packages/nvidia/cu13/lib (CUDA 13), nvidia/cuda_nvrtc/lib
//     and nvidia/cublas/lib (CUDA 12 and 11), in virtualenvs, conda, the
//     user's ~/.local and the system Pythons;
//   - conda's own lib directory, and the driver's usual homes (WSL, lib64).
func libraryDirs(getenv func(string) string, glob func(string) ([]string, error)) []string {
	var dirs []string
	add := func(ds ...string) {
		for _, d := range ds {
			if d != "" && !contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	globs := func(pattern string) []string {
		m, _ := glob(pattern)
		sort.Sort(sort.Reverse(sort.StringSlice(m))) // newest version first
		return m
	}
	for _, d := range strings.Split(getenv("AUTONODE_CUDA_LIB_PATH"), ":") {
		add(d)
	}
	var roots []string
	for _, env := range []string{"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"} {
		if r := getenv(env); r != "" {
			roots = append(roots, r)
		}
	}
	roots = append(roots, "/usr/local/cuda")
	roots = append(roots, globs("/usr/local/cuda-*")...)
	for _, r := range roots {
		add(filepath.Join(r, "lib64"), filepath.Join(r, "lib"))
		add(globs(filepath.Join(r, "targets", "*", "lib"))...)
	}
	var sites []string
	for _, env := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if r := getenv(env); r != "" {
			sites = append(sites, globs(filepath.Join(r, "lib", "python3*", "site-packages"))...)
		}
	}
	if home := getenv("HOME"); home != "" {
		sites = append(sites, globs(filepath.Join(home, ".local", "lib", "python3*", "site-packages"))...)
	}
	for _, pattern := range []string{
		"/opt/conda/lib/python3*/site-packages",
		"/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
		"/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages",
	} {
		sites = append(sites, globs(pattern)...)
	}
	for _, s := range sites {
		add(filepath.Join(s, "nvidia", "cu13", "lib"),
			filepath.Join(s, "nvidia", "cuda_nvrtc", "lib"),
			filepath.Join(s, "nvidia", "cublas", "lib"))
	}
	if p := getenv("CONDA_PREFIX"); p != "" {
		add(filepath.Join(p, "lib"))
	}
	add("/usr/lib/wsl/lib", "/usr/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu")
	return dirs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// opened is a library that loaded, with the path it loaded from.
type opened struct {
	path   string
	handle uintptr
}

// dlopenAll opens every path that loads (once per library file), in order.
// It also returns the errors of the paths that did not load and the paths
// that do not exist, for the message when none loads.
func dlopenAll(paths []string, mode int) (libs []opened, errs, missing []string) {
	seen := map[uintptr]bool{}
	for _, p := range paths {
		if strings.ContainsRune(p, '/') {
			if _, err := os.Stat(p); err != nil {
				missing = append(missing, p)
				continue
			}
		}
		h, err := purego.Dlopen(p, mode)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if !seen[h] {
			seen[h] = true
			libs = append(libs, opened{p, h})
		}
	}
	return libs, errs, missing
}

// notFound explains why no candidate of a library loaded: the loader's
// errors, then the paths that do not exist (a few, and how many more).
func notFound(errs, missing []string) string {
	msg := strings.Join(errs, "; ")
	if len(missing) > 0 {
		shown := missing[:min(len(missing), 4)]
		more := ""
		if len(missing) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(missing)-len(shown))
		}
		if msg != "" {
			msg += "; "
		}
		msg += "not found at " + strings.Join(shown, ", ") + more
	}
	return msg
}

// preloadSiblings opens the libraries in path's directory whose names start
// with prefix (libnvrtc-builtins.so.*, libcublasLt.so.*), so that a library
// loaded from a directory the loader does not search still finds them.
func preloadSiblings(path, prefix string) {
	if !strings.ContainsRune(path, '/') {
		return
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), prefix+"*"))
	for _, m := range matches {
		purego.Dlopen(m, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	}
}
