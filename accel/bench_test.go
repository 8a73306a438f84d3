package accel

import (
	"fmt"
	"testing"
)

// benchExec returns an Exec for benchmarks, with output poisoning off.
func benchExec(b *testing.B) *Exec {
	b.Helper()
	prev := poisonOutputs
	poisonOutputs = false
	b.Cleanup(func() { poisonOutputs = prev })
	return New(Options{})
}

func benchRand(b *testing.B, e *Exec, dt DType, seed uint64, shape ...int) *Array {
	b.Helper()
	a, err := e.Rand(dt, seed, shape...)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

func BenchmarkMatmul(b *testing.B) {
	for _, dt := range dtypes {
		for _, n := range []int{512, 1024} {
			b.Run(fmt.Sprintf("%s/%d", dt, n), func(b *testing.B) {
				e := benchExec(b)
				x, y := benchRand(b, e, dt, 1, n, n), benchRand(b, e, dt, 2, n, n)
				b.ReportAllocs()
				for b.Loop() {
					c, err := e.Matmul(bg, x, y)
					if err != nil {
						b.Fatal(err)
					}
					c.Free()
				}
				b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

const streamN = 1 << 24

// BenchmarkStream measures the streaming operations at 2^24 elements,
// writing into preallocated outputs (so page faults of fresh allocations do
// not hide the kernel), with bytes moved per op set for MB/s.
func BenchmarkStream(b *testing.B) {
	for _, dt := range dtypes {
		sz := int64(dt.Size())
		b.Run("add/"+dt.String(), func(b *testing.B) {
			e := benchExec(b)
			x, y, out := benchRand(b, e, dt, 1, streamN), benchRand(b, e, dt, 2, streamN), benchRand(b, e, dt, 3, streamN)
			b.SetBytes(3 * sz * streamN)
			for b.Loop() {
				if err := e.BinaryInto(bg, OpAdd, out, x, y); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("axpy/"+dt.String(), func(b *testing.B) {
			e := benchExec(b)
			x, y := benchRand(b, e, dt, 1, streamN), benchRand(b, e, dt, 2, streamN)
			b.SetBytes(3 * sz * streamN)
			for b.Loop() {
				if err := e.Axpy(bg, 1e-9, x, y); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("triad/"+dt.String(), func(b *testing.B) {
			e := benchExec(b)
			x, y, out := benchRand(b, e, dt, 1, streamN), benchRand(b, e, dt, 2, streamN), benchRand(b, e, dt, 3, streamN)
			b.SetBytes(3 * sz * streamN)
			for b.Loop() {
				if err := e.Triad(bg, out, x, y, 3); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("sum/"+dt.String(), func(b *testing.B) {
			e := benchExec(b)
			x := benchRand(b, e, dt, 1, streamN)
			b.SetBytes(sz * streamN)
			for b.Loop() {
				if _, err := e.Sum(bg, x); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("dot/"+dt.String(), func(b *testing.B) {
			e := benchExec(b)
			x, y := benchRand(b, e, dt, 1, streamN), benchRand(b, e, dt, 2, streamN)
			b.SetBytes(2 * sz * streamN)
			for b.Loop() {
				if _, err := e.Dot(bg, x, y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAddAllocating is the plain a+b of the Starlark layer: a new
// output array each time.
func BenchmarkAddAllocating(b *testing.B) {
	e := benchExec(b)
	x, y := benchRand(b, e, Float64, 1, streamN), benchRand(b, e, Float64, 2, streamN)
	b.SetBytes(3 * 8 * streamN)
	for b.Loop() {
		c, err := e.Add(bg, x, y)
		if err != nil {
			b.Fatal(err)
		}
		c.Free()
	}
}

// BenchmarkAdd16 is the small-array overhead: a 16-element add, into a
// preallocated output and allocating a new one.
func BenchmarkAdd16(b *testing.B) {
	b.Run("into", func(b *testing.B) {
		e := benchExec(b)
		x, y, out := benchRand(b, e, Float64, 1, 16), benchRand(b, e, Float64, 2, 16), benchRand(b, e, Float64, 3, 16)
		b.ReportAllocs()
		for b.Loop() {
			if err := e.BinaryInto(bg, OpAdd, out, x, y); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		e := benchExec(b)
		x, y := benchRand(b, e, Float64, 1, 16), benchRand(b, e, Float64, 2, 16)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Add(bg, x, y); err != nil {
				b.Fatal(err)
			}
		}
	})
}
