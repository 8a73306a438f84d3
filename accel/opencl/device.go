//go:build linux || darwin

package opencl

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/accel/internal/gpukern"
)

// Device is one OpenCL device with its context, in-order command queue and
// compiled kernels. Operations are enqueued without waiting, so a chain of
// operations on device arrays never returns to the host; Read (and so
// Array.Float64s) waits for the queued work.
type Device struct {
	api                 *api
	id, context, queue  uintptr
	name, detail        string
	devType             uint64
	caps                gpukern.Caps
	maxItems            [3]int // CL_DEVICE_MAX_WORK_ITEM_SIZES
	maxAlloc            uint64
	exactDivSqrt        bool       // -cl-fp32-correctly-rounded-divide-sqrt is supported
	mu                  sync.Mutex // serialises kernel arguments and enqueues
	progs               [3]program // by accel.DType, built by Open
	poison              atomic.Bool
	hostBytes, launches atomic.Int64
	fallbacks           atomic.Int64 // operations handed back to the host
}

// program is the kernel library built for one dtype, with the kernels
// created from it so far.
type program struct {
	prog    uintptr
	kernels map[string]kernel
}

// kernel is one kernel object and its CL_KERNEL_WORK_GROUP_SIZE.
type kernel struct {
	k     uintptr
	group int
}

// Open loads the OpenCL library and opens the best device it offers: the
// first GPU, else the first accelerator, else the first other device (a CPU
// implementation such as PoCL). It builds the kernel library for float32
// (and float64 when the device has cl_khr_fp64) before it returns, so a
// device whose compiler rejects the kernels is not available at all: the
// error wraps ErrBuild and carries the build log.
func Open() (*Device, error) { return OpenLibrary("") }

