package accel

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
)

// Options configures an Exec.
type Options struct {
	// Device is where new arrays live and operations run; nil means CPU().
	Device Device
	// Budget is charged for every array the Exec allocates; nil means
	// unlimited. The thread engine gives each thread run its own.
	Budget *Budget
	// Busy, if not nil, is called with an operation's context as an
	// operation of at least LongOpWork elements of work (multiply-adds
	// for a matrix product) starts, and the function it returns as the
	// operation ends. The thread engine lets its heap watchdog sleep while
	// every Starlark thread waits for such an operation, so that the
	// watchdog's wake-ups do not interrupt the kernel's cores.
	Busy func(ctx context.Context) (done func())
}

// LongOpWork is the work from which an operation is reported to
// Options.Busy: about a millisecond on one core.
const LongOpWork = 1 << 21

// Exec makes arrays and runs operations on them: on one device, charging one
// budget. Its methods are the package's operations. Methods that read or
// write element data take a context and stop, returning an error that wraps
// ctx.Err(), soon after it is cancelled; constructors and views do not.
//
// An Exec is safe for concurrent use. Operands may come from other Execs as
// long as they live on the same device; results are charged to this one.
type Exec struct {
	dev    Device
	host   bool // dev is the CPU
	budget *Budget
	life   *lifetime
	busy   func(context.Context) func()
}

