//go:build darwin

package metal

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ebitengine/purego/objc"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/accel/internal/gpukern"
)

// mtlSize is Metal's MTLSize: three NSUIntegers, passed by value.
type mtlSize struct{ Width, Height, Depth uint }

// MSL language versions (MTLLanguageVersion), newest first: 3.0 needs
// macOS 13, 2.4 macOS 12.
var languageVersions = []struct {
	value uint
	name  string
}{{3 << 16, "3.0"}, {2<<16 | 4, "2.4"}}

var (
	loadOnce sync.Once
	loadErr  error

	createDevice func() objc.ID
	poolPush     func() unsafe.Pointer
	poolPop      func(unsafe.Pointer)
	dispatch     func(enc objc.ID, sel objc.SEL, groups, threads mtlSize)

	selAlloc, selInit, selRelease, selNewQueue, selNewBuffer, selContents, selName, selUTF8,
	selString, selDesc, selSetLanguage, selLanguage, selSetFastMath, selNewLibrary, selNewFunction,
	selNewPipeline, selMaxThreads, selCommandBuffer, selEncoder, selSetPipeline, selSetBuffer,
	selSetBytes, selDispatch, selEndEncoding, selCommit, selWait, selStatus, selError objc.SEL
)

// load binds Metal.framework, the autorelease-pool functions and the
// selectors, once.
func load() error {
	loadOnce.Do(func() {
		metal, err := purego.Dlopen("/System/Library/Frameworks/Metal.framework/Metal", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			loadErr = fmt.Errorf("%w: %v", ErrNoDevice, err)
			return
		}
		if _, err := purego.Dlopen("/System/Library/Frameworks/Foundation.framework/Foundation", purego.RTLD_NOW|purego.RTLD_GLOBAL); err != nil {
			loadErr = fmt.Errorf("%w: %v", ErrNoDevice, err)
			return
		}
		libobjc, err := purego.Dlopen("/usr/lib/libobjc.A.dylib", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			loadErr = fmt.Errorf("%w: %v", ErrNoDevice, err)
			return
		}
		for _, s := range []struct {
			fn   any
			lib  uintptr
			name string
		}{
			{&createDevice, metal, "MTLCreateSystemDefaultDevice"},
			{&poolPush, libobjc, "objc_autoreleasePoolPush"},
			{&poolPop, libobjc, "objc_autoreleasePoolPop"},
			{&dispatch, libobjc, "objc_msgSend"},
		} {
			p, err := purego.Dlsym(s.lib, s.name)
			if err != nil {
				loadErr = fmt.Errorf("%w: %s: %v", ErrNoDevice, s.name, err)
				return
			}
			purego.RegisterFunc(s.fn, p)
		}
		for p, name := range map[*objc.SEL]string{
			&selAlloc: "alloc", &selInit: "init", &selRelease: "release", &selNewQueue: "newCommandQueue",
			&selNewBuffer: "newBufferWithLength:options:", &selContents: "contents", &selName: "name",
			&selUTF8: "UTF8String", &selString: "stringWithUTF8String:", &selDesc: "localizedDescription",
			&selSetLanguage: "setLanguageVersion:", &selLanguage: "languageVersion",
			&selSetFastMath: "setFastMathEnabled:", &selNewLibrary: "newLibraryWithSource:options:error:",
			&selNewFunction: "newFunctionWithName:", &selNewPipeline: "newComputePipelineStateWithFunction:error:",
			&selMaxThreads: "maxTotalThreadsPerThreadgroup", &selCommandBuffer: "commandBuffer",
			&selEncoder: "computeCommandEncoder", &selSetPipeline: "setComputePipelineState:",
			&selSetBuffer: "setBuffer:offset:atIndex:", &selSetBytes: "setBytes:length:atIndex:",
			&selDispatch: "dispatchThreadgroups:threadsPerThreadgroup:", &selEndEncoding: "endEncoding",
			&selCommit: "commit", &selWait: "waitUntilCompleted", &selStatus: "status", &selError: "error",
		} {
			*p = objc.RegisterName(name)
		}
	})
	return loadErr
}

// withPool runs f on a locked OS thread inside an autorelease pool, which
// collects the autoreleased command buffers, encoders and strings.
func withPool(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pool := poolPush()
	defer poolPop(pool)
	f()
}

func nsString(s string) objc.ID {
	return objc.ID(objc.GetClass("NSString")).Send(selString, s)
}

func goString(ns objc.ID) string {
	if ns == 0 {
		return ""
	}
	p := objc.Send[*byte](ns, selUTF8)
	if p == nil {
		return ""
	}
	var b []byte
	for q := p; *q != 0; q = (*byte)(unsafe.Add(unsafe.Pointer(q), 1)) {
		b = append(b, *q)
	}
	return string(b)
}

func errorText(err objc.ID) string {
	if err == 0 {
		return "unknown error"
	}
	return goString(err.Send(selDesc))
}

