//go:build linux || darwin

package opencl

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// api holds the OpenCL 1.2 entry points, bound at run time with purego.
type api struct {
	getPlatformIDs     func(num uint32, platforms *uintptr, numOut *uint32) int32
	getPlatformInfo    func(p uintptr, param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32
	getDeviceIDs       func(p uintptr, typ uint64, num uint32, devices *uintptr, numOut *uint32) int32
	getDeviceInfo      func(d uintptr, param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32
	createContext      func(props unsafe.Pointer, num uint32, devices *uintptr, notify, user uintptr, errcode *int32) uintptr
	createCommandQueue func(ctx, dev uintptr, props uint64, errcode *int32) uintptr
	createBuffer       func(ctx uintptr, flags uint64, size uintptr, host unsafe.Pointer, errcode *int32) uintptr
	enqueueWriteBuffer func(q, buf uintptr, blocking uint32, offset, size uintptr, ptr unsafe.Pointer, nev uint32, evs, ev unsafe.Pointer) int32
	enqueueReadBuffer  func(q, buf uintptr, blocking uint32, offset, size uintptr, ptr unsafe.Pointer, nev uint32, evs, ev unsafe.Pointer) int32
	createProgram      func(ctx uintptr, count uint32, strs unsafe.Pointer, lens *uintptr, errcode *int32) uintptr
	buildProgram       func(prog uintptr, num uint32, devs *uintptr, options string, notify, user uintptr) int32
	programBuildInfo   func(prog, dev uintptr, param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32
	createKernel       func(prog uintptr, name string, errcode *int32) uintptr
	kernelGroupInfo    func(k, dev uintptr, param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32
	setKernelArg       func(k uintptr, idx uint32, size uintptr, value unsafe.Pointer) int32
	enqueueNDRange     func(q, k uintptr, dim uint32, offset, global, local *uintptr, nev uint32, evs, ev unsafe.Pointer) int32
	finish             func(q uintptr) int32
	releaseMem         func(uintptr) int32
	releaseKernel      func(uintptr) int32
	releaseProgram     func(uintptr) int32
	releaseQueue       func(uintptr) int32
	releaseContext     func(uintptr) int32
}

// libraryPaths are tried in order when no path is given.
func libraryPaths() []string {
	if runtime.GOOS == "darwin" {
		return []string{"/System/Library/Frameworks/OpenCL.framework/OpenCL"}
	}
	return []string{"libOpenCL.so.1", "libOpenCL.so"}
}

// loadAPI opens the OpenCL library (the first of paths that opens) and binds
// every entry point; a missing library or symbol is an error, never a panic.
func loadAPI(paths []string) (*api, error) {
	var lib uintptr
	var errs []error
	for _, p := range paths {
		h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			lib = h
			break
		}
		errs = append(errs, err)
	}
	if lib == 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("%w: %s", ErrNoLibrary, strings.Join(msgs, "; "))
	}
	a := &api{}
	syms := []struct {
		fn   any
		name string
	}{
		{&a.getPlatformIDs, "clGetPlatformIDs"},
		{&a.getPlatformInfo, "clGetPlatformInfo"},
		{&a.getDeviceIDs, "clGetDeviceIDs"},
		{&a.getDeviceInfo, "clGetDeviceInfo"},
		{&a.createContext, "clCreateContext"},
		{&a.createCommandQueue, "clCreateCommandQueue"},
		{&a.createBuffer, "clCreateBuffer"},
		{&a.enqueueWriteBuffer, "clEnqueueWriteBuffer"},
		{&a.enqueueReadBuffer, "clEnqueueReadBuffer"},
		{&a.createProgram, "clCreateProgramWithSource"},
		{&a.buildProgram, "clBuildProgram"},
		{&a.programBuildInfo, "clGetProgramBuildInfo"},
		{&a.createKernel, "clCreateKernel"},
		{&a.kernelGroupInfo, "clGetKernelWorkGroupInfo"},
		{&a.setKernelArg, "clSetKernelArg"},
		{&a.enqueueNDRange, "clEnqueueNDRangeKernel"},
		{&a.finish, "clFinish"},
		{&a.releaseMem, "clReleaseMemObject"},
		{&a.releaseKernel, "clReleaseKernel"},
		{&a.releaseProgram, "clReleaseProgram"},
		{&a.releaseQueue, "clReleaseCommandQueue"},
		{&a.releaseContext, "clReleaseContext"},
	}
	for _, s := range syms {
		p, err := purego.Dlsym(lib, s.name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNoLibrary, s.name, err)
		}
		purego.RegisterFunc(s.fn, p)
	}
	return a, nil
}

// OpenCL constants used here (cl.h).
const (
	clDeviceTypeCPU         = 1 << 1
	clDeviceTypeGPU         = 1 << 2
	clDeviceTypeAccelerator = 1 << 3
	clDeviceTypeAll         = 0xFFFFFFFF

	clPlatformName           = 0x0902
	clDeviceType             = 0x1000
	clDeviceMaxWorkGroupSize = 0x1004
	clDeviceMaxWorkItemSizes = 0x1005
	clDeviceMaxMemAllocSize  = 0x1010
	clDeviceSingleFPConfig   = 0x101B
	clDeviceGlobalMemSize    = 0x101F
	clDeviceName             = 0x102B
	clDeviceVersion          = 0x102F
	clDeviceExtensions       = 0x1030
	clProgramBuildLog        = 0x1183
	clKernelWorkGroupSize    = 0x11B0

	clMemReadWrite = 1

	clFPCorrectlyRoundedDivideSqrt = 1 << 7
)

var clErrors = map[int32]string{
	-1: "CL_DEVICE_NOT_FOUND", -2: "CL_DEVICE_NOT_AVAILABLE", -3: "CL_COMPILER_NOT_AVAILABLE",
	-4: "CL_MEM_OBJECT_ALLOCATION_FAILURE", -5: "CL_OUT_OF_RESOURCES", -6: "CL_OUT_OF_HOST_MEMORY",
	-11: "CL_BUILD_PROGRAM_FAILURE", -30: "CL_INVALID_VALUE", -33: "CL_INVALID_DEVICE",
	-34: "CL_INVALID_CONTEXT", -36: "CL_INVALID_COMMAND_QUEUE", -38: "CL_INVALID_MEM_OBJECT",
	-43: "CL_INVALID_BUILD_OPTIONS", -44: "CL_INVALID_PROGRAM", -45: "CL_INVALID_PROGRAM_EXECUTABLE",
	-46: "CL_INVALID_KERNEL_NAME", -48: "CL_INVALID_KERNEL", -49: "CL_INVALID_ARG_INDEX",
	-50: "CL_INVALID_ARG_VALUE", -51: "CL_INVALID_ARG_SIZE", -52: "CL_INVALID_KERNEL_ARGS",
	-53: "CL_INVALID_WORK_DIMENSION", -54: "CL_INVALID_WORK_GROUP_SIZE", -55: "CL_INVALID_WORK_ITEM_SIZE",
	-61: "CL_INVALID_BUFFER_SIZE", -63: "CL_INVALID_GLOBAL_WORK_SIZE", -1001: "CL_PLATFORM_NOT_FOUND_KHR",
}

// clError is a failed OpenCL call.
type clError struct {
	call string
	code int32
}

func (e *clError) Error() string {
	name, ok := clErrors[e.code]
	if !ok {
		name = fmt.Sprintf("error %d", e.code)
	}
	msg := fmt.Sprintf("opencl: %s: %s", e.call, name)
	if e.outOfMemory() {
		msg += " (out of device memory)"
	}
	return msg
}

func (e *clError) outOfMemory() bool {
	return e.code == -4 || e.code == -5 || e.code == -6 || e.code == -61
}

// Is makes an out-of-memory failure match ErrOutOfMemory.
func (e *clError) Is(target error) bool { return target == ErrOutOfMemory && e.outOfMemory() }

func check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	return &clError{call, code}
}

// infoString reads a string-valued clGet*Info parameter.
func infoString(get func(param uint32, size uintptr, value unsafe.Pointer, sizeRet *uintptr) int32, param uint32) string {
	var n uintptr
	if get(param, 0, nil, &n) != 0 || n == 0 {
		return ""
	}
	buf := make([]byte, n)
	if get(param, n, unsafe.Pointer(&buf[0]), nil) != 0 {
		return ""
	}
	for len(buf) > 0 && buf[len(buf)-1] == 0 {
		buf = buf[:len(buf)-1]
	}
	return string(buf)
}

func (a *api) deviceString(dev uintptr, param uint32) string {
	return infoString(func(p uint32, s uintptr, v unsafe.Pointer, r *uintptr) int32 {
		return a.getDeviceInfo(dev, p, s, v, r)
	}, param)
}

func (a *api) deviceUint(dev uintptr, param uint32) uint64 {
	var v uint64
	a.getDeviceInfo(dev, param, 8, unsafe.Pointer(&v), nil)
	return v
}
