package cuda

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// driver holds the CUDA driver API entry points.
type driver struct {
	init         func(flags uint32) int32
	deviceCount  func(n *int32) int32
	deviceGet    func(dev *int32, ordinal int32) int32
	deviceName   func(name *byte, n int32, dev int32) int32
	deviceAttr   func(v *int32, attr int32, dev int32) int32
	totalMem     func(bytes *uint64, dev int32) int32
	ctxCreate    func(ctx *uintptr, flags uint32, dev int32) int32
	ctxDestroy   func(ctx uintptr) int32
	ctxSync      func() int32
	moduleLoad   func(mod *uintptr, image unsafe.Pointer) int32
	moduleUnload func(mod uintptr) int32
	moduleFunc   func(fn *uintptr, mod uintptr, name string) int32
	memAlloc     func(ptr *uint64, bytes uintptr) int32
	memFree      func(ptr uint64) int32
	memcpyHtoD   func(dst uint64, src unsafe.Pointer, bytes uintptr) int32
	memcpyDtoH   func(dst unsafe.Pointer, src uint64, bytes uintptr) int32
	launchKernel func(fn uintptr, gx, gy, gz, bx, by, bz, shmem uint32, stream uintptr, params, extra *unsafe.Pointer) int32
	errorName    func(code int32, name **byte) int32
	nvrtcCreate  func(prog *uintptr, src, name string, nHeaders int32, headers, includeNames unsafe.Pointer) int32
	nvrtcCompile func(prog uintptr, nOpts int32, opts **byte) int32
	nvrtcPTXSize func(prog uintptr, n *uintptr) int32
	nvrtcPTX     func(prog uintptr, ptx *byte) int32
	nvrtcLogSize func(prog uintptr, n *uintptr) int32
	nvrtcLog     func(prog uintptr, log *byte) int32
	nvrtcDestroy func(prog *uintptr) int32
}

type symbol struct {
	fn   any
	name string
}

// dlopenFirst opens the first library in paths that loads.
func dlopenFirst(paths []string) (uintptr, error) {
	var errs []error
	for _, p := range paths {
		h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, nil
		}
		errs = append(errs, err)
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return 0, errors.New(strings.Join(msgs, "; "))
}

func bind(lib uintptr, syms []symbol) error {
	for _, s := range syms {
		p, err := purego.Dlsym(lib, s.name)
		if err != nil {
			return fmt.Errorf("%s: %v", s.name, err)
		}
		purego.RegisterFunc(s.fn, p)
	}
	return nil
}

// loadDriver binds libcuda (from driverPaths) and NVRTC (from nvrtcPaths).
func loadDriver(driverPaths, nvrtcPaths []string) (*driver, error) {
	lib, err := dlopenFirst(driverPaths)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDriver, err)
	}
	d := &driver{}
	if err := bind(lib, []symbol{
		{&d.init, "cuInit"},
		{&d.deviceCount, "cuDeviceGetCount"},
		{&d.deviceGet, "cuDeviceGet"},
		{&d.deviceName, "cuDeviceGetName"},
		{&d.deviceAttr, "cuDeviceGetAttribute"},
		{&d.totalMem, "cuDeviceTotalMem_v2"},
		{&d.ctxCreate, "cuCtxCreate_v2"},
		{&d.ctxDestroy, "cuCtxDestroy_v2"},
		{&d.ctxSync, "cuCtxSynchronize"},
		{&d.moduleLoad, "cuModuleLoadData"},
		{&d.moduleUnload, "cuModuleUnload"},
		{&d.moduleFunc, "cuModuleGetFunction"},
		{&d.memAlloc, "cuMemAlloc_v2"},
		{&d.memFree, "cuMemFree_v2"},
		{&d.memcpyHtoD, "cuMemcpyHtoD_v2"},
		{&d.memcpyDtoH, "cuMemcpyDtoH_v2"},
		{&d.launchKernel, "cuLaunchKernel"},
		{&d.errorName, "cuGetErrorName"},
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDriver, err)
	}
	nv, err := dlopenFirst(nvrtcPaths)
	if err != nil {
		return nil, fmt.Errorf("%w (the kernels are compiled at run time; install the CUDA toolkit's NVRTC): %v", ErrNoCompiler, err)
	}
	if err := bind(nv, []symbol{
		{&d.nvrtcCreate, "nvrtcCreateProgram"},
		{&d.nvrtcCompile, "nvrtcCompileProgram"},
		{&d.nvrtcPTXSize, "nvrtcGetPTXSize"},
		{&d.nvrtcPTX, "nvrtcGetPTX"},
		{&d.nvrtcLogSize, "nvrtcGetProgramLogSize"},
		{&d.nvrtcLog, "nvrtcGetProgramLog"},
		{&d.nvrtcDestroy, "nvrtcDestroyProgram"},
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCompiler, err)
	}
	return d, nil
}

var (
	driverPaths = []string{"libcuda.so.1", "libcuda.so"}
	nvrtcPaths  = []string{"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"}
)

// Driver API constants used here (cuda.h).
const (
	attrMaxThreadsPerBlock = 1
	attrMaxGridDimY        = 6
	attrMaxGridDimZ        = 7
	attrComputeMajor       = 75
	attrComputeMinor       = 76

	cudaErrorOutOfMemory = 2
)

// cuError is a failed driver call.
type cuError struct {
	call string
	code int32
	name string
}

func (e *cuError) Error() string {
	msg := fmt.Sprintf("cuda: %s: %s (%d)", e.call, e.name, e.code)
	if e.code == cudaErrorOutOfMemory {
		msg += " (out of device memory)"
	}
	return msg
}

// Is makes CUDA_ERROR_OUT_OF_MEMORY match ErrOutOfMemory.
func (e *cuError) Is(target error) bool {
	return target == ErrOutOfMemory && e.code == cudaErrorOutOfMemory
}

func (d *driver) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	name := "CUDA error"
	var p *byte
	if d.errorName != nil && d.errorName(code, &p) == 0 && p != nil {
		name = cString(p)
	}
	return &cuError{call, code, name}
}

// cString copies a NUL-terminated C string.
func cString(p *byte) string {
	var b []byte
	for q := p; *q != 0; q = (*byte)(unsafe.Add(unsafe.Pointer(q), 1)) {
		b = append(b, *q)
	}
	return string(b)
}
