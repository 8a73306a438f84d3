package cuda

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/accel/internal/gpukern"
)

// Device is one NVIDIA GPU, driven through its primary context (the one
// the CUDA runtime and cuBLAS use too), created with
// CU_CTX_SCHED_BLOCKING_SYNC so that a host waiting for the GPU sleeps
// instead of spinning a core. Every call into the context runs with the
// calling goroutine locked to its OS thread and the context made current
// on that thread, one call at a time. Operations are queued on the legacy
// default stream and not waited for: reading a buffer (cuMemcpyDtoH) waits
// for the work before it, so chains of operations never stop on the host.
type Device struct {
	drv     *driver
	nv      *nvrtc
	blas    *blas // nil when cuBLAS is not available: matmul uses the kernel
	blasWhy string

	dev       int32
	ctx       uintptr
	ordinal   int
	cc        int // compute capability, e.g. 90
	name      string
	detail    string
	caps      gpukern.Caps
	maxBlock  [3]int
	pools     bool // stream-ordered allocation (cuMemAllocAsync)
	arch      int  // the architecture the kernels were compiled for
	binary    string
	mu        sync.Mutex
	modules   [3]module // by accel.DType
	poison    atomic.Bool
	hostBytes atomic.Int64 // bytes copied between host and device
	launches  atomic.Int64 // kernels and cuBLAS calls queued
	fallbacks atomic.Int64 // operations handed back to the host
}

// module is the kernel library built for one dtype.
type module struct {
	mod   uintptr
	funcs map[string]function
}

type function struct {
	fn         uintptr
	maxThreads int
}

