package accel

import (
	"context"
	"errors"
	"math"
	"runtime"
)

// Options configures an Exec.
type Options struct {
	// Device is where new arrays live and operations run; nil means CPU().
	Device Device
	// Budget is charged for every array the Exec allocates; nil means
	// unlimited. The thread engine gives each thread run its own.
	Budget *Budget
}

// Exec makes arrays and runs operations on them: on one device, charging one
// budget. Its methods are the package's operations. Methods that read or
// write element data take a context and stop, returning an error that wraps
// ctx.Err(), soon after it is cancelled; constructors and Reshape do not.
//
// An Exec is safe for concurrent use. Operands may come from other Execs as
// long as they live on the same device; results are charged to this one.
type Exec struct {
	dev    Device
	budget *Budget
	life   *lifetime
}

// New returns an Exec for opts.
func New(opts Options) *Exec {
	dev := opts.Device
	if dev == nil {
		dev = CPU()
	}
	return &Exec{dev: dev, budget: opts.Budget, life: &lifetime{budget: opts.Budget}}
}

// Device returns the device the Exec allocates on.
func (e *Exec) Device() Device { return e.dev }

// Budget returns the Exec's budget (nil when unlimited).
func (e *Exec) Budget() *Budget { return e.budget }

// Close ends the Exec's lifetime: every array the Exec allocated that is
// still live counts as freed from now on (operations on it fail with
// ErrFreed), its bytes go back to the budget at once, device buffers are
// released, and further allocations fail with ErrClosed. The thread engine
// closes a run's Exec when the run ends, which bounds every array's life by
// its run. Arrays from other Execs are untouched. Close is idempotent.
func (e *Exec) Close() { e.life.close() }

// poisonOutputs is a test hook: when set, every new array is filled with NaN
// before any kernel writes it, so unwritten elements show up.
var poisonOutputs bool

// alloc makes an array of the given dtype and shape whose contents the
// caller will overwrite. The budget is charged before anything is allocated.
func (e *Exec) alloc(op string, dt DType, shape []int) (*Array, error) {
	if !dt.valid() {
		return nil, errorf(ErrDType, "%s: invalid dtype %d: allowed are float64 and float32", op, dt)
	}
	n, err := checkShape(op, shape)
	if err != nil {
		return nil, err
	}
	if e.life.closed.Load() {
		return nil, errorf(ErrClosed, "%s: the Exec was closed: its run has ended", op)
	}
	bytes := int64(n) * int64(dt.Size())
	if phys := physicalMemory(); phys > 0 && bytes > phys {
		return nil, errorf(ErrBudget, "%s: array of shape %s %s needs %s, more than this machine's %s of memory (%s)", op, formatShape(shape), dt, formatSize(bytes), formatSize(phys), memorySource())
	}
	if err := e.budget.reserveReclaiming(bytes); err != nil {
		var oe *opError
		if errors.As(err, &oe) {
			return nil, errorf(oe.kind, "%s: array of shape %s %s %s", op, formatShape(shape), dt, oe.msg)
		}
		return nil, err
	}
	buf, err := e.dev.Alloc(dt, n)
	if err != nil {
		e.budget.Release(bytes)
		return nil, errorf(ErrDevice, "%s: allocating %s on %s: %v", op, formatSize(bytes), e.dev.Name(), err)
	}
	st := e.life.adopt(buf, bytes)
	if st == nil { // closed meanwhile
		buf.Free()
		return nil, errorf(ErrClosed, "%s: the Exec was closed: its run has ended", op)
	}
	a := &Array{shape: cloneInts(shape), dtype: dt, st: st}
	if poisonOutputs && n > 0 {
		if hb := a.host(); hb != nil {
			for i := range hb.f64 {
				hb.f64[i] = math.NaN()
			}
			for i := range hb.f32 {
				hb.f32[i] = float32(math.NaN())
			}
		}
	}
	return a, nil
}

// checkOperands checks that arrays are live and share one device with the
// Exec, which is where the operation will run.
func (e *Exec) checkOperands(op string, arrays ...*Array) error {
	for _, a := range arrays {
		if err := a.live(op); err != nil {
			return err
		}
		if d := a.Device(); d != e.dev {
			return errorf(ErrDevice, "%s: operand lives on device %s but this Exec runs on %s: move it with ToDevice first", op, d.Name(), e.dev.Name())
		}
	}
	return nil
}

// run hands op to the device; operations the device does not implement run
// on the host with copies. op is passed by value so that building one costs
// no allocation on the CPU path.
func (e *Exec) run(ctx context.Context, name string, op Op) error {
	var err error
	if _, host := e.dev.(cpuDevice); host {
		err = runHost(ctx, &op)
	} else {
		err = e.runDevice(ctx, op)
	}
	runtime.KeepAlive(op.In)
	runtime.KeepAlive(op.Out)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return wrapCtx(name, err)
		}
		var oe *opError
		if errors.As(err, &oe) {
			return err
		}
		return errorf(ErrDevice, "%s: %s: %v", name, e.dev.Name(), err)
	}
	return nil
}

// runDevice runs op on a non-host device, falling back to the host.
func (e *Exec) runDevice(ctx context.Context, op Op) error {
	// The device gets its own copies of the slices, so that the caller's
	// operand list can stay on its stack on the CPU path.
	dop := Op{
		Kind: op.Kind, Binary: op.Binary, Unary: op.Unary, Reduce: op.Reduce,
		In: append([]*Array(nil), op.In...), Out: op.Out,
		Scalar: op.Scalar, Scalar2: op.Scalar2, ScalarFirst: op.ScalarFirst,
		Axis: op.Axis, Offset: op.Offset, Strides: append([]int(nil), op.Strides...),
	}
	err := e.dev.Run(ctx, &dop)
	if errors.Is(err, ErrUnsupported) {
		err = e.runOnHost(ctx, &dop)
	}
	return err
}

// runOnHost copies op's arrays to the host, runs it there and writes the
// output back to the device. The host copies are charged to the budget.
func (e *Exec) runOnHost(ctx context.Context, op *Op) error {
	hostExec := New(Options{Budget: e.budget})
	hop := *op
	hop.In, hop.Out = make([]*Array, len(op.In)), nil
	var temps []*Array
	defer func() {
		for _, t := range temps {
			t.Free()
		}
	}()
	toHost := func(a *Array) (*Array, error) {
		h, err := hostExec.alloc("host copy", a.dtype, a.shape)
		if err != nil {
			return nil, err
		}
		temps = append(temps, h)
		hb := h.host()
		if a.dtype == Float64 {
			err = a.st.buf.Read(hb.f64, 0)
		} else {
			err = a.st.buf.Read(hb.f32, 0)
		}
		return h, err
	}
	var err error
	for i, a := range op.In {
		if hop.In[i], err = toHost(a); err != nil {
			return err
		}
		if a == op.Out {
			hop.Out = hop.In[i]
		}
	}
	if hop.Out == nil {
		if hop.Out, err = toHost(op.Out); err != nil {
			return err
		}
	}
	if err := runHost(ctx, &hop); err != nil {
		return err
	}
	hb := hop.Out.host()
	if op.Out.dtype == Float64 {
		return op.Out.st.buf.Write(hb.f64, 0)
	}
	return op.Out.st.buf.Write(hb.f32, 0)
}
