package cuda

import (
	"bytes"
	"context"
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

// Device is one NVIDIA GPU with its context. All driver calls for the
// context run on one goroutine locked to an OS thread.
type Device struct {
	drv          *driver
	ctx          uintptr
	ordinal      int32
	name, detail string
	arch         string
	maxGridYZ    int
	caps         gpukern.Caps
	calls        chan func()
	progs        [3]program // by accel.DType
	poison       atomic.Bool
}

type program struct {
	once  sync.Once
	mod   uintptr
	funcs map[string]uintptr
	err   error
}

func probe() (accel.Device, error) {
	d, err := Open(0)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Open initialises the driver and opens GPU number ordinal.
func Open(ordinal int) (*Device, error) {
	drv, err := loadDriver(driverPaths, nvrtcPaths)
	if err != nil {
		return nil, err
	}
	d := &Device{drv: drv, ordinal: int32(ordinal), calls: make(chan func())}
	started := make(chan error)
	go d.loop(started)
	if err := <-started; err != nil {
		return nil, err
	}
	return d, nil
}

// loop is the context's goroutine: it creates the context on its locked
// thread, then runs every call sent to it. It never unlocks, so the thread
// holding the driver's thread-local state is never reused by other code.
func (d *Device) loop(started chan<- error) {
	runtime.LockOSThread()
	err := d.setup()
	started <- err
	if err != nil {
		return
	}
	for f := range d.calls {
		f()
	}
}

func (d *Device) setup() error {
	drv := d.drv
	if code := drv.init(0); code != 0 {
		return fmt.Errorf("%w: %v", ErrNoDriver, drv.check("cuInit", code))
	}
	var n int32
	if err := drv.check("cuDeviceGetCount", drv.deviceCount(&n)); err != nil {
		return err
	}
	if d.ordinal >= n {
		return fmt.Errorf("%w: GPU %d requested, the driver sees %d", ErrNoDevice, d.ordinal, n)
	}
	var dev int32
	if err := drv.check("cuDeviceGet", drv.deviceGet(&dev, d.ordinal)); err != nil {
		return err
	}
	var name [256]byte
	drv.deviceName(&name[0], int32(len(name)), dev)
	attr := func(a int32) int {
		var v int32
		drv.deviceAttr(&v, a, dev)
		return int(v)
	}
	var mem uint64
	drv.totalMem(&mem, dev)
	major, minor := attr(attrComputeMajor), attr(attrComputeMinor)
	d.arch = fmt.Sprintf("compute_%d%d", major, minor)
	d.maxGridYZ = min(attr(attrMaxGridDimY), attr(attrMaxGridDimZ))
	d.caps = gpukern.Caps{FP64: true, MaxGroup: attr(attrMaxThreadsPerBlock)}
	if err := drv.check("cuCtxCreate_v2", drv.ctxCreate(&d.ctx, 0, dev)); err != nil {
		return err
	}
	gpu := string(bytes.TrimRight(name[:], "\x00"))
	d.name = fmt.Sprintf("cuda:%d", d.ordinal)
	d.detail = fmt.Sprintf("%s %s (sm_%d%d, %d MiB)", d.name, gpu, major, minor, mem>>20)
	return nil
}

// do runs f on the context's thread and returns its error.
func (d *Device) do(f func() error) error {
	done := make(chan error, 1)
	d.calls <- func() { done <- f() }
	return <-done
}

// Name returns "cuda:N".
func (d *Device) Name() string { return d.name }

// Kind returns "cuda".
func (d *Device) Kind() string { return "cuda" }

// Detail describes the GPU: name, compute capability and memory.
func (d *Device) Detail() string { return d.detail }

// IsGPU reports true: every CUDA device is a GPU.
func (d *Device) IsGPU() bool { return true }

// PoisonNew makes Alloc fill every new buffer with NaN (a testing aid, see
// accel/acceltest). It returns the previous setting.
func (d *Device) PoisonNew(on bool) bool { return d.poison.Swap(on) }

// Synchronize waits for all work on the context.
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

// Alloc allocates storage for n elements of dt on the GPU.
func (d *Device) Alloc(dt accel.DType, n int) (accel.Buffer, error) {
	b := &Buffer{dev: d, dt: dt, n: n}
	size := uintptr(max(n*dt.Size(), 8))
	if err := d.do(func() error { return d.drv.check("cuMemAlloc_v2", d.drv.memAlloc(&b.ptr, size)) }); err != nil {
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

// Free releases the GPU memory.
func (b *Buffer) Free() {
	if !b.freed.Swap(true) {
		b.dev.do(func() error { return b.dev.drv.check("cuMemFree_v2", b.dev.drv.memFree(b.ptr)) })
	}
}

func (b *Buffer) span(op string, s any, off int) (unsafe.Pointer, int, error) {
	var p unsafe.Pointer
	n, ok := 0, false
	switch v := s.(type) {
	case []float64:
		n, ok = len(v), b.dt == accel.Float64
		if ok && n > 0 {
			p = unsafe.Pointer(&v[0])
		}
	case []float32:
		n, ok = len(v), b.dt == accel.Float32
		if ok && n > 0 {
			p = unsafe.Pointer(&v[0])
		}
	}
	if !ok || off < 0 || off+n > b.n {
		return nil, 0, fmt.Errorf("cuda buffer %s: %T of %d elements at offset %d does not fit a %s buffer of %d elements", op, s, n, off, b.dt, b.n)
	}
	return p, n * b.dt.Size(), nil
}

// Read copies elements to the host (synchronously, after queued work).
func (b *Buffer) Read(dst any, offset int) error {
	p, n, err := b.span("read", dst, offset)
	if err != nil || n == 0 {
		return err
	}
	src := b.ptr + uint64(offset*b.dt.Size())
	err = b.dev.do(func() error { return b.dev.drv.check("cuMemcpyDtoH_v2", b.dev.drv.memcpyDtoH(p, src, uintptr(n))) })
	runtime.KeepAlive(dst)
	return err
}

// Write copies host elements into the buffer.
func (b *Buffer) Write(src any, offset int) error {
	p, n, err := b.span("write", src, offset)
	if err != nil || n == 0 {
		return err
	}
	dst := b.ptr + uint64(offset*b.dt.Size())
	err = b.dev.do(func() error { return b.dev.drv.check("cuMemcpyHtoD_v2", b.dev.drv.memcpyHtoD(dst, p, uintptr(n))) })
	runtime.KeepAlive(src)
	return err
}

// Run launches op's kernels and waits for them, so that errors surface here
// and operands freed afterwards are no longer in use.
func (d *Device) Run(ctx context.Context, op *accel.Op) error {
	if err := gpukern.Run(ctx, launcher{d}, op); err != nil {
		return err
	}
	return d.Synchronize()
}

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
	if err := d.do(func() error { return d.drv.check("cuMemAlloc_v2", d.drv.memAlloc(&p, uintptr(max(size, 8)))) }); err != nil {
		return nil, nil, err
	}
	return devPtr(p), func() {
		d.do(func() error {
			d.drv.ctxSync()
			return d.drv.check("cuMemFree_v2", d.drv.memFree(p))
		})
	}, nil
}

func (l launcher) Launch(dt accel.DType, name string, groups, local [3]int, args ...any) error {
	d := l.d
	if groups[1] > d.maxGridYZ || groups[2] > d.maxGridYZ || groups[0] > math.MaxInt32 {
		return gpukern.Unsupported("grid %v exceeds the GPU's limits", groups)
	}
	fn, err := d.function(dt, name)
	if err != nil {
		return err
	}
	// Each argument lives in its own heap cell; the driver reads them
	// through the params array during cuLaunchKernel, so all are pinned.
	params := make([]unsafe.Pointer, len(args))
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
	if len(params) > 0 {
		pin.Pin(&params[0])
	}
	return d.do(func() error {
		code := d.drv.launchKernel(fn, uint32(groups[0]), uint32(groups[1]), uint32(groups[2]),
			uint32(local[0]), uint32(local[1]), uint32(local[2]), 0, 0, &params[0], nil)
		return d.drv.check("cuLaunchKernel("+name+")", code)
	})
}

// function returns a kernel of the module built for dt, compiling it with
// NVRTC on first use (once per device and dtype).
func (d *Device) function(dt accel.DType, name string) (uintptr, error) {
	p := &d.progs[dt]
	p.once.Do(func() {
		p.funcs = map[string]uintptr{}
		t := "float"
		if dt == accel.Float64 {
			t = "double"
		}
		var ptx []byte
		ptx, p.err = d.compile(gpukern.CUDAPrelude+gpukern.Source, []string{
			"--gpu-architecture=" + d.arch, "-DT=" + t, "-DHAVE_FP64", "-DACC=double", "-DIDXOUT=double",
			fmt.Sprintf("-DIS_F64=%d", dt.Size()/8),
		})
		if p.err == nil {
			p.err = d.do(func() error {
				return d.drv.check("cuModuleLoadData", d.drv.moduleLoad(&p.mod, unsafe.Pointer(&ptx[0])))
			})
			runtime.KeepAlive(ptx)
		}
	})
	if p.err != nil {
		return 0, p.err
	}
	var fn uintptr
	err := d.do(func() error {
		if f, ok := p.funcs[name]; ok {
			fn = f
			return nil
		}
		if err := d.drv.check("cuModuleGetFunction("+name+")", d.drv.moduleFunc(&fn, p.mod, name)); err != nil {
			return err
		}
		p.funcs[name] = fn
		return nil
	})
	return fn, err
}

// compile turns CUDA C++ source into PTX with NVRTC; a failure is an error
// wrapping ErrBuild that carries the compiler log.
func (d *Device) compile(src string, opts []string) ([]byte, error) {
	drv := d.drv
	var prog uintptr
	if code := drv.nvrtcCreate(&prog, src, "accel.cu", 0, nil, nil); code != 0 {
		return nil, fmt.Errorf("cuda: nvrtcCreateProgram failed with status %d", code)
	}
	defer drv.nvrtcDestroy(&prog)
	cOpts := make([]*byte, len(opts))
	var pin runtime.Pinner
	defer pin.Unpin()
	for i, o := range opts {
		b := append([]byte(o), 0)
		pin.Pin(&b[0])
		cOpts[i] = &b[0]
	}
	pin.Pin(&cOpts[0])
	if code := drv.nvrtcCompile(prog, int32(len(cOpts)), &cOpts[0]); code != 0 {
		var n uintptr
		log := ""
		if drv.nvrtcLogSize(prog, &n) == 0 && n > 1 {
			buf := make([]byte, n)
			drv.nvrtcLog(prog, &buf[0])
			log = string(bytes.TrimRight(buf, "\x00"))
		}
		return nil, fmt.Errorf("%w: nvrtcCompileProgram status %d with options %q; compiler log:\n%s", ErrBuild, code, strings.Join(opts, " "), strings.TrimSpace(log))
	}
	var n uintptr
	if code := drv.nvrtcPTXSize(prog, &n); code != 0 || n == 0 {
		return nil, fmt.Errorf("cuda: nvrtcGetPTXSize failed with status %d", code)
	}
	ptx := make([]byte, n)
	if code := drv.nvrtcPTX(prog, &ptx[0]); code != 0 {
		return nil, fmt.Errorf("cuda: nvrtcGetPTX failed with status %d", code)
	}
	return ptx, nil
}
