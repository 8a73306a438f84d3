package accel

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// Device is a place where array data lives and where operations on it run.
// The CPU is always present; GPU backends (CUDA, OpenCL, Metal) implement the
// same interface, so callers never change when one is added.
//
// An Exec allocates every array's storage with Alloc on its device and hands
// each operation to Run as an *Op. A device that does not implement an
// operation returns an error wrapping ErrUnsupported, and the Exec then
// copies the operands to the host, computes there and copies the result back.
type Device interface {
	// Name identifies this device, e.g. "cpu" or "cuda:0".
	Name() string
	// Kind is the backend: "cpu", "cuda", "opencl" or "metal".
	Kind() string
	// Alloc returns storage for n elements of dtype dt. Its contents are
	// unspecified; every operation writes all of its output.
	Alloc(dt DType, n int) (Buffer, error)
	// Run computes op, whose operands and output all live on this device.
	// It must stop promptly, returning ctx.Err(), when ctx is cancelled.
	Run(ctx context.Context, op *Op) error
}

// Buffer is a device's storage for one array's elements.
type Buffer interface {
	// Device returns the device that owns the buffer.
	Device() Device
	// DType returns the element type.
	DType() DType
	// Len returns the number of elements.
	Len() int
	// Read copies len(dst) elements starting at element offset to the host;
	// dst is a []float64 or []float32 matching DType.
	Read(dst any, offset int) error
	// Write copies src (a []float64 or []float32 matching DType) into the
	// buffer starting at element offset.
	Write(src any, offset int) error
	// Free releases device memory. It is called at most once, after which
	// the buffer is not used again.
	Free()
}

// DeviceInfo describes one backend for Devices: whether it was found and,
// when it was not, why.
type DeviceInfo struct {
	Name   string // device name to pass to LookupDevice, e.g. "cpu", "cuda"
	Kind   string // backend kind
	Found  bool
	Reason string // why the backend is unavailable; empty when Found
	Detail string // a human description of the device when Found
}

// Backend probes for devices of one kind. GPU backends register themselves
// with RegisterBackend from init functions in their own files.
type Backend struct {
	Kind string
	// Probe opens the backend's first device, or returns an error saying
	// why there is none (no driver, no GPU, unsupported OS).
	Probe func() (Device, error)
}

var (
	backendsMu sync.Mutex
	backends   = map[string]*probedBackend{}
)

type probedBackend struct {
	Backend
	once   sync.Once
	dev    Device
	reason string
}

func (p *probedBackend) probe() (Device, string) {
	p.once.Do(func() {
		dev, err := p.Probe()
		switch {
		case err != nil:
			p.reason = err.Error()
		case dev == nil:
			p.reason = "no device found"
		default:
			p.dev = dev
		}
	})
	return p.dev, p.reason
}

// RegisterBackend makes a GPU backend known to Devices and LookupDevice.
// Registering a kind twice replaces the earlier backend. Probing happens on
// first use, once.
func RegisterBackend(b Backend) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	backends[b.Kind] = &probedBackend{Backend: b}
}

// gpuKinds lists GPU backends in the order "gpu" prefers them.
var gpuKinds = []string{"cuda", "metal", "opencl"}

// Devices lists every backend AutoNode knows, found or not, CPU first. It
// never fails: a missing driver is a DeviceInfo with Found false and the
// reason.
func Devices() []DeviceInfo {
	out := []DeviceInfo{{Name: "cpu", Kind: "cpu", Found: true, Detail: cpuDetail()}}
	kinds := append([]string(nil), gpuKinds...)
	backendsMu.Lock()
	for k := range backends {
		if !contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	backendsMu.Unlock()
	sort.Strings(kinds[len(gpuKinds):])
	for _, k := range kinds {
		info := DeviceInfo{Name: k, Kind: k}
		if dev, reason := probeKind(k); dev != nil {
			info.Found, info.Name, info.Detail = true, dev.Name(), dev.Name()
			if d, ok := dev.(interface{ Detail() string }); ok {
				info.Detail = d.Detail()
			}
		} else {
			info.Reason = reason
		}
		out = append(out, info)
	}
	return out
}

func probeKind(kind string) (Device, string) {
	backendsMu.Lock()
	b := backends[kind]
	backendsMu.Unlock()
	if b == nil {
		return nil, "no " + kind + " backend in this build"
	}
	return b.probe()
}

// IsGPU reports whether dev is a GPU (or other accelerator). A device may
// say it is not by having an IsGPU() bool method returning false, as an
// OpenCL device implemented on the CPU (PoCL) does; LookupDevice("gpu")
// skips such devices. The CPU device is not a GPU.
func IsGPU(dev Device) bool {
	if _, host := dev.(cpuDevice); host || dev == nil {
		return false
	}
	if g, ok := dev.(interface{ IsGPU() bool }); ok {
		return g.IsGPU()
	}
	return true
}

// LookupDevice returns the device with the given name: "cpu"; "cuda",
// "opencl" or "metal" for that backend's first device; or "gpu" for the best
// GPU found (CUDA, then Metal, then OpenCL), skipping devices for which
// IsGPU is false. An unavailable device is an error wrapping ErrDevice that
// says why.
func LookupDevice(name string) (Device, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	switch name {
	case "cpu":
		return CPU(), nil
	case "gpu":
		var reasons []string
		for _, k := range gpuKinds {
			dev, reason := probeKind(k)
			if dev != nil && IsGPU(dev) {
				return dev, nil
			}
			if dev != nil {
				reason = dev.Name() + " runs on the CPU, so it is used only when asked for by name (device=\"" + k + "\")"
			}
			if !strings.HasPrefix(reason, k+": ") {
				reason = k + ": " + reason
			}
			reasons = append(reasons, reason)
		}
		return nil, errorf(ErrDevice, "device gpu: no GPU available (%s)", strings.Join(reasons, "; "))
	}
	backendsMu.Lock()
	_, registered := backends[name]
	backendsMu.Unlock()
	if !registered && !contains(gpuKinds, name) {
		return nil, errorf(ErrDevice, "unknown device %q: allowed are cpu, gpu, %s", name, strings.Join(gpuKinds, ", "))
	}
	dev, reason := probeKind(name)
	if dev == nil {
		return nil, errorf(ErrDevice, "device %s is not available: %s", name, reason)
	}
	return dev, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