func probe() (accel.Device, error) {
	d, err := Open(0)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Open loads the driver and opens GPU number ordinal: it retains the
// device's primary context, compiles the kernel library for float32 and
// float64 with NVRTC and loads it, and binds cuBLAS when it is there. A
// device on which any of this fails is not available: the error says why
// (ErrNoDriver, ErrNoDevice, ErrNoCompiler, or ErrBuild with the compiler's
// or the JIT's log), so accel.Devices lists it as not found and threads
// that asked for a GPU run on the CPU.
func Open(ordinal int) (*Device, error) {
	drv, err := loadDriver(driverPaths)
	if err != nil {
		return nil, err
	}
	d := &Device{drv: drv, ordinal: ordinal}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.setup(); err != nil {
		if d.ctx != 0 && drv.primaryRelease != nil {
			drv.ctxSetCurrent(0)
			drv.primaryRelease(d.dev)
		}
		return nil, err
	}
	return d, nil
}

func (d *Device) setup() error {
	drv := d.drv
	if code := drv.init(0); code != 0 {
		err := drv.check("cuInit", code)
		if errors.Is(err, ErrNoDevice) {
			return fmt.Errorf("%w: the driver (%s, CUDA %s) sees no GPU: %v", ErrNoDevice, drv.path, versionString(drv.version), err)
		}
		return fmt.Errorf("%w: %s: %v", ErrNoDriver, drv.path, err)
	}
	var n int32
	if err := drv.check("cuDeviceGetCount", drv.deviceCount(&n)); err != nil {
		return err
	}
	if d.ordinal < 0 || d.ordinal >= int(n) {
		return fmt.Errorf("%w: GPU %d requested, the driver sees %d", ErrNoDevice, d.ordinal, n)
	}
	if err := drv.check("cuDeviceGet", drv.deviceGet(&d.dev, int32(d.ordinal))); err != nil {
		return err
	}
	var name [256]byte
	if err := drv.check("cuDeviceGetName", drv.deviceName(&name[0], int32(len(name)), d.dev)); err != nil {
		return err
	}
	var attrErr error
	attr := func(a int32) int {
		var v int32
		if err := drv.check(fmt.Sprintf("cuDeviceGetAttribute(%d)", a), drv.deviceAttr(&v, a, d.dev)); err != nil && attrErr == nil {
			attrErr = err
		}
		return int(v)
	}
	d.cc = 10*attr(attrComputeMajor) + attr(attrComputeMinor)
	d.caps = gpukern.Caps{FP64: true, MaxGroup: attr(attrMaxThreadsPerBlock),
		MaxGrid: [3]int{attr(attrMaxGridDimX), attr(attrMaxGridDimY), attr(attrMaxGridDimZ)}}
	d.maxBlock = [3]int{attr(attrMaxBlockDimX), attr(attrMaxBlockDimY), attr(attrMaxBlockDimZ)}
	sms := attr(attrMultiprocessorCount)
	if attrErr != nil {
		return attrErr
	}
	var pools int32
	if drv.memAllocAsync != nil && drv.memFreeAsync != nil && drv.deviceAttr(&pools, attrMemoryPoolsSupported, d.dev) == 0 {
		d.pools = pools != 0
	}
	var mem uint64
	if err := drv.check("cuDeviceTotalMem_v2", drv.totalMem(&mem, d.dev)); err != nil {
		return err
	}
	// Blocking sync: waiting for the GPU sleeps instead of spinning. The
	// _v2 setter also works when another library already activated the
	// primary context; with the original one that is an error we live with.
	sched := "blocking sync"
	if drv.primarySetFlag == nil {
		sched = "default scheduling"
	} else if code := drv.primarySetFlag(d.dev, ctxSchedBlockingSync); code != 0 {
		if code != cudaErrorPrimaryContextActive {
			return drv.check("cuDevicePrimaryCtxSetFlags", code)
		}
		sched = "scheduling set by another library"
	}
	if err := drv.check("cuDevicePrimaryCtxRetain", drv.primaryRetain(&d.ctx, d.dev)); err != nil {
		return err
	}
	if err := drv.check("cuCtxSetCurrent", drv.ctxSetCurrent(d.ctx)); err != nil {
		return err
	}
	if d.pools {
		// Keep freed memory in the pool: returning it to the OS at every
		// synchronisation makes each allocation cost a system call.
		var pool uintptr
		threshold := uint64(math.MaxUint64)
		if drv.defaultMemPool == nil || drv.poolSetAttr == nil || drv.defaultMemPool(&pool, d.dev) != 0 ||
			drv.poolSetAttr(pool, memPoolAttrReleaseThreshold, unsafe.Pointer(&threshold)) != 0 {
			d.pools = false
		}
	}
	nv, err := loadNVRTC(nvrtcPaths, drv.version)
	if err != nil {
		return err
	}
	d.nv = nv
	for _, dt := range []accel.DType{accel.Float32, accel.Float64} {
		if err := d.build(dt); err != nil {
			return err
		}
		names := gpukern.KernelNames
		if dt == accel.Float64 {
			names = append(append([]string(nil), names...), gpukern.ConvertKernels...)
		}
		for _, name := range names {
			if _, err := d.function(dt, name); err != nil {
				return fmt.Errorf("%w: the %s kernels loaded, but: %v", ErrBuild, dt, err)
			}
		}
	}
	if b, err := loadBLAS(cublasPaths, drv.version); err != nil {
		d.blasWhy = err.Error()
	} else if err := b.check("cublasCreate_v2", b.create(&b.handle)); err != nil {
		d.blasWhy = fmt.Sprintf("%s (%s) does not start: %v", b, b.path, err)
	} else if err := b.check("cublasSetStream_v2", b.setStream(b.handle, 0)); err != nil {
		d.blasWhy = err.Error()
		b.destroy(b.handle)
	} else {
		d.blas = b
	}
	gpu := string(bytes.TrimRight(name[:], "\x00"))
	d.name = fmt.Sprintf("cuda:%d", d.ordinal)
	gemm := "matmul: k_matmul kernel (" + d.blasWhy + ")"
	if d.blas != nil {
		gemm = "matmul: " + d.blas.String()
	}
	d.detail = fmt.Sprintf("%s %s (sm_%d, %d SMs, %d MiB; driver CUDA %s, %s; %s, kernels as %s for sm_%d; %s)",
		d.name, gpu, d.cc, sms, mem>>20, versionString(drv.version), sched, nv, d.binary, d.arch, gemm)
	return nil
}

// build compiles the kernel library for dt and loads it into the context.
// It prefers a cubin for the device's own architecture, which needs no JIT
// and which any driver of the toolkit's major version loads; PTX (compiled
// by the driver) is the fallback, and the only choice when NVRTC's newest
// architecture has another major version than the GPU.
func (d *Device) build(dt accel.DType) error {
	arch, cubin, err := d.nv.target(d.cc)
	if err != nil {
		return err
	}
	t, acc := "float", "double"
	if dt == accel.Float64 {
		t = "double"
	}
	src := gpukern.CUDAPrelude + gpukern.Source
	defs := []string{"-DT=" + t, "-DACC=" + acc, "-DIDXOUT=double", fmt.Sprintf("-DIS_F64=%d", dt.Size()/8)}
	var tried []string
	if cubin {
		image, err := d.nv.compileCUDA(src, append([]string{fmt.Sprintf("--gpu-architecture=sm_%d", arch)}, defs...), true)
		if err != nil {
			return err
		}
		mod, err := d.loadModule(image)
		if err == nil {
			d.modules[dt] = module{mod: mod, funcs: map[string]function{}}
			d.arch, d.binary = arch, "cubin"
			return nil
		}
		tried = append(tried, fmt.Sprintf("the sm_%d cubin: %v", arch, err))
	}
	image, err := d.nv.compileCUDA(src, append([]string{fmt.Sprintf("--gpu-architecture=compute_%d", arch)}, defs...), false)
	if err != nil {
		return err
	}
	mod, err := d.loadModule(image)
	if err != nil {
		tried = append(tried, fmt.Sprintf("compute_%d PTX: %v", arch, err))
		hint := ""
		if d.nv.major*1000+d.nv.minor*10 > d.drv.version {
			hint = fmt.Sprintf(" (%s is newer than the driver's CUDA %s: update the driver or install NVRTC %d.x)",
				d.nv, versionString(d.drv.version), d.drv.version/1000)
		}
		return fmt.Errorf("%w: the driver does not load the %s kernels compiled by %s (%s)%s: %s",
			ErrBuild, dt, d.nv, d.nv.path, hint, strings.Join(tried, "; "))
	}
	d.modules[dt] = module{mod: mod, funcs: map[string]function{}}
	d.arch, d.binary = arch, "PTX"
	return nil
}

// loadModule loads a cubin or PTX image with cuModuleLoadDataEx, asking for
// the JIT's error log, which a failure carries.
func (d *Device) loadModule(image []byte) (uintptr, error) {
	errLog, infoLog := make([]byte, 16<<10), make([]byte, 4<<10)
	opts := []int32{jitErrorLogBuffer, jitErrorLogBufferBytes, jitInfoLogBuffer, jitInfoLogBufferBytes}
	vals := []uintptr{0, uintptr(len(errLog)), 0, uintptr(len(infoLog))}
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&image[0])
	pin.Pin(&errLog[0])
	pin.Pin(&infoLog[0])
	pin.Pin(&opts[0])
	pin.Pin(&vals[0])
	vals[0] = uintptr(unsafe.Pointer(&errLog[0]))
	vals[2] = uintptr(unsafe.Pointer(&infoLog[0]))
	var mod uintptr
	code := d.drv.moduleLoadEx(&mod, unsafe.Pointer(&image[0]), uint32(len(opts)), &opts[0], &vals[0])
	runtime.KeepAlive(image)
	if code != 0 {
		err := d.drv.check("cuModuleLoadDataEx", code)
		if log := trimLog(errLog); log != "" {
			return 0, fmt.Errorf("%v; JIT log: %s", err, log)
		}
		return 0, err
	}
	return mod, nil
}

