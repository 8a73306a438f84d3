//go:build linux

package cuda

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ebitengine/purego"
)

// The fake CUDA stack (testdata/): a driver, NVRTC 12.6 in the pip wheel
// layout of a virtualenv, NVRTC 13.0 and cuBLAS 13 in a CUDA 13 toolkit
// directory, and cuBLAS 12 in the pip layout. They are built once per test
// binary into a temporary directory.
type fakeStack struct {
	dir      string
	env      map[string]string // CUDA_HOME, VIRTUAL_ENV pointing into dir
	driver   string
	nvrtc12  string
	nvrtc13  string
	cublas12 string
	cublas13 string
	err      error

	set      func(key string, v int64) int32
	get      func(key string) int64
	blasGet  func(key string) int64
	failWith func(log *byte)
}

var (
	fakeOnce sync.Once
	fake     fakeStack
	fakeDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fakeDir != "" {
		os.RemoveAll(fakeDir)
	}
	os.Exit(code)
}

// buildFake compiles the fake libraries, or skips the test when there is
// no C/C++ compiler to build them with.
func buildFake(t *testing.T) *fakeStack {
	t.Helper()
	cc, err := exec.LookPath("cc")
	cxx, err2 := exec.LookPath("c++")
	if err != nil || err2 != nil {
		t.Skip("no C and C++ compiler (cc, c++) to build the fake CUDA driver of testdata/")
	}
	fakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fakecuda-")
		if err != nil {
			fake.err = err
			return
		}
		fakeDir = dir
		testdata, _ := filepath.Abs("testdata")
		site := filepath.Join(dir, "venv", "lib", "python3.11", "site-packages", "nvidia")
		fake = fakeStack{
			dir:      dir,
			env:      map[string]string{"CUDA_HOME": filepath.Join(dir, "cuda-13.0"), "VIRTUAL_ENV": filepath.Join(dir, "venv")},
			driver:   filepath.Join(dir, "driver", "libcuda.so.1"),
			nvrtc12:  filepath.Join(site, "cuda_nvrtc", "lib", "libnvrtc.so.12"),
			nvrtc13:  filepath.Join(dir, "cuda-13.0", "lib64", "libnvrtc.so.13"),
			cublas12: filepath.Join(site, "cublas", "lib", "libcublas.so.12"),
			cublas13: filepath.Join(dir, "cuda-13.0", "lib64", "libcublas.so.13"),
		}
		work := filepath.Join(dir, "work")
		nvrtc := func(major, minor int, archs string) []string {
			return []string{"testdata/fakenvrtc.c", fmt.Sprintf("-DNVRTC_MAJOR=%d", major), fmt.Sprintf("-DNVRTC_MINOR=%d", minor),
				"-DNVRTC_ARCHS=" + archs, fmt.Sprintf("-DCXX=%q", cxx), fmt.Sprintf("-DINCLUDE=%q", testdata), fmt.Sprintf("-DWORKDIR=%q", work)}
		}
		for _, b := range []struct {
			out  string
			args []string
		}{
			{fake.driver, []string{"testdata/fakecuda.c", "-ldl", "-lpthread"}},
			{fake.nvrtc12, nvrtc(12, 6, "50,60,70,75,80,86,89,90")},
			{fake.nvrtc13, nvrtc(13, 0, "75,80,86,89,90,100,120")},
			{fake.cublas12, []string{"testdata/fakecublas.c", "-DCUBLAS_MAJOR=12", "-ldl"}},
			{fake.cublas13, []string{"testdata/fakecublas.c", "-DCUBLAS_MAJOR=13", "-ldl"}},
		} {
			for _, d := range []string{filepath.Dir(b.out), work} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					fake.err = err
					return
				}
			}
			args := append([]string{"-shared", "-fPIC", "-o", b.out}, b.args...)
			if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
				fake.err = fmt.Errorf("cc %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
		h, err := purego.Dlopen(fake.driver, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			fake.err = err
			return
		}
		bindTest(h, &fake.set, "fakecuda_set")
		bindTest(h, &fake.get, "fakecuda_get")
		h, err = purego.Dlopen(fake.cublas12, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			fake.err = err
			return
		}
		bindTest(h, &fake.blasGet, "fakecublas_get")
		h, err = purego.Dlopen(fake.nvrtc12, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			fake.err = err
			return
		}
		bindTest(h, &fake.failWith, "fakenvrtc_set_failure")
	})
	if fake.err != nil {
		t.Fatalf("building the fake CUDA stack: %v", fake.err)
	}
	return &fake
}

func bindTest(lib uintptr, fn any, name string) {
	p, err := purego.Dlsym(lib, name)
	if err != nil {
		panic(err)
	}
	purego.RegisterFunc(fn, p)
}

// fakeOptions configures the fake device for one test.
type fakeOptions struct {
	driverVersion int64 // default 12040 (CUDA 12.4)
	cc            int64 // default 90
	kernelThreads int64 // CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, default 1024
	noPools       bool
	devices       int64 // default 1; -1 for none
	totalMem      int64
	nvrtc         []string // default: both fake NVRTCs, found through libraryDirs
	cublas        []string // default: both fake cuBLAS; empty slice (not nil) for none
}

// useFake points the backend at the fake stack configured by o for the
// rest of the test.
func useFake(t *testing.T, o fakeOptions) *fakeStack {
	t.Helper()
	f := buildFake(t)
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.driverVersion, 12040)
	def(&o.cc, 90)
	def(&o.kernelThreads, 1024)
	def(&o.devices, 1)
	def(&o.totalMem, 4<<30)
	if o.devices < 0 {
		o.devices = 0
	}
	pools := int64(1)
	if o.noPools {
		pools = 0
	}
	for k, v := range map[string]int64{"driver_version": o.driverVersion, "cc": o.cc, "max_threads_kernel": o.kernelThreads,
		"pools": pools, "devices": o.devices, "total_mem": o.totalMem} {
		if f.set(k, v) != 0 {
			t.Fatalf("fakecuda_set(%s)", k)
		}
	}
	// Every candidate the real search would try, limited to the fake's
	// directory so that a machine with a real CUDA install is not used.
	under := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			if strings.HasPrefix(p, f.dir+"/") {
				out = append(out, p)
			}
		}
		return out
	}
	dirs := libraryDirs(func(k string) string { return f.env[k] }, filepath.Glob)
	prevD, prevN, prevB := driverPaths, nvrtcPaths, cublasPaths
	driverPaths = []string{f.driver}
	nvrtcPaths = under(candidates(nvrtcNames, dirs))
	if o.nvrtc != nil {
		nvrtcPaths = o.nvrtc
	}
	cublasPaths = under(candidates(cublasNames, dirs))
	if o.cublas != nil {
		cublasPaths = o.cublas
	}
	t.Cleanup(func() {
		driverPaths, nvrtcPaths, cublasPaths = prevD, prevN, prevB
		f.set("driver_version", 12040)
		f.set("cc", 90)
		f.set("max_threads_kernel", 1024)
		f.set("pools", 1)
		f.set("devices", 1)
		f.set("total_mem", 4<<30)
	})
	return f
}

// openFake opens a Device on the fake stack configured by o.
func openFake(t *testing.T, o fakeOptions) (*Device, *fakeStack) {
	t.Helper()
	f := useFake(t, o)
	d, err := Open(0)
	if err != nil {
		t.Fatalf("Open on the fake driver: %v", err)
	}
	t.Logf("device: %s", d.Detail())
	return d, f
}
