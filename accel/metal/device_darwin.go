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
	mpsSupports  func(dev objc.ID) bool // MPSSupportsMTLDevice; nil without MPS
	poolPush     func() unsafe.Pointer
	poolPop      func(unsafe.Pointer)
	dispatch     func(enc objc.ID, sel objc.SEL, groups, threads mtlSize)

	selAlloc, selInit, selRelease, selNewQueue, selNewBuffer, selContents, selName, selUTF8,
	selString, selDesc, selSetLanguage, selLanguage, selSetFastMath, selNewLibrary, selNewFunction,
	selNewPipeline, selMaxThreads, selCommandBuffer, selEncoder, selSetPipeline, selSetBuffer,
	selSetBytes, selDispatch, selEndEncoding, selCommit, selWait, selStatus, selError objc.SEL

	selMatrixDescriptor, selInitMatrix, selInitMultiplication, selEncodeMultiplication objc.SEL
)

// mpsDataTypeFloat32 is MPSDataTypeFloat32: MPSDataTypeFloatBit | 32.
const mpsDataTypeFloat32 = 0x10000000 | 32

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
		// Metal Performance Shaders (matmul) is optional: without it the
		// k_matmul kernel runs.
		if mps, err := purego.Dlopen("/System/Library/Frameworks/MetalPerformanceShaders.framework/MetalPerformanceShaders", purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
			if p, err := purego.Dlsym(mps, "MPSSupportsMTLDevice"); err == nil {
				purego.RegisterFunc(&mpsSupports, p)
			}
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
			&selMatrixDescriptor:     "matrixDescriptorWithRows:columns:rowBytes:dataType:",
			&selInitMatrix:           "initWithBuffer:offset:descriptor:",
			&selInitMultiplication:   "initWithDevice:transposeLeft:transposeRight:resultRows:resultColumns:interiorColumns:alpha:beta:",
			&selEncodeMultiplication: "encodeToCommandBuffer:leftMatrix:rightMatrix:resultMatrix:",
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
	mps        bool // MPSMatrixMultiplication runs float32 matmul
	mu         sync.Mutex
	pipelines  map[string]pipeline
	poison     atomic.Bool
}

// maxGroup is the most threads per threadgroup of every Apple GPU; each
// pipeline's own limit (maxTotalThreadsPerThreadgroup) is checked too.
const maxGroup = 1024

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
		d.mps = mpsSupports != nil && objc.GetClass("MPSMatrixMultiplication") != 0 && mpsSupports(d.dev)
		gemm := "k_matmul kernel"
		if d.mps {
			gemm = "MPSMatrixMultiplication"
		}
		d.detail = fmt.Sprintf("metal:0 %s (MSL %s, float32 only; matmul: %s)", goString(d.dev.Send(selName)), d.version, gemm)
	})
	if err != nil {
		return nil, err
	}
	// Build every pipeline now, so that a kernel the compiler rejects makes
	// the device unavailable instead of failing operations later.
	for _, name := range gpukern.KernelNames {
		if _, err := d.pipeline(name); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBuild, err)
		}
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
	p, n, err := gpukern.Span("metal", "read", b.dt, b.n, dst, offset)
	if err != nil || n == 0 {
		return err
	}
	copy(unsafe.Slice((*byte)(p), n), unsafe.Slice((*byte)(unsafe.Add(b.ptr, offset*b.dt.Size())), n))
	return nil
}

// Write copies elements into the shared buffer.
func (b *Buffer) Write(src any, offset int) error {
	p, n, err := gpukern.Span("metal", "write", b.dt, b.n, src, offset)
	if err != nil || n == 0 {
		return err
	}
	copy(unsafe.Slice((*byte)(unsafe.Add(b.ptr, offset*b.dt.Size())), n), unsafe.Slice((*byte)(p), n))
	return nil
}

// Run runs op's kernels; float64 operations return accel.ErrUnsupported.
func (d *Device) Run(ctx context.Context, op *accel.Op) error {
	return gpukern.Run(ctx, launcher{d}, op)
}

type launcher struct{ d *Device }

// mtlBuffer is a buffer kernel argument.
type mtlBuffer objc.ID

func (l launcher) Caps() gpukern.Caps { return gpukern.Caps{FP64: false, MaxGroup: maxGroup} }

func (l launcher) GroupLimit(dt accel.DType, name string) (int, error) {
	if dt != accel.Float32 {
		return 0, gpukern.Unsupported("metal has no %s", dt)
	}
	p, err := l.d.pipeline(name)
	if err != nil {
		return 0, err
	}
	return min(p.maxThreads, maxGroup), nil
}

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

// gemmMaxBatches bounds the batches encoded one by one for MPS; a larger
// batch of (small) matrices runs faster as one k_matmul launch.
const gemmMaxBatches = 256

// Gemm runs a float32 product with MPSMatrixMultiplication: one encode per
// matrix of the batch, all in one command buffer, on matrices that view the
// operands' shared buffers in place (row-major, as MPS expects).
func (l launcher) Gemm(dt accel.DType, g *gpukern.Gemm) (bool, error) {
	d := l.d
	if dt != accel.Float32 || !d.mps || g.Batches() > gemmMaxBatches {
		return false, nil
	}
	a, b, c := objc.ID(g.A.(mtlBuffer)), objc.ID(g.B.(mtlBuffer)), objc.ID(g.C.(mtlBuffer))
	var err error
	withPool(func() {
		descClass := objc.ID(objc.GetClass("MPSMatrixDescriptor"))
		desc := func(rows, cols int) objc.ID {
			return descClass.Send(selMatrixDescriptor, uint(rows), uint(cols), uint(cols*4), uint32(mpsDataTypeFloat32))
		}
		da, db, dc := desc(g.M, g.K), desc(g.K, g.N), desc(g.M, g.N)
		matrixClass := objc.ID(objc.GetClass("MPSMatrix"))
		var made []objc.ID
		defer func() {
			for _, m := range made {
				m.Send(selRelease)
			}
		}()
		matrix := func(buf objc.ID, offset int64, desc objc.ID) objc.ID {
			m := matrixClass.Send(selAlloc).Send(selInitMatrix, buf, uint(offset*4), desc)
			made = append(made, m)
			return m
		}
		mul := objc.ID(objc.GetClass("MPSMatrixMultiplication")).Send(selAlloc).Send(selInitMultiplication,
			d.dev, false, false, uint(g.M), uint(g.N), uint(g.K), 1.0, 0.0)
		if mul == 0 {
			err = fmt.Errorf("metal: MPSMatrixMultiplication for %dx%dx%d did not initialise", g.M, g.N, g.K)
			return
		}
		made = append(made, mul)
		cb := d.queue.Send(selCommandBuffer)
		err = g.Strided(func(aOff, bOff, cOff int64, count int, sa, sb, sc int64) error {
			for i := range int64(count) {
				mul.Send(selEncodeMultiplication, cb, matrix(a, aOff+i*sa, da), matrix(b, bOff+i*sb, db), matrix(c, cOff+i*sc, dc))
			}
			return nil
		})
		cb.Send(selCommit)
		cb.Send(selWait)
		if status := objc.Send[uint](cb, selStatus); status != 4 && err == nil { // MTLCommandBufferStatusCompleted
			err = fmt.Errorf("metal: MPSMatrixMultiplication: command buffer status %d: %s", status, errorText(cb.Send(selError)))
		}
	})
	return true, err
}