// New returns an Exec for opts.
func New(opts Options) *Exec {
	dev := opts.Device
	if dev == nil {
		dev = CPU()
	}
	_, host := dev.(cpuDevice)
	return &Exec{dev: dev, host: host, budget: opts.Budget, life: &lifetime{budget: opts.Budget}, busy: opts.Busy}
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
// caller will overwrite (a recycled buffer is not cleared). The budget is
// charged before anything is allocated.
func (e *Exec) alloc(op string, dt DType, shape []int) (*Array, error) {
	return e.allocIn(op, dt, shape, nil)
}

// allocIn is alloc that takes a tiny array's memory from room when it is
// not nil (see BinaryWith).
func (e *Exec) allocIn(op string, dt DType, shape []int, room func() *tinyArray) (*Array, error) {
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
	if bytes > tinyBytes { // a tiny array never exceeds it
		if phys := physicalMemory(); phys > 0 && bytes > phys {
			return nil, errorf(ErrBudget, "%s: array of shape %s %s needs %s, more than this machine's %s of memory (%s)", op, formatShape(shape), dt, formatSize(bytes), formatSize(phys), memorySource())
		}
	}
	if err := e.budget.reserveReclaiming(bytes); err != nil {
		var oe *opError
		if errors.As(err, &oe) {
			return nil, errorf(oe.kind, "%s: array of shape %s %s %s", op, formatShape(shape), dt, oe.msg)
		}
		return nil, err
	}
	if e.host && bytes <= tinyBytes {
		var t *tinyArray
		if room != nil {
			t = room()
		} else {
			t = new(tinyArray)
		}
		a := e.life.newTinyArray(t, dt, n, bytes, shape)
		if a == nil {
			e.budget.Release(bytes)
			return nil, errorf(ErrClosed, "%s: the Exec was closed: its run has ended", op)
		}
		if poisonOutputs {
			poison(a)
		}
		return a, nil
	}
	st, err := e.newStorage(dt, n, bytes)
	if err != nil {
		e.budget.Release(bytes)
		return nil, errorf(ErrDevice, "%s: allocating %s on %s: %v", op, formatSize(bytes), e.dev.Name(), err)
	}
	if st == nil { // closed meanwhile
		e.budget.Release(bytes)
		return nil, errorf(ErrClosed, "%s: the Exec was closed: its run has ended", op)
	}
	a := newArray(st, dt, shape, 0)
	if poisonOutputs {
		poison(a)
	}
	return a, nil
}

// poison fills a new host array with NaN (the poisonOutputs test hook).
func poison(a *Array) {
	if hb := a.host(); hb != nil {
		for i := range hb.f64 {
			hb.f64[i] = math.NaN()
		}
		for i := range hb.f32 {
			hb.f32[i] = float32(math.NaN())
		}
	}
}

// newStorage allocates the storage of n elements (bytes already reserved):
// tiny host arrays from the slab, large ones from the pool, device arrays
// from the device.
func (e *Exec) newStorage(dt DType, n int, bytes int64) (*storage, error) {
	if !e.host {
		buf, err := e.dev.Alloc(dt, n)
		if err != nil {
			// Unreachable device arrays may still hold memory: collect
			// them and try once more.
			reclaimer.collect()
			if buf, err = e.dev.Alloc(dt, n); err != nil {
				return nil, err
			}
		}
		reclaimer.sweepIfCollected()
		st := e.life.adopt(buf, nil, bytes)
		if st == nil {
			buf.Free()
		}
		return st, nil
	}
	hb := hostBuffer{dt: dt}
	var blk *block
	if bytes >= largeBytes {
		blk = largeBlock(bytes)
		if dt == Float64 {
			hb.f64 = blk.float64s(n)
		} else {
			hb.f32 = blk.float32s(n)
		}
	} else {
		reclaimer.sweepIfCollected()
		if dt == Float64 {
			hb.f64 = make([]float64, n)
		} else {
			hb.f32 = make([]float32, n)
		}
	}
	st := e.life.adopt(&hb, blk, bytes)
	if st == nil && blk != nil {
		thePool.put(blk)
	}
	return st, nil
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

// long reports an operation of work elements to Options.Busy when it is
// long; the caller defers the function it returns.
func (e *Exec) long(ctx context.Context, work int) func() {
	if e.busy == nil || work < LongOpWork {
		return noDone
	}
	return e.busy(ctx)
}

func noDone() {}

// run hands op to the device; operations the device does not implement run
// on the host with copies. op is passed by value so that building one costs
// no allocation on the CPU path. Views among the operands are made fit for
// the device first (see prepared).
func (e *Exec) run(ctx context.Context, name string, op Op) error {
	defer e.long(ctx, op.work())()
	var err error
	switch {
	case !e.fits(&op):
		err = e.runPrepared(ctx, name, op)
	case e.host:
		err = runHost(ctx, &op)
	default:
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

// fitting reports whether a may be an operand as it is: any contiguous
// array on the host, a plain one on a device.
func (e *Exec) fitting(a *Array) bool {
	if e.host {
		return a.strides == nil
	}
	return a.plain()
}

// fits reports whether op can run as it is: every operand fits the device
// and the output does not overlap an input unless it is that very array (an
// element-wise update in place).
func (e *Exec) fits(op *Op) bool {
	if op.Kind == OpGather || op.Kind == OpScatter {
		return true // built over whole buffers by the Exec itself
	}
	out := op.Out
	if !e.fitting(out) {
		return false
	}
	for _, a := range op.In {
		if !e.fitting(a) {
			return false
		}
		if a.st == out.st && a != out && overlaps(a, out) && !(sameView(a, out) && elementwise(op.Kind)) {
			return false
		}
		if a == out && !elementwise(op.Kind) {
			return false
		}
	}
	return true
}

// elementwise reports whether an operation of kind k computes each output
// element from the input elements at the same position only, so that the
// output may be one of the inputs.
func elementwise(k OpKind) bool {
	switch k {
	case OpBinary, OpBinaryScalar, OpUnary, OpClip, OpAxpy, OpTriad, OpConvert:
		return true
	}
	return false
}

// sameView reports whether a and b are the same elements in the same order.
func sameView(a, b *Array) bool {
	if a.st != b.st || a.off != b.off || !slices.Equal(a.shape, b.shape) {
		return false
	}
	if a.strides == nil || b.strides == nil {
		return a.strides == nil && b.strides == nil
	}
	return slices.Equal(a.strides, b.strides)
}

// overlaps reports whether two arrays on one storage may share elements.
func overlaps(a, b *Array) bool {
	alo, ahi := a.span()
	blo, bhi := b.span()
	return alo < bhi && blo < ahi
}

// runPrepared runs op after replacing operands that do not fit by
// contiguous copies, and an output that does not fit (or overlaps an input)
// by a temporary that is written back afterwards.
func (e *Exec) runPrepared(ctx context.Context, name string, op Op) error {
	var temps []*Array
	defer func() {
		for _, t := range temps {
			t.release()
		}
	}()
	out := op.Out
	target := out
	outFits := e.fitting(out)
	if outFits {
		for _, a := range op.In {
			if a.st == out.st && (a == out && !elementwise(op.Kind) || a != out && overlaps(a, out) && !(sameView(a, out) && elementwise(op.Kind))) {
				outFits = false
				break
			}
		}
	}
	if !outFits {
		var err error
		readsOut := false
		for _, a := range op.In {
			readsOut = readsOut || a == out
		}
		if readsOut {
			target, err = e.contiguousCopy(ctx, name, out)
		} else {
			target, err = e.alloc(name, out.dtype, out.shape)
		}
		if err != nil {
			return err
		}
		temps = append(temps, target)
	}
	ins := make([]*Array, len(op.In))
	for i, a := range op.In {
		switch {
		case a == out:
			ins[i] = target
		case e.fitting(a):
			ins[i] = a
		default:
			c, err := e.contiguousCopy(ctx, name, a)
			if err != nil {
				return err
			}
			temps = append(temps, c)
			ins[i] = c
		}
	}
	op.In, op.Out = ins, target
	var err error
	if e.host {
		err = runHost(ctx, &op)
	} else {
		err = e.runDevice(ctx, op)
	}
	if err != nil || target == out {
		return err
	}
	return e.writeInto(ctx, out, target)
}

// whole returns a 1-D plain array over all of a's buffer: the operand of
// the gathers and scatters that read and write a view.
func whole(a *Array) *Array {
	return newArray(a.st, a.dtype, []int{a.st.buffer().Len()}, 0)
}

// contiguousCopy returns a new plain array with a's elements.
func (e *Exec) contiguousCopy(ctx context.Context, name string, a *Array) (*Array, error) {
	c, err := e.alloc(name, a.dtype, a.shape)
	if err != nil {
		return nil, err
	}
	op := Op{Kind: OpGather, In: []*Array{whole(a)}, Out: c, Offset: a.off, Strides: a.Strides()}
	if e.host {
		err = runHost(ctx, &op)
	} else {
		err = e.runDevice(ctx, op)
	}
	if err != nil {
		c.release()
		return nil, err
	}
	return c, nil
}

// writeInto copies the plain array src into the view dst (same shape and
// dtype).
func (e *Exec) writeInto(ctx context.Context, dst, src *Array) error {
	op := Op{Kind: OpScatter, In: []*Array{src}, Out: whole(dst), Offset: dst.off, Strides: dst.Strides()}
	if e.host {
		return runHost(ctx, &op)
	}
	return e.runDevice(ctx, op)
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

// runOnHost copies op's arrays (all plain) to the host, runs it there and
// writes the output back to the device. The host copies are charged to the
// budget.
func (e *Exec) runOnHost(ctx context.Context, op *Op) error {
	hostExec := New(Options{Budget: e.budget})
	defer hostExec.Close()
	hop := *op
	hop.In, hop.Out = make([]*Array, len(op.In)), nil
	toHost := func(a *Array) (*Array, error) {
		h, err := hostExec.alloc("host copy", a.dtype, a.shape)
		if err != nil {
			return nil, err
		}
		hb := h.host()
		if a.dtype == Float64 {
			err = a.st.buffer().Read(hb.f64, 0)
		} else {
			err = a.st.buffer().Read(hb.f32, 0)
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
		return op.Out.st.buffer().Write(hb.f64, 0)
	}
	return op.Out.st.buffer().Write(hb.f32, 0)
}