// OpenLibrary is Open with the library at path ("" tries the usual names).
func OpenLibrary(path string) (*Device, error) {
	paths := libraryPaths()
	if path != "" {
		paths = []string{path}
	}
	a, err := loadAPI(paths)
	if err != nil {
		return nil, err
	}
	var np uint32
	if code := a.getPlatformIDs(0, nil, &np); code != 0 || np == 0 {
		return nil, fmt.Errorf("%w: the OpenCL library reports no platform (no ICD installed: on Debian, apt-get install pocl-opencl-icd or a GPU vendor's ICD)", ErrNoDevice)
	}
	plats := make([]uintptr, np)
	if err := check("clGetPlatformIDs", a.getPlatformIDs(np, &plats[0], nil)); err != nil {
		return nil, err
	}
	type cand struct {
		plat, dev uintptr
		typ       uint64
	}
	var best *cand
	rank := func(t uint64) int {
		switch {
		case t&clDeviceTypeGPU != 0:
			return 3
		case t&clDeviceTypeAccelerator != 0:
			return 2
		}
		return 1
	}
	for _, p := range plats {
		var nd uint32
		if a.getDeviceIDs(p, clDeviceTypeAll, 0, nil, &nd) != 0 || nd == 0 {
			continue
		}
		devs := make([]uintptr, nd)
		if a.getDeviceIDs(p, clDeviceTypeAll, nd, &devs[0], nil) != 0 {
			continue
		}
		for _, dv := range devs {
			c := cand{p, dv, a.deviceUint(dv, clDeviceType)}
			if best == nil || rank(c.typ) > rank(best.typ) {
				best = &c
			}
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: %d OpenCL platform(s) but no device", ErrNoDevice, np)
	}
	d := &Device{api: a, id: best.dev, devType: best.typ}
	var code int32
	d.context = a.createContext(nil, 1, &d.id, 0, 0, &code)
	if err := check("clCreateContext", code); err != nil {
		return nil, err
	}
	d.queue = a.createCommandQueue(d.context, d.id, 0, &code)
	if err := check("clCreateCommandQueue", code); err != nil {
		a.releaseContext(d.context)
		return nil, err
	}
	exts := a.deviceString(d.id, clDeviceExtensions)
	d.caps = gpukern.Caps{
		FP64:     strings.Contains(exts, "cl_khr_fp64"),
		MaxGroup: int(a.deviceUint(d.id, clDeviceMaxWorkGroupSize)),
	}
	var items [3]uintptr
	if a.getDeviceInfo(d.id, clDeviceMaxWorkItemSizes, unsafe.Sizeof(items), unsafe.Pointer(&items), nil) == 0 {
		for i, v := range items {
			d.maxItems[i] = int(v)
		}
	} else {
		d.maxItems = [3]int{d.caps.MaxGroup, d.caps.MaxGroup, d.caps.MaxGroup}
	}
	d.maxAlloc = a.deviceUint(d.id, clDeviceMaxMemAllocSize)
	d.exactDivSqrt = a.deviceUint(d.id, clDeviceSingleFPConfig)&clFPCorrectlyRoundedDivideSqrt != 0
	plat := infoString(func(p uint32, s uintptr, v unsafe.Pointer, r *uintptr) int32 {
		return a.getPlatformInfo(best.plat, p, s, v, r)
	}, clPlatformName)
	devName := strings.TrimSpace(a.deviceString(d.id, clDeviceName))
	kind := "CPU"
	switch rank(d.devType) {
	case 3:
		kind = "GPU"
	case 2:
		kind = "accelerator"
	}
	fp := "no fp64"
	if d.caps.FP64 {
		fp = "fp64"
	}
	d.name = "opencl:0"
	d.detail = fmt.Sprintf("opencl:0 %s on %s (%s, %s, %s, %d MiB)", devName, plat, kind,
		strings.TrimSpace(a.deviceString(d.id, clDeviceVersion)), fp, a.deviceUint(d.id, clDeviceGlobalMemSize)>>20)
	// float64 first: when its kernels do not build, float64 runs on the
	// host and the float32 kernels are built without double accumulators.
	for _, dt := range []accel.DType{accel.Float64, accel.Float32} {
		if dt == accel.Float64 && !d.caps.FP64 {
			continue
		}
		prog, err := d.build(gpukern.OpenCLPrelude+gpukern.Source, d.buildOptions(dt))
		if err != nil && dt == accel.Float64 {
			d.caps.FP64 = false
			first, _, _ := strings.Cut(err.Error(), "\n")
			d.detail += "; the float64 kernels did not build, so float64 runs on the host: " + first
			continue
		}
		if err != nil {
			d.release()
			return nil, fmt.Errorf("opencl: %s on %s cannot run accel's %s kernels: %w", devName, plat, dt, err)
		}
		d.progs[dt] = program{prog: prog, kernels: map[string]kernel{}}
		names := gpukern.KernelNames
		if dt == accel.Float64 {
			names = append(append([]string(nil), names...), gpukern.ConvertKernels...)
		}
		for _, name := range names {
			if _, err := d.kernel(dt, name); err != nil {
				d.release()
				return nil, fmt.Errorf("%w: opencl: %s on %s: the %s kernels built, but: %v", ErrBuild, devName, plat, dt, err)
			}
		}
	}
	return d, nil
}

// release frees what Open made when it fails part way.
func (d *Device) release() {
	for _, p := range d.progs {
		for _, k := range p.kernels {
			d.api.releaseKernel(k.k)
		}
		if p.prog != 0 {
			d.api.releaseProgram(p.prog)
		}
	}
	d.api.releaseQueue(d.queue)
	d.api.releaseContext(d.context)
}

// Name returns "opencl:0".
func (d *Device) Name() string { return d.name }

// Kind returns "opencl".
func (d *Device) Kind() string { return "opencl" }

// Detail describes the device: name, platform, type, version, fp64 support
// and memory.
func (d *Device) Detail() string { return d.detail }

// IsGPU reports whether the device is a GPU (or another accelerator);
// CPU implementations such as PoCL are not, so device="gpu" skips them.
func (d *Device) IsGPU() bool { return d.devType&(clDeviceTypeGPU|clDeviceTypeAccelerator) != 0 }

// FP64 reports whether the device runs double-precision kernels
// (cl_khr_fp64); without it float64 operations run on the host.
func (d *Device) FP64() bool { return d.caps.FP64 }

// PoisonNew makes Alloc fill every new buffer with NaN, so that a kernel
// that leaves part of its output unwritten is caught; conformance tests
// turn it on. It returns the previous setting.
func (d *Device) PoisonNew(on bool) bool { return d.poison.Swap(on) }

// Synchronize waits until every queued operation has finished.
func (d *Device) Synchronize() error { return check("clFinish", d.api.finish(d.queue)) }

// Buffer is device memory for one array.
type Buffer struct {
	dev   *Device
	mem   uintptr
	dt    accel.DType
	n     int
	freed atomic.Bool
}

// Alloc allocates storage for n elements of dt in device memory.
func (d *Device) Alloc(dt accel.DType, n int) (accel.Buffer, error) {
	bytes := uint64(n) * uint64(dt.Size())
	if bytes > d.maxAlloc {
		return nil, fmt.Errorf("%w: opencl: %d bytes is more than the device's largest allocation (%d bytes)", ErrOutOfMemory, bytes, d.maxAlloc)
	}
	var code int32
	mem := d.api.createBuffer(d.context, clMemReadWrite, uintptr(max(bytes, 8)), nil, &code)
	if err := check("clCreateBuffer", code); err != nil {
		return nil, err
	}
	b := &Buffer{dev: d, mem: mem, dt: dt, n: n}
	if d.poison.Load() {
		if err := gpukern.Poison(b, dt, n); err != nil {
			b.Free()
			return nil, err
		}
	}
	return b, nil
}

// Device returns the owning device.
func (b *Buffer) Device() accel.Device { return b.dev }

// DType returns the element type.
func (b *Buffer) DType() accel.DType { return b.dt }

// Len returns the number of elements.
func (b *Buffer) Len() int { return b.n }

// Free releases the device memory; work already queued on it completes
// first (OpenCL keeps the object alive until then).
func (b *Buffer) Free() {
	if !b.freed.Swap(true) {
		b.dev.api.releaseMem(b.mem)
	}
}

// Read copies elements to the host after the queued work finishes.
func (b *Buffer) Read(dst any, offset int) error {
	p, n, err := gpukern.Span("opencl", "read", b.dt, b.n, dst, offset)
	if err != nil || n == 0 {
		return err
	}
	b.dev.hostBytes.Add(int64(n))
	code := b.dev.api.enqueueReadBuffer(b.dev.queue, b.mem, 1, uintptr(offset*b.dt.Size()), uintptr(n), p, 0, nil, nil)
	runtime.KeepAlive(dst)
	return check("clEnqueueReadBuffer", code)
}

// Write copies host elements into the buffer, in order with queued work.
func (b *Buffer) Write(src any, offset int) error {
	p, n, err := gpukern.Span("opencl", "write", b.dt, b.n, src, offset)
	if err != nil || n == 0 {
		return err
	}
	b.dev.hostBytes.Add(int64(n))
	code := b.dev.api.enqueueWriteBuffer(b.dev.queue, b.mem, 1, uintptr(offset*b.dt.Size()), uintptr(n), p, 0, nil, nil)
	runtime.KeepAlive(src)
	return check("clEnqueueWriteBuffer", code)
}

// Run enqueues op's kernels; operations without a kernel (and float64 ones
// on a device without fp64) return accel.ErrUnsupported.
func (d *Device) Run(ctx context.Context, op *accel.Op) error {
	err := gpukern.Run(ctx, launcher{d}, op)
	if errors.Is(err, accel.ErrUnsupported) {
		d.fallbacks.Add(1)
	}
	return err
}

// launcher adapts Device to gpukern.Launcher.
type launcher struct{ d *Device }

func (l launcher) Caps() gpukern.Caps { return l.d.caps }

func (l launcher) Mem(b accel.Buffer) (any, error) {
	cb, ok := b.(*Buffer)
	if !ok || cb.dev != l.d {
		return nil, fmt.Errorf("opencl: buffer of %s is not on %s", b.Device().Name(), l.d.name)
	}
	return cb.mem, nil
}

func (l launcher) Temp(bytes int) (any, func(), error) {
	var code int32
	mem := l.d.api.createBuffer(l.d.context, clMemReadWrite, uintptr(max(bytes, 8)), nil, &code)
	if err := check("clCreateBuffer", code); err != nil {
		return nil, nil, err
	}
	return mem, func() { l.d.api.releaseMem(mem) }, nil
}

func (l launcher) GroupLimit(dt accel.DType, name string) (int, error) {
	k, err := l.d.kernel(dt, name)
	if err != nil {
		return 0, err
	}
	return k.group, nil
}

func (l launcher) Launch(dt accel.DType, name string, groups, local [3]int, args ...any) error {
	d := l.d
	kn, err := d.kernel(dt, name)
	if err != nil {
		return err
	}
	if items := local[0] * local[1] * local[2]; items > kn.group {
		return gpukern.Unsupported("opencl: %s runs at most %d work items per group on this device (CL_KERNEL_WORK_GROUP_SIZE), not %d", name, kn.group, items)
	}
	for i, v := range local {
		if v > d.maxItems[i] {
			return gpukern.Unsupported("opencl: a work group of %v exceeds the device's %v items along each axis", local, d.maxItems)
		}
	}
	k := kn.k
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, arg := range args {
		var code int32
		switch v := arg.(type) {
		case uintptr:
			code = d.api.setKernelArg(k, uint32(i), 8, unsafe.Pointer(&v))
		case int64:
			code = d.api.setKernelArg(k, uint32(i), 8, unsafe.Pointer(&v))
		case int32:
			code = d.api.setKernelArg(k, uint32(i), 4, unsafe.Pointer(&v))
		case float64:
			code = d.api.setKernelArg(k, uint32(i), 8, unsafe.Pointer(&v))
		case float32:
			code = d.api.setKernelArg(k, uint32(i), 4, unsafe.Pointer(&v))
		case gpukern.Meta:
			code = d.api.setKernelArg(k, uint32(i), unsafe.Sizeof(v), unsafe.Pointer(&v))
		default:
			return fmt.Errorf("opencl: %s: argument %d has unsupported type %T", name, i, arg)
		}
		if err := check(fmt.Sprintf("clSetKernelArg(%s, %d)", name, i), code); err != nil {
			return err
		}
	}
	var global, loc [3]uintptr
	for i := range 3 {
		global[i], loc[i] = uintptr(groups[i]*local[i]), uintptr(local[i])
	}
	d.launches.Add(1)
	return check("clEnqueueNDRangeKernel("+name+")", d.api.enqueueNDRange(d.queue, k, 3, nil, &global[0], &loc[0], 0, nil, nil))
}

// kernel returns the named kernel of the program for dt with its work-group
// limit, creating it on first use.
func (d *Device) kernel(dt accel.DType, name string) (kernel, error) {
	p := &d.progs[dt]
	if p.prog == 0 {
		return kernel{}, gpukern.Unsupported("opencl: no %s kernels on this device", dt)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if k, ok := p.kernels[name]; ok {
		return k, nil
	}
	var code int32
	k := d.api.createKernel(p.prog, name, &code)
	if err := check("clCreateKernel("+name+")", code); err != nil {
		return kernel{}, err
	}
	var group uintptr
	if err := check("clGetKernelWorkGroupInfo("+name+", CL_KERNEL_WORK_GROUP_SIZE)",
		d.api.kernelGroupInfo(k, d.id, clKernelWorkGroupSize, unsafe.Sizeof(group), unsafe.Pointer(&group), nil)); err != nil {
		d.api.releaseKernel(k)
		return kernel{}, err
	}
	kn := kernel{k: k, group: min(int(group), d.caps.MaxGroup)}
	p.kernels[name] = kn
	return kn, nil
}

func (d *Device) buildOptions(dt accel.DType) string {
	opts := "-DT=float -DIS_F64=0"
	if dt == accel.Float64 {
		opts = "-DT=double -DIS_F64=1"
	} else if d.exactDivSqrt {
		opts += " -cl-fp32-correctly-rounded-divide-sqrt"
	}
	if d.caps.FP64 {
		return opts + " -DHAVE_FP64 -DACC=double -DIDXOUT=double"
	}
	return opts + " -DACC=float -DIDXOUT=float"
}

// build compiles OpenCL C source for the device; a failure is an error
// wrapping ErrBuild that carries the compiler's log.
func (d *Device) build(src, options string) (uintptr, error) {
	var code int32
	csrc := append([]byte(src), 0)
	var pin runtime.Pinner
	pin.Pin(&csrc[0])
	defer pin.Unpin()
	strs := [1]*byte{&csrc[0]}
	prog := d.api.createProgram(d.context, 1, unsafe.Pointer(&strs[0]), nil, &code)
	if err := check("clCreateProgramWithSource", code); err != nil {
		return 0, err
	}
	if code := d.api.buildProgram(prog, 1, &d.id, options, 0, 0); code != 0 {
		log := infoString(func(p uint32, s uintptr, v unsafe.Pointer, r *uintptr) int32 {
			return d.api.programBuildInfo(prog, d.id, p, s, v, r)
		}, clProgramBuildLog)
		d.api.releaseProgram(prog)
		return 0, fmt.Errorf("%w: %v with options %q; build log:\n%s", ErrBuild, &clError{"clBuildProgram", code}, options, strings.TrimSpace(log))
	}
	return prog, nil
}
