package accel

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func TestDevices(t *testing.T) {
	devs := Devices()
	if len(devs) < 4 || devs[0].Name != "cpu" || !devs[0].Found || devs[0].Detail == "" {
		t.Fatalf("Devices() = %+v; want cpu first and found", devs)
	}
	kinds := map[string]DeviceInfo{}
	for _, d := range devs {
		kinds[d.Kind] = d
	}
	for _, k := range []string{"cuda", "metal", "opencl"} {
		d, ok := kinds[k]
		if !ok {
			t.Errorf("Devices() does not list %s", k)
		}
		if !d.Found && d.Reason == "" {
			t.Errorf("%s not found but no reason given", k)
		}
	}
	cpu, err := LookupDevice(" CPU ")
	if err != nil || cpu != CPU() || cpu.Kind() != "cpu" {
		t.Fatalf("LookupDevice(cpu) = %v, %v", cpu, err)
	}
	_, err = LookupDevice("tpu")
	wantErr(t, err, ErrDevice, `unknown device "tpu": allowed are cpu, gpu, cuda, metal, opencl`)
	if kinds["cuda"].Found {
		t.Skip("a CUDA backend is present; the not-found paths are not reachable")
	}
	_, err = LookupDevice("cuda")
	wantErr(t, err, ErrDevice, "device cuda is not available")
}

// fakeDevice is a stand-in GPU: its buffers are private copies (not
// hostBuffers), it implements only element-wise add itself and reports
// ErrUnsupported for the rest, so the Exec's host fallback runs.
type fakeDevice struct {
	runs, native atomic.Int64
	// checkPlain, when set, fails the test for an operand that breaks the
	// Op contract (Offset 0, contiguous).
	checkPlain *testing.T
}

type fakeBuffer struct {
	dev   *fakeDevice
	dt    DType
	words []float64 // float32 buffers keep rounded values here too
	freed atomic.Bool
}

func (d *fakeDevice) Name() string { return "fake:0" }
func (d *fakeDevice) Kind() string { return "fake" }
func (d *fakeDevice) Alloc(dt DType, n int) (Buffer, error) {
	return &fakeBuffer{dev: d, dt: dt, words: make([]float64, n)}, nil
}

func (d *fakeDevice) Run(ctx context.Context, op *Op) error {
	d.runs.Add(1)
	if t := d.checkPlain; t != nil {
		for _, a := range append([]*Array{op.Out}, op.In...) {
			if a.Offset() != 0 || !a.Contiguous() {
				t.Errorf("%s: the device got an operand at offset %d with strides %v", op.Kind, a.Offset(), a.Strides())
			}
		}
	}
	if op.Kind == OpBinary && op.Binary == OpAdd && slices.Equal(op.In[0].shape, op.In[1].shape) {
		d.native.Add(1)
		x, y := op.In[0].Buffer().(*fakeBuffer), op.In[1].Buffer().(*fakeBuffer)
		out := op.Out.Buffer().(*fakeBuffer)
		for i := range out.words[:op.Out.Size()] {
			out.words[i] = x.words[i] + y.words[i]
			if out.dt == Float32 {
				out.words[i] = float64(float32(out.words[i]))
			}
		}
		return ctx.Err()
	}
	return ErrUnsupported
}

func (b *fakeBuffer) Device() Device { return b.dev }
func (b *fakeBuffer) DType() DType   { return b.dt }
func (b *fakeBuffer) Len() int       { return len(b.words) }
func (b *fakeBuffer) Free()          { b.freed.Store(true) }

func (b *fakeBuffer) Read(dst any, off int) error {
	switch d := dst.(type) {
	case []float64:
		if b.dt != Float64 {
			return errors.New("fake: dtype mismatch")
		}
		copy(d, b.words[off:])
	case []float32:
		if b.dt != Float32 {
			return errors.New("fake: dtype mismatch")
		}
		for i := range d {
			d[i] = float32(b.words[off+i])
		}
	}
	return nil
}

func (b *fakeBuffer) Write(src any, off int) error {
	switch s := src.(type) {
	case []float64:
		if b.dt != Float64 {
			return errors.New("fake: dtype mismatch")
		}
		copy(b.words[off:], s)
	case []float32:
		if b.dt != Float32 {
			return errors.New("fake: dtype mismatch")
		}
		for i, v := range s {
			b.words[off+i] = float64(v)
		}
	}
	return nil
}

