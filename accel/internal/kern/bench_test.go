package kern

import (
	"context"
	"fmt"
	"testing"
)

func benchGemm64(b *testing.B, n int) {
	a, bb, c := make([]float64, n*n), make([]float64, n*n), make([]float64, n*n)
	for i := range a {
		a[i], bb[i] = float64(i%7)-3, float64(i%5)-2
	}
	ctx := context.Background()
	b.SetBytes(0)
	b.ResetTimer()
	for b.Loop() {
		if err := GemmF64(ctx, n, n, n, a, n, bb, n, c, n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func benchGemm32(b *testing.B, n int) {
	a, bb, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i], bb[i] = float32(i%7)-3, float32(i%5)-2
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := GemmF32(ctx, n, n, n, a, n, bb, n, c, n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// benchLevels runs fn once per kernel level this machine supports.
func benchLevels(b *testing.B, fn func(b *testing.B)) {
	for l := maxLevel; l >= levelGeneric; l-- {
		b.Run(levelNames[l], func(b *testing.B) {
			prev := setLevel(l)
			defer setLevel(prev)
			fn(b)
		})
	}
}

func BenchmarkGemmF64(b *testing.B) {
	for _, n := range []int{64, 512, 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchLevels(b, func(b *testing.B) { benchGemm64(b, n) }) })
	}
}

func BenchmarkGemmF32(b *testing.B) {
	for _, n := range []int{512, 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchLevels(b, func(b *testing.B) { benchGemm32(b, n) }) })
	}
}

const streamN = 1 << 24

func benchStream64(b *testing.B, n, bytesPerElem int, fn func(x, y, z []float64)) {
	x, y, z := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range x {
		x[i], y[i] = 1, 2
	}
	b.SetBytes(int64(n * bytesPerElem))
	b.ResetTimer()
	for b.Loop() {
		fn(x, y, z)
	}
}

func benchStream32(b *testing.B, n, bytesPerElem int, fn func(x, y, z []float32)) {
	x, y, z := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], y[i] = 1, 2
	}
	b.SetBytes(int64(n * bytesPerElem))
	b.ResetTimer()
	for b.Loop() {
		fn(x, y, z)
	}
}

var sink float64

func BenchmarkAddF64_16(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, 16, 24, func(x, y, z []float64) { AddF64(z, x, y) }) })
}

func BenchmarkAddF64(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, streamN, 24, func(x, y, z []float64) { AddF64(z, x, y) }) })
}

func BenchmarkAxpyF64(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, streamN, 24, func(x, y, z []float64) { AxpyF64(1e-9, x, y) }) })
}

func BenchmarkTriadF64(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, streamN, 24, func(x, y, z []float64) { TriadF64(z, x, y, 3) }) })
}

func BenchmarkSumF64(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, streamN, 8, func(x, y, z []float64) { sink = SumF64(x) }) })
}

func BenchmarkDotF64(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, streamN, 16, func(x, y, z []float64) { sink = DotF64(x, y) }) })
}

func BenchmarkAddF32(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream32(b, streamN, 12, func(x, y, z []float32) { AddF32(z, x, y) }) })
}

func BenchmarkAxpyF32(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream32(b, streamN, 12, func(x, y, z []float32) { AxpyF32(1e-9, x, y) }) })
}

func BenchmarkTriadF32(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream32(b, streamN, 12, func(x, y, z []float32) { TriadF32(z, x, y, 3) }) })
}

func BenchmarkSumF32(b *testing.B) {
	benchLevels(b, func(b *testing.B) {
		benchStream32(b, streamN, 4, func(x, y, z []float32) { sink = float64(SumF32(x)) })
	})
}

func BenchmarkDotF32(b *testing.B) {
	benchLevels(b, func(b *testing.B) {
		benchStream32(b, streamN, 8, func(x, y, z []float32) { sink = float64(DotF32(x, y)) })
	})
}

func BenchmarkSubF64(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, streamN, 24, func(x, y, z []float64) { SubF64(z, x, y) }) })
}

func BenchmarkMulF64(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, streamN, 24, func(x, y, z []float64) { MulF64(z, x, y) }) })
}

func BenchmarkDivF64(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, streamN, 24, func(x, y, z []float64) { DivF64(z, x, y) }) })
}

func BenchmarkAddScalarF64(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, streamN, 16, func(x, y, z []float64) { AddScalarF64(z, x, 2) }) })
}

func BenchmarkMulScalarF64(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream64(b, streamN, 16, func(x, y, z []float64) { MulScalarF64(z, x, 2) }) })
}

func BenchmarkDivF32(b *testing.B) {
	benchLevels(b, func(b *testing.B) { benchStream32(b, streamN, 12, func(x, y, z []float32) { DivF32(z, x, y) }) })
}
