package accel

import (
	"context"
	"fmt"
	"runtime"

	"github.com/autonode/autonode/accel/internal/kern"
)

// float is the element types arrays hold.
type float interface{ ~float32 | ~float64 }

// cpuDevice is the always-present host backend. Its buffers are Go slices,
// so arrays on it are read and written without copies.
type cpuDevice struct{}

var theCPU Device = cpuDevice{}

// CPU returns the host CPU device, which is always available.
func CPU() Device { return theCPU }

func (cpuDevice) Name() string { return "cpu" }
func (cpuDevice) Kind() string { return "cpu" }

func (cpuDevice) Alloc(dt DType, n int) (Buffer, error) {
	switch dt {
	case Float64:
		return &hostBuffer{dt: dt, f64: make([]float64, n)}, nil
	case Float32:
		return &hostBuffer{dt: dt, f32: make([]float32, n)}, nil
	}
	return nil, errorf(ErrDType, "cpu: cannot allocate dtype %s", dt)
}

func (cpuDevice) Run(ctx context.Context, op *Op) error { return runHost(ctx, op) }

func cpuDetail() string {
	return fmt.Sprintf("%s/%s, %d threads, kernels %s", runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), kern.Impl())
}

// hostBuffer is a Buffer in host memory.
type hostBuffer struct {
	dt  DType
	f64 []float64
	f32 []float32
}

func (b *hostBuffer) Device() Device { return theCPU }
func (b *hostBuffer) DType() DType   { return b.dt }

// Free does nothing: the collector reclaims host memory once no array
// refers to it, and keeping the slices means a Free racing with a running
// kernel cannot make that kernel fault.
func (b *hostBuffer) Free() {}

func (b *hostBuffer) Len() int {
	if b.dt == Float64 {
		return len(b.f64)
	}
	return len(b.f32)
}

func (b *hostBuffer) Read(dst any, offset int) error {
	switch d := dst.(type) {
	case []float64:
		if b.dt == Float64 && offset >= 0 && offset+len(d) <= len(b.f64) {
			copy(d, b.f64[offset:])
			return nil
		}
	case []float32:
		if b.dt == Float32 && offset >= 0 && offset+len(d) <= len(b.f32) {
			copy(d, b.f32[offset:])
			return nil
		}
	}
	return errorf(ErrArgument, "cpu buffer read: %T at offset %d does not fit a %s buffer of %d elements", dst, offset, b.dt, b.Len())
}

func (b *hostBuffer) Write(src any, offset int) error {
	switch s := src.(type) {
	case []float64:
		if b.dt == Float64 && offset >= 0 && offset+len(s) <= len(b.f64) {
			copy(b.f64[offset:], s)
			return nil
		}
	case []float32:
		if b.dt == Float32 && offset >= 0 && offset+len(s) <= len(b.f32) {
			copy(b.f32[offset:], s)
			return nil
		}
	}
	return errorf(ErrArgument, "cpu buffer write: %T at offset %d does not fit a %s buffer of %d elements", src, offset, b.dt, b.Len())
}

// hostData returns a contiguous host array's elements as []T; T must
// match its dtype.
func hostData[T float](a *Array) []T {
	hb := a.host()
	lo, hi := a.off, a.off+a.Size()
	var z T
	switch any(z).(type) {
	case float64:
		return any(hb.f64[lo:hi:hi]).([]T)
	default:
		return any(hb.f32[lo:hi:hi]).([]T)
	}
}

// runHost computes op on host arrays.
func runHost(ctx context.Context, op *Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if op.Kind == OpConvert {
		return runConvert(ctx, op)
	}
	if op.Kind == OpReduce {
		// The input's dtype chooses the kernel; ArgMax/ArgMin write float64.
		if op.In[0].dtype == Float64 {
			return runReduce[float64](ctx, op)
		}
		return runReduce[float32](ctx, op)
	}
	if op.Out.dtype == Float64 {
		return runTyped[float64](ctx, op)
	}
	return runTyped[float32](ctx, op)
}

func runTyped[T float](ctx context.Context, op *Op) error {
	out := hostData[T](op.Out)
	in := func(i int) []T { return hostData[T](op.In[i]) }
	switch op.Kind {
	case OpBinary:
		return binaryHost(ctx, op.Binary, out, op.Out.shape, in(0), op.In[0].shape, in(1), op.In[1].shape)
	case OpBinaryScalar:
		return binaryScalarHost(ctx, op.Binary, out, in(0), T(op.Scalar), op.ScalarFirst)
	case OpUnary:
		return unaryHost(ctx, op.Unary, out, in(0))
	case OpClip:
		return clipHost(ctx, out, in(0), T(op.Scalar), T(op.Scalar2))
	case OpDot:
		v, err := dotHost(ctx, in(0), in(1))
		out[0] = v
		return err
	case OpAxpy:
		return axpyHost(ctx, T(op.Scalar), in(0), out)
	case OpTriad:
		return triadHost(ctx, out, in(0), in(1), T(op.Scalar))
	case OpMatmul:
		return matmulHost(ctx, out, op.Out.shape, in(0), op.In[0].shape, in(1), op.In[1].shape)
	case OpGather:
		return gatherHost(ctx, out, op.Out.shape, in(0), op.Offset, op.Strides)
	case OpScatter:
		return scatterHost(ctx, out, op.Offset, op.Strides, in(0), op.In[0].shape)
	case OpConcat:
		ins := make([][]T, len(op.In))
		shapes := make([][]int, len(op.In))
		for i := range op.In {
			ins[i], shapes[i] = in(i), op.In[i].shape
		}
		return concatHost(ctx, out, op.Out.shape, ins, shapes, op.Axis)
	}
	return errorf(ErrUnsupported, "cpu: unknown operation kind %d", op.Kind)
}
