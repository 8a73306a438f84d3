package cuda

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// driver holds the CUDA driver API entry points (cuda.h), bound with purego.
// Pointer-sized handles (CUcontext, CUmodule, CUfunction, CUmemoryPool)
// are uintptr; CUdevice is an int; CUdeviceptr a uint64.
type driver struct {
	path    string
	version int // cuDriverGetVersion: 1000*major + 10*minor

	driverVersion  func(v *int32) int32
	init           func(flags uint32) int32
	deviceCount    func(n *int32) int32
	deviceGet      func(dev *int32, ordinal int32) int32
	deviceName     func(name *byte, n int32, dev int32) int32
	deviceAttr     func(v *int32, attr int32, dev int32) int32
	totalMem       func(bytes *uint64, dev int32) int32
	primarySetFlag func(dev int32, flags uint32) int32
	primaryRetain  func(ctx *uintptr, dev int32) int32
	primaryRelease func(dev int32) int32
	ctxSetCurrent  func(ctx uintptr) int32
	ctxSync        func() int32
	moduleLoadEx   func(mod *uintptr, image unsafe.Pointer, n uint32, opts *int32, vals *uintptr) int32
	moduleUnload   func(mod uintptr) int32
	moduleFunc     func(fn *uintptr, mod uintptr, name *byte) int32
	funcAttr       func(v *int32, attr int32, fn uintptr) int32
	memAlloc       func(ptr *uint64, bytes uintptr) int32
	memFree        func(ptr uint64) int32
	memGetInfo     func(free, total *uint64) int32
	memcpyHtoD     func(dst uint64, src unsafe.Pointer, bytes uintptr) int32
	memcpyDtoH     func(dst unsafe.Pointer, src uint64, bytes uintptr) int32
	memcpyDtoD     func(dst, src uint64, bytes uintptr) int32
	launchKernel   func(fn uintptr, gx, gy, gz, bx, by, bz, shmem uint32, stream uintptr, params, extra *unsafe.Pointer) int32
	errorName      func(code int32, name **byte) int32
	errorString    func(code int32, text **byte) int32

	// Stream-ordered allocation (CUDA 11.2+); nil when the driver lacks it.
	memAllocAsync  func(ptr *uint64, bytes uintptr, stream uintptr) int32
	memFreeAsync   func(ptr uint64, stream uintptr) int32
	defaultMemPool func(pool *uintptr, dev int32) int32
	poolSetAttr    func(pool uintptr, attr int32, value unsafe.Pointer) int32
}

type symbol struct {
	fn   any
	name string
}

// bind binds every symbol of syms in lib; a missing one is an error, never
// a panic (RegisterLibFunc would panic).
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

// bindOptional binds the symbols lib has and leaves the others nil.
func bindOptional(lib uintptr, syms []symbol) {
	for _, s := range syms {
		if p, err := purego.Dlsym(lib, s.name); err == nil {
			purego.RegisterFunc(s.fn, p)
		}
	}
}

