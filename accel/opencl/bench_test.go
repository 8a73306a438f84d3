//go:build linux || darwin

package opencl

import (
	"fmt"
	"testing"

	"github.com/autonode/autonode/accel"
)

// benchDevices returns the CPU backend and the OpenCL device, so each
// benchmark compares the two in the same run.
func benchDevices(b *testing.B) []accel.Device {
	return []accel.Device{accel.CPU(), testDevice(b)}
}

// wait waits for the device's queued work, so a timed loop measures the
// kernels and not only their enqueueing.
func wait(b *testing.B, dev accel.Device) {
	if d, ok := dev.(*Device); ok {
		if err := d.Synchronize(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchArray(b *testing.B, e *accel.Exec, dt accel.DType, seed uint64, shape ...int) *accel.Array {
	h, err := accel.New(accel.Options{}).Rand(dt, seed, shape...)
	if err != nil {
		b.Fatal(err)
	}
	a, err := e.ToDevice(bg, h)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkStream measures add and triad at 2^24 elements into
// preallocated outputs; bytes per op count two reads and one write.
func BenchmarkStream(b *testing.B) {
	const n = 1 << 24
	for _, dev := range benchDevices(b) {
		for _, dt := range []accel.DType{accel.Float32, accel.Float64} {
			e := accel.New(accel.Options{Device: dev})
			x, y, out := benchArray(b, e, dt, 1, n), benchArray(b, e, dt, 2, n), benchArray(b, e, dt, 3, n)
			b.Run(fmt.Sprintf("add/%s/%s", dev.Kind(), dt), func(b *testing.B) {
				b.SetBytes(int64(3 * n * dt.Size()))
				for b.Loop() {
					if err := e.BinaryInto(bg, accel.OpAdd, out, x, y); err != nil {
						b.Fatal(err)
					}
					wait(b, dev)
				}
			})
			b.Run(fmt.Sprintf("triad/%s/%s", dev.Kind(), dt), func(b *testing.B) {
				b.SetBytes(int64(3 * n * dt.Size()))
				for b.Loop() {
					if err := e.Triad(bg, out, x, y, 1.5); err != nil {
						b.Fatal(err)
					}
					wait(b, dev)
				}
			})
			e.Close()
		}
	}
}

// BenchmarkMatmul multiplies square matrices resident on each device.
func BenchmarkMatmul(b *testing.B) {
	for _, dev := range benchDevices(b) {
		for _, dt := range []accel.DType{accel.Float32, accel.Float64} {
			for _, n := range []int{256, 512} {
				b.Run(fmt.Sprintf("%s/%s/%d", dev.Kind(), dt, n), func(b *testing.B) {
					e := accel.New(accel.Options{Device: dev})
					defer e.Close()
					x, y := benchArray(b, e, dt, 1, n, n), benchArray(b, e, dt, 2, n, n)
					for b.Loop() {
						c, err := e.Matmul(bg, x, y)
						if err != nil {
							b.Fatal(err)
						}
						wait(b, dev)
						c.Free()
					}
					b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