// do runs f with the calling goroutine locked to its OS thread and the
// primary context current on it, serialised with every other call.
func (d *Device) do(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.check("cuCtxSetCurrent", d.drv.ctxSetCurrent(d.ctx)); err != nil {
		return err
	}
	return f()
}

// Name returns "cuda:N".
func (d *Device) Name() string { return d.name }

// Kind returns "cuda".
func (d *Device) Kind() string { return "cuda" }

// Detail describes the GPU: name, compute capability, memory, the driver,
// NVRTC and cuBLAS versions in use and what the kernels were compiled as.
func (d *Device) Detail() string { return d.detail }

// IsGPU reports true: every CUDA device is a GPU.
func (d *Device) IsGPU() bool { return true }

// DriverVersion returns the CUDA version the driver supports, e.g. "12.4".
func (d *Device) DriverVersion() string { return versionString(d.drv.version) }

// CompilerVersion returns the NVRTC version in use and where it was
// loaded from.
func (d *Device) CompilerVersion() (version, path string) {
	return fmt.Sprintf("%d.%d", d.nv.major, d.nv.minor), d.nv.path
}

// BLAS returns the cuBLAS version matmul uses, or "" and why not.
func (d *Device) BLAS() (version, whyNot string) {
	if d.blas == nil {
		return "", d.blasWhy
	}
	return fmt.Sprintf("%d.%d.%d", d.blas.major, d.blas.minor, d.blas.patch), ""
}