// TestDeviceBackend drives a non-host device through the same API: native
// operations run on it, the rest fall back to the host, results come back.
func TestDeviceBackend(t *testing.T) {
	dev := &fakeDevice{}
	RegisterBackend(Backend{Kind: "fake", Probe: func() (Device, error) { return dev, nil }})
	got, err := LookupDevice("fake")
	if err != nil || got != dev {
		t.Fatalf("LookupDevice(fake) = %v, %v", got, err)
	}
	listed := false
	for _, d := range Devices() {
		listed = listed || (d.Kind == "fake" && d.Found && d.Name == "fake:0")
	}
	if !listed {
		t.Errorf("Devices() does not list the registered fake backend: %+v", Devices())
	}

	r := newRand(t)
	budget := NewBudget(0)
	host := New(Options{})
	gpu := New(Options{Device: dev, Budget: budget})
	for _, dt := range dtypes {
		ah, ad := randArray(t, host, r, dt, 17, 33)
		bh, bd := randArray(t, host, r, dt, 33, 5)
		a, err := gpu.ToDevice(bg, ah)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := gpu.ToDevice(bg, bh)
		if a.Device() != dev {
			t.Fatalf("ToDevice result lives on %s", a.Device().Name())
		}
		if _, err := a.Float64View(); !errors.Is(err, ErrDevice) {
			t.Errorf("Float64View on a device array: %v, want ErrDevice", err)
		}
		before := dev.native.Load()
		sum, err := gpu.Add(bg, a, a)
		if err != nil {
			t.Fatal(err)
		}
		if dev.native.Load() != before+1 {
			t.Errorf("add did not run natively on the device")
		}
		want := make([]float64, len(ad))
		for i := range ad {
			want[i] = round(dt, ad[i]+ad[i])
		}
		checkValues(t, "device add", sum, dt, []int{17, 33}, want, 0, 0)

		prod, err := gpu.Matmul(bg, a, b) // host fallback
		if err != nil {
			t.Fatal(err)
		}
		if prod.Device() != dev {
			t.Errorf("fallback result lives on %s, want the device", prod.Device().Name())
		}
		wantM, shape, mag := refMatmul(ad, []int{17, 33}, bd, []int{33, 5})
		checkValues(t, "device matmul", prod, dt, shape, wantM, 0, sumTol(dt, 33, mag))
		s, err := gpu.Sum(bg, a)
		if err != nil {
			t.Fatal(err)
		}
		if want := refReduce(OpSum, ad); !closeTo(s, want, 0, sumTol(dt, len(ad), 2*float64(len(ad)))) {
			t.Errorf("device sum = %v, want %v", s, want)
		}
		y, _ := gpu.ToDevice(bg, ah)
		if err := gpu.Axpy(bg, 2, a, y); err != nil { // in place, via fallback
			t.Fatal(err)
		}
		for i := range ad {
			want[i] = ad[i] + 2*ad[i]
		}
		checkValues(t, "device axpy", y, dt, []int{17, 33}, want, rtol(dt), rtol(dt))
		if v, err := y.At(0, 1); err != nil || !closeTo(v, want[1], rtol(dt), rtol(dt)) {
			t.Errorf("At on device = %v, %v", v, err)
		}
		if !strings.HasPrefix(y.String(), "array([[") {
			t.Errorf("String of device array = %q", y.String())
		}
		// Mixing devices is an error that says how to fix it.
		_, err = gpu.Add(bg, a, ah)
		wantErr(t, err, ErrDevice, "operand lives on device cpu but this Exec runs on fake:0", "ToDevice")
		back, err := host.ToDevice(bg, y)
		if err != nil || back.Device() != CPU() {
			t.Fatalf("back to host: %v, %v", back, err)
		}
		checkValues(t, "round trip", back, dt, []int{17, 33}, want, rtol(dt), rtol(dt))
		buf := a.Buffer().(*fakeBuffer)
		a.Free()
		if !buf.freed.Load() {
			t.Error("Free did not free the device buffer")
		}
	}
	if budget.Used() == 0 {
		t.Error("device allocations were not charged to the budget")
	}
}