// Device is the system's default Metal GPU with a command queue and the
// compiled kernel library.
type Device struct {
	dev, queue objc.ID
	lib        objc.ID
	version    string
	detail     string
	mu         sync.Mutex
	pipelines  map[string]pipeline
	poison     atomic.Bool
}

type pipeline struct {
	state      objc.ID
	maxThreads int
}

func probe() (accel.Device, error) {
	d, err := Open()
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Open opens the default Metal device and compiles the kernel library with
// the newest MSL version the system accepts.
func Open() (*Device, error) {
	if err := load(); err != nil {
		return nil, err
	}
	d := &Device{pipelines: map[string]pipeline{}}
	var err error
	withPool(func() {
		d.dev = createDevice()
		if d.dev == 0 {
			err = fmt.Errorf("%w: MTLCreateSystemDefaultDevice returned nil (no Metal GPU)", ErrNoDevice)
			return
		}
		d.queue = d.dev.Send(selNewQueue)
		d.lib, d.version, err = d.compile(mslSource)
		d.detail = fmt.Sprintf("metal:0 %s (MSL %s, float32 only)", goString(d.dev.Send(selName)), d.version)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// compile builds MSL source with an explicit language version (newest
// first) and fast math off; it must run inside withPool.
func (d *Device) compile(src string) (objc.ID, string, error) {
	var last string
	for _, v := range languageVersions {
		opts := objc.ID(objc.GetClass("MTLCompileOptions")).Send(selAlloc).Send(selInit)
		opts.Send(selSetLanguage, v.value)
		opts.Send(selSetFastMath, false)
		if got := objc.Send[uint](opts, selLanguage); got != v.value {
			opts.Send(selRelease)
			last = fmt.Sprintf("MSL %s was not accepted (language version reads back %#x)", v.name, got)
			continue
		}
		var nsErr objc.ID
		lib := d.dev.Send(selNewLibrary, nsString(src), opts, unsafe.Pointer(&nsErr))
		opts.Send(selRelease)
		if lib != 0 {
			return lib, v.name, nil
		}
		last = fmt.Sprintf("MSL %s: %s", v.name, errorText(nsErr))
	}
	return 0, "", fmt.Errorf("%w: %s", ErrBuild, last)
}

// Name returns "metal:0".
func (d *Device) Name() string { return "metal:0" }

// Kind returns "metal".
func (d *Device) Kind() string { return "metal" }

// Detail describes the GPU and the MSL version in use.
func (d *Device) Detail() string { return d.detail }

// IsGPU reports true.
func (d *Device) IsGPU() bool { return true }

// PoisonNew makes Alloc fill new buffers with NaN (a testing aid, see
// accel/acceltest). It returns the previous setting.
func (d *Device) PoisonNew(on bool) bool { return d.poison.Swap(on) }

// Buffer is a shared-storage Metal buffer: the CPU and the GPU see the same
// memory, so Read and Write are plain copies with no transfer.
type Buffer struct {
	dev   *Device
	buf   objc.ID
	ptr   unsafe.Pointer
	dt    accel.DType
	n     int
	freed atomic.Bool
}

// Alloc allocates a shared-storage buffer for n elements of dt.
func (d *Device) Alloc(dt accel.DType, n int) (accel.Buffer, error) {
	b := &Buffer{dev: d, dt: dt, n: n}
	withPool(func() {
		b.buf = d.dev.Send(selNewBuffer, uint(max(n*dt.Size(), 8)), uint(0)) // MTLResourceStorageModeShared
		if b.buf != 0 {
			b.ptr = objc.Send[unsafe.Pointer](b.buf, selContents)
		}
	})
	if b.buf == 0 || b.ptr == nil {
		return nil, fmt.Errorf("%w: newBufferWithLength: %d bytes", ErrOutOfMemory, n*dt.Size())
	}
	if d.poison.Load() {
		if dt == accel.Float64 {
			s := unsafe.Slice((*float64)(b.ptr), n)
			for i := range s {
				s[i] = math.NaN()
			}
		} else {
			s := unsafe.Slice((*float32)(b.ptr), n)
			for i := range s {
				s[i] = float32(math.NaN())
			}
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

// Free releases the buffer.
func (b *Buffer) Free() {
	if !b.freed.Swap(true) {
		withPool(func() { b.buf.Send(selRelease) })
	}
}

// Read copies elements out of the shared buffer. Every launch waits for
// its command buffer, so no GPU work is pending here.
func (b *Buffer) Read(dst any, offset int) error {
	switch v := dst.(type) {
	case []float64:
		if b.dt == accel.Float64 && offset >= 0 && offset+len(v) <= b.n {
			copy(v, unsafe.Slice((*float64)(b.ptr), b.n)[offset:])
			return nil
		}
	case []float32:
		if b.dt == accel.Float32 && offset >= 0 && offset+len(v) <= b.n {
			copy(v, unsafe.Slice((*float32)(b.ptr), b.n)[offset:])
			return nil
		}
	}
	return fmt.Errorf("metal buffer read: %T at offset %d does not fit a %s buffer of %d elements", dst, offset, b.dt, b.n)
}

// Write copies elements into the shared buffer.
func (b *Buffer) Write(src any, offset int) error {
	switch v := src.(type) {
	case []float64:
		if b.dt == accel.Float64 && offset >= 0 && offset+len(v) <= b.n {
			copy(unsafe.Slice((*float64)(b.ptr), b.n)[offset:], v)
			return nil
		}
	case []float32:
		if b.dt == accel.Float32 && offset >= 0 && offset+len(v) <= b.n {
			copy(unsafe.Slice((*float32)(b.ptr), b.n)[offset:], v)
			return nil
		}
	}
	return fmt.Errorf("metal buffer write: %T at offset %d does not fit a %s buffer of %d elements", src, offset, b.dt, b.n)
}

// Run runs op's kernels; float64 operations return accel.ErrUnsupported.
func (d *Device) Run(ctx context.Context, op *accel.Op) error {
	return gpukern.Run(ctx, launcher{d}, op)
}

type launcher struct{ d *Device }

// mtlBuffer is a buffer kernel argument.
type mtlBuffer objc.ID

func (l launcher) Caps() gpukern.Caps { return gpukern.Caps{FP64: false, MaxGroup: 1024} }

func (l launcher) Mem(b accel.Buffer) (any, error) {
	mb, ok := b.(*Buffer)
	if !ok || mb.dev != l.d {
		return nil, fmt.Errorf("metal: buffer of %s is not on metal:0", b.Device().Name())
	}
	return mtlBuffer(mb.buf), nil
}

func (l launcher) Temp(size int) (any, func(), error) {
	var buf objc.ID
	withPool(func() { buf = l.d.dev.Send(selNewBuffer, uint(max(size, 8)), uint(0)) })
	if buf == 0 {
		return nil, nil, fmt.Errorf("%w: scratch buffer of %d bytes", ErrOutOfMemory, size)
	}
	return mtlBuffer(buf), func() { withPool(func() { buf.Send(selRelease) }) }, nil
}

func (d *Device) pipeline(name string) (pipeline, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.pipelines[name]; ok {
		return p, nil
	}
	var p pipeline
	var err error
	withPool(func() {
		fn := d.lib.Send(selNewFunction, nsString(name))
		if fn == 0 {
			err = gpukern.Unsupported("metal: no kernel %s", name)
			return
		}
		defer fn.Send(selRelease)
		var nsErr objc.ID
		p.state = d.dev.Send(selNewPipeline, fn, unsafe.Pointer(&nsErr))
		if p.state == 0 {
			err = fmt.Errorf("%w: pipeline %s: %s", ErrBuild, name, errorText(nsErr))
			return
		}
		p.maxThreads = int(objc.Send[uint](p.state, selMaxThreads))
	})
	if err == nil {
		d.pipelines[name] = p
	}
	return p, err
}

func (l launcher) Launch(dt accel.DType, name string, groups, local [3]int, args ...any) error {
	if dt != accel.Float32 {
		return gpukern.Unsupported("metal has no %s", dt)
	}
	d := l.d
	p, err := d.pipeline(name)
	if err != nil {
		return err
	}
	if local[0]*local[1]*local[2] > p.maxThreads {
		return gpukern.Unsupported("metal: %s allows %d threads per threadgroup", name, p.maxThreads)
	}
	withPool(func() {
		cb := d.queue.Send(selCommandBuffer)
		enc := cb.Send(selEncoder)
		enc.Send(selSetPipeline, p.state)
		for i, a := range args {
			idx := uint(i)
			switch v := a.(type) {
			case mtlBuffer:
				enc.Send(selSetBuffer, objc.ID(v), uint(0), idx)
			case int64:
				enc.Send(selSetBytes, unsafe.Pointer(&v), uint(8), idx)
			case int32:
				enc.Send(selSetBytes, unsafe.Pointer(&v), uint(4), idx)
			case float32:
				enc.Send(selSetBytes, unsafe.Pointer(&v), uint(4), idx)
			case gpukern.Meta:
				enc.Send(selSetBytes, unsafe.Pointer(&v), uint(unsafe.Sizeof(v)), idx)
			default:
				err = fmt.Errorf("metal: %s: argument %d has unsupported type %T", name, i, a)
				enc.Send(selEndEncoding)
				return
			}
		}
		dispatch(enc, selDispatch,
			mtlSize{uint(groups[0]), uint(groups[1]), uint(groups[2])},
			mtlSize{uint(local[0]), uint(local[1]), uint(local[2])})
		enc.Send(selEndEncoding)
		cb.Send(selCommit)
		cb.Send(selWait)
		if status := objc.Send[uint](cb, selStatus); status != 4 { // MTLCommandBufferStatusCompleted
			err = fmt.Errorf("metal: %s: command buffer status %d: %s", name, status, errorText(cb.Send(selError)))
		}
	})
	return err
}