// PoisonNew makes Alloc fill every new buffer with NaN (a testing aid, see
// accel/acceltest). It returns the previous setting.
func (d *Device) PoisonNew(on bool) bool { return d.poison.Swap(on) }

// Synchronize waits for all work queued on the device and returns the
// first error of any of it.
func (d *Device) Synchronize() error {
	return d.do(func() error { return d.drv.check("cuCtxSynchronize", d.drv.ctxSync()) })
}

// Buffer is device memory for one array.
type Buffer struct {
	dev   *Device
	ptr   uint64
	dt    accel.DType
	n     int
	freed atomic.Bool
}

// allocLocked allocates bytes of device memory, stream-ordered when the
// device supports it. It runs inside do.
func (d *Device) allocLocked(p *uint64, bytes int) error {
	if d.pools {
		return d.drv.check("cuMemAllocAsync", d.drv.memAllocAsync(p, uintptr(bytes), 0))
	}
	return d.drv.check("cuMemAlloc_v2", d.drv.memAlloc(p, uintptr(bytes)))
}

// freeLocked frees device memory once the work queued before has finished
// with it: in stream order with cuMemFreeAsync, else after waiting for the
// device. It runs inside do.
func (d *Device) freeLocked(p uint64) error {
	if d.pools {
		return d.drv.check("cuMemFreeAsync", d.drv.memFreeAsync(p, 0))
	}
	if err := d.drv.check("cuCtxSynchronize", d.drv.ctxSync()); err != nil {
		return err
	}
	return d.drv.check("cuMemFree_v2", d.drv.memFree(p))
}