// loadDriver binds the first library of paths that loads and has the
// driver API. The _v2 entry points are the ones cuda.h maps its names to.
func loadDriver(paths []string) (*driver, error) {
	libs, errs, missing := dlopenAll(paths, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	for _, lib := range libs {
		d := &driver{path: lib.path}
		err := bind(lib.handle, []symbol{
			{&d.driverVersion, "cuDriverGetVersion"},
			{&d.init, "cuInit"},
			{&d.deviceCount, "cuDeviceGetCount"},
			{&d.deviceGet, "cuDeviceGet"},
			{&d.deviceName, "cuDeviceGetName"},
			{&d.deviceAttr, "cuDeviceGetAttribute"},
			{&d.totalMem, "cuDeviceTotalMem_v2"},
			{&d.primaryRetain, "cuDevicePrimaryCtxRetain"},
			{&d.ctxSetCurrent, "cuCtxSetCurrent"},
			{&d.ctxSync, "cuCtxSynchronize"},
			{&d.moduleLoadEx, "cuModuleLoadDataEx"},
			{&d.moduleUnload, "cuModuleUnload"},
			{&d.moduleFunc, "cuModuleGetFunction"},
			{&d.funcAttr, "cuFuncGetAttribute"},
			{&d.memAlloc, "cuMemAlloc_v2"},
			{&d.memFree, "cuMemFree_v2"},
			{&d.memGetInfo, "cuMemGetInfo_v2"},
			{&d.memcpyHtoD, "cuMemcpyHtoD_v2"},
			{&d.memcpyDtoH, "cuMemcpyDtoH_v2"},
			{&d.memcpyDtoD, "cuMemcpyDtoD_v2"},
			{&d.launchKernel, "cuLaunchKernel"},
			{&d.errorName, "cuGetErrorName"},
		})
		if err != nil {
			errs = append(errs, lib.path+": "+err.Error())
			continue
		}
		bindOptional(lib.handle, []symbol{
			{&d.errorString, "cuGetErrorString"},
			{&d.memAllocAsync, "cuMemAllocAsync"},
			{&d.memFreeAsync, "cuMemFreeAsync"},
			{&d.defaultMemPool, "cuDeviceGetDefaultMemPool"},
			{&d.poolSetAttr, "cuMemPoolSetAttribute"},
		})
		// The _v2 flag setter works on an active primary context too;
		// older drivers only have the original.
		bindOptional(lib.handle, []symbol{{&d.primarySetFlag, "cuDevicePrimaryCtxSetFlags_v2"}})
		if d.primarySetFlag == nil {
			bindOptional(lib.handle, []symbol{{&d.primarySetFlag, "cuDevicePrimaryCtxSetFlags"}})
		}
		bindOptional(lib.handle, []symbol{{&d.primaryRelease, "cuDevicePrimaryCtxRelease_v2"}})
		if d.primaryRelease == nil {
			bindOptional(lib.handle, []symbol{{&d.primaryRelease, "cuDevicePrimaryCtxRelease"}})
		}
		var v int32
		if code := d.driverVersion(&v); code != 0 {
			return nil, fmt.Errorf("%w: %s: %v", ErrNoDriver, lib.path, d.check("cuDriverGetVersion", code))
		}
		d.version = int(v)
		return d, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrNoDriver, notFound(errs, missing))
}

// versionString formats a CUDA version number (1000*major + 10*minor).
func versionString(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// Driver API constants used here (cuda.h).
const (
	attrMaxThreadsPerBlock   = 1
	attrMaxBlockDimX         = 2
	attrMaxBlockDimY         = 3
	attrMaxBlockDimZ         = 4
	attrMaxGridDimX          = 5
	attrMaxGridDimY          = 6
	attrMaxGridDimZ          = 7
	attrMultiprocessorCount  = 16
	attrComputeMajor         = 75
	attrComputeMinor         = 76
	attrMemoryPoolsSupported = 115

	funcAttrMaxThreadsPerBlock = 0 // CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK

	ctxSchedBlockingSync = 0x04 // CU_CTX_SCHED_BLOCKING_SYNC

	memPoolAttrReleaseThreshold = 4 // CU_MEMPOOL_ATTR_RELEASE_THRESHOLD (cuuint64_t)

	// cuModuleLoadDataEx options (CUjit_option).
	jitInfoLogBuffer       = 3
	jitInfoLogBufferBytes  = 4
	jitErrorLogBuffer      = 5
	jitErrorLogBufferBytes = 6

	cudaErrorOutOfMemory           = 2
	cudaErrorNoDevice              = 100
	cudaErrorNoBinaryForGPU        = 209
	cudaErrorUnsupportedPTXVersion = 222
	cudaErrorPrimaryContextActive  = 708
)

// cuError is a failed driver call.
type cuError struct {
	call string
	code int32
	name string
	text string
}

func (e *cuError) Error() string {
	msg := fmt.Sprintf("cuda: %s: %s (%d)", e.call, e.name, e.code)
	if e.text != "" {
		msg += ": " + e.text
	}
	return msg
}

// Is makes CUDA_ERROR_OUT_OF_MEMORY match ErrOutOfMemory and
// CUDA_ERROR_NO_DEVICE match ErrNoDevice.
func (e *cuError) Is(target error) bool {
	return (target == ErrOutOfMemory && e.code == cudaErrorOutOfMemory) ||
		(target == ErrNoDevice && e.code == cudaErrorNoDevice)
}

func (d *driver) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	e := &cuError{call: call, code: code, name: "CUDA error"}
	var p *byte
	if d.errorName != nil && d.errorName(code, &p) == 0 && p != nil {
		e.name = cString(p)
	}
	p = nil
	if d.errorString != nil && d.errorString(code, &p) == 0 && p != nil {
		e.text = cString(p)
	}
	return e
}

// cString copies a NUL-terminated C string.
func cString(p *byte) string {
	var b []byte
	for q := p; *q != 0; q = (*byte)(unsafe.Add(unsafe.Pointer(q), 1)) {
		b = append(b, *q)
	}
	return string(b)
}

// cBytes returns s as a NUL-terminated byte slice for C; the caller keeps
// it alive (and pinned, when C keeps the pointer) for as long as C reads it.
func cBytes(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// trimLog returns a C log buffer's text.
func trimLog(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}