// Alloc allocates storage for n elements of dt on the GPU.
func (d *Device) Alloc(dt accel.DType, n int) (accel.Buffer, error) {
	if n < 0 || n > math.MaxInt64/8 {
		return nil, fmt.Errorf("cuda: cannot allocate %d elements", n)
	}
	b := &Buffer{dev: d, dt: dt, n: n}
	if err := d.do(func() error { return d.allocLocked(&b.ptr, max(n*dt.Size(), 8)) }); err != nil {
		return nil, err
	}
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

// Free releases the GPU memory after the work queued on it.
func (b *Buffer) Free() {
	if !b.freed.Swap(true) {
		b.dev.do(func() error { return b.dev.freeLocked(b.ptr) })
	}
}

// Read copies elements to the host; it waits for the work queued before.
func (b *Buffer) Read(dst any, offset int) error {
	p, n, err := gpukern.Span("cuda", "read", b.dt, b.n, dst, offset)
	if err != nil || n == 0 {
		return err
	}
	src := b.ptr + uint64(offset*b.dt.Size())
	b.dev.hostBytes.Add(int64(n))
	err = b.dev.do(func() error { return b.dev.drv.check("cuMemcpyDtoH_v2", b.dev.drv.memcpyDtoH(p, src, uintptr(n))) })
	runtime.KeepAlive(dst)
	return err
}

// Write copies host elements into the buffer, in order with queued work.
func (b *Buffer) Write(src any, offset int) error {
	p, n, err := gpukern.Span("cuda", "write", b.dt, b.n, src, offset)
	if err != nil || n == 0 {
		return err
	}
	dst := b.ptr + uint64(offset*b.dt.Size())
	b.dev.hostBytes.Add(int64(n))
	err = b.dev.do(func() error { return b.dev.drv.check("cuMemcpyHtoD_v2", b.dev.drv.memcpyHtoD(dst, p, uintptr(n))) })
	runtime.KeepAlive(src)
	return err
}

// Run queues op's kernels (or cuBLAS calls) without waiting for them;
// operations without a kernel return accel.ErrUnsupported.
func (d *Device) Run(ctx context.Context, op *accel.Op) error {
	err := d.do(func() error { return gpukern.Run(ctx, launcher{d}, op) })
	if errors.Is(err, accel.ErrUnsupported) {
		d.fallbacks.Add(1)
	}
	return err
}

// launcher adapts Device to gpukern.Launcher; its methods run inside do.
type launcher struct{ d *Device }

// devPtr is a CUdeviceptr kernel argument.
type devPtr uint64

func (l launcher) Caps() gpukern.Caps { return l.d.caps }

func (l launcher) Mem(b accel.Buffer) (any, error) {
	cb, ok := b.(*Buffer)
	if !ok || cb.dev != l.d {
		return nil, fmt.Errorf("cuda: buffer of %s is not on %s", b.Device().Name(), l.d.name)
	}
	return devPtr(cb.ptr), nil
}

func (l launcher) Temp(size int) (any, func(), error) {
	d := l.d
	var p uint64
	if err := d.allocLocked(&p, max(size, 8)); err != nil {
		return nil, nil, err
	}
	return devPtr(p), func() { d.freeLocked(p) }, nil
}

func (l launcher) GroupLimit(dt accel.DType, name string) (int, error) {
	f, err := l.d.function(dt, name)
	return f.maxThreads, err
}

func (l launcher) Launch(dt accel.DType, name string, groups, local [3]int, args ...any) error {
	d := l.d
	f, err := d.function(dt, name)
	if err != nil {
		return err
	}
	for i := range 3 {
		if groups[i] < 1 || groups[i] > d.caps.MaxGrid[i] || local[i] < 1 || local[i] > d.maxBlock[i] {
			return gpukern.Unsupported("cuda: %s: grid %v of blocks %v exceeds the GPU's limits (grid %v, block %v)", name, groups, local, d.caps.MaxGrid, d.maxBlock)
		}
	}
	if threads := local[0] * local[1] * local[2]; threads > f.maxThreads {
		return gpukern.Unsupported("cuda: %s runs at most %d threads per block on this GPU, not %d", name, f.maxThreads, threads)
	}
	// Each argument lives in its own cell; the driver reads them through
	// the params array during cuLaunchKernel, so all are pinned.
	params := make([]unsafe.Pointer, max(len(args), 1))
	var pin runtime.Pinner
	defer pin.Unpin()
	for i, a := range args {
		var p unsafe.Pointer
		switch v := a.(type) {
		case devPtr:
			c := uint64(v)
			p = unsafe.Pointer(&c)
		case int64:
			p = unsafe.Pointer(&v)
		case int32:
			p = unsafe.Pointer(&v)
		case float64:
			p = unsafe.Pointer(&v)
		case float32:
			p = unsafe.Pointer(&v)
		case gpukern.Meta:
			p = unsafe.Pointer(&v)
		default:
			return fmt.Errorf("cuda: %s: argument %d has unsupported type %T", name, i, a)
		}
		pin.Pin(p)
		params[i] = p
	}
	pin.Pin(&params[0])
	d.launches.Add(1)
	code := d.drv.launchKernel(f.fn, uint32(groups[0]), uint32(groups[1]), uint32(groups[2]),
		uint32(local[0]), uint32(local[1]), uint32(local[2]), 0, 0, &params[0], nil)
	return d.drv.check("cuLaunchKernel("+name+")", code)
}

// function returns a kernel of the module built for dt with its thread
// limit (CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK); it runs inside do.
func (d *Device) function(dt accel.DType, name string) (function, error) {
	m := &d.modules[dt]
	if m.mod == 0 {
		return function{}, gpukern.Unsupported("cuda: no %s kernels", dt)
	}
	if f, ok := m.funcs[name]; ok {
		return f, nil
	}
	var f function
	cname := cBytes(name)
	if err := d.drv.check("cuModuleGetFunction("+name+")", d.drv.moduleFunc(&f.fn, m.mod, &cname[0])); err != nil {
		return function{}, err
	}
	var v int32
	if err := d.drv.check("cuFuncGetAttribute("+name+", MAX_THREADS_PER_BLOCK)", d.drv.funcAttr(&v, funcAttrMaxThreadsPerBlock, f.fn)); err != nil {
		return function{}, err
	}
	f.maxThreads = min(int(v), d.caps.MaxGroup)
	m.funcs[name] = f
	return f, nil
}
