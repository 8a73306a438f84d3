//go:build amd64 && !purego

package kern

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate go -C asmgen run . -out ..

// ntBytes is the chunk size (bytes written) from which streaming kernels
// use non-temporal stores: such a chunk is part of an array far larger
// than the caches, so writing around them saves the read-for-ownership
// traffic.
const ntBytes = 1 << 20

// archInit selects the best amd64 kernels the CPU and OS support.
func archInit() {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		return
	}
	maxLevel = levelAVX2
	gemm64[levelAVX2] = gemmImpl[float64]{mr: 6, nr: 8, kc: 256, mc: 72, nc: 2048, micro: asmMicro64(gemmAVX2F64_6x8)}
	gemm32[levelAVX2] = gemmImpl[float32]{mr: 6, nr: 16, kc: 256, mc: 72, nc: 2048, micro: asmMicro32(gemmAVX2F32_6x16)}
	tab64[levelAVX2] = kernels64{
		bin:   asmBin64([4]func(dst, x, y *float64, n int, nt bool){addF64AVX2, subF64AVX2, mulF64AVX2, divF64AVX2}, 16),
		scal:  asmScal64([2]func(dst, x *float64, s float64, n int, nt bool){addScalarF64AVX2, mulScalarF64AVX2}, 16),
		triad: asmTriad64(triadF64AVX2, 16),
		axpy:  asmAxpy64(axpyF64AVX2, 16),
		sum:   asmSum64(sumF64AVX2, 32),
		dot:   asmDot64(dotF64AVX2, 32),
	}
	tab32[levelAVX2] = kernels32{
		bin:   asmBin32([4]func(dst, x, y *float32, n int, nt bool){addF32AVX2, subF32AVX2, mulF32AVX2, divF32AVX2}, 32),
		scal:  asmScal32([2]func(dst, x *float32, s float32, n int, nt bool){addScalarF32AVX2, mulScalarF32AVX2}, 32),
		triad: asmTriad32(triadF32AVX2, 32),
		axpy:  asmAxpy32(axpyF32AVX2, 32),
		sum:   asmSum32(sumF32AVX2, 32),
		dot:   asmDot32(dotF32AVX2, 32),
	}
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512DQ || !cpu.X86.HasAVX512VL {
		return
	}
	maxLevel = levelAVX512
	gemm64[levelAVX512] = gemmImpl[float64]{mr: 12, nr: 16, kc: 256, mc: 144, nc: 2048, micro: asmMicro64(gemmAVX512F64_12x16)}
	gemm32[levelAVX512] = gemmImpl[float32]{mr: 12, nr: 32, kc: 256, mc: 144, nc: 2048, micro: asmMicro32(gemmAVX512F32_12x32)}
	tab64[levelAVX512] = kernels64{
		bin:   asmBin64([4]func(dst, x, y *float64, n int, nt bool){addF64AVX512, subF64AVX512, mulF64AVX512, divF64AVX512}, 32),
		scal:  asmScal64([2]func(dst, x *float64, s float64, n int, nt bool){addScalarF64AVX512, mulScalarF64AVX512}, 32),
		triad: asmTriad64(triadF64AVX512, 32),
		axpy:  asmAxpy64(axpyF64AVX512, 32),
		sum:   asmSum64(sumF64AVX512, 64),
		dot:   asmDot64(dotF64AVX512, 64),
	}
	tab32[levelAVX512] = kernels32{
		bin:   asmBin32([4]func(dst, x, y *float32, n int, nt bool){addF32AVX512, subF32AVX512, mulF32AVX512, divF32AVX512}, 64),
		scal:  asmScal32([2]func(dst, x *float32, s float32, n int, nt bool){addScalarF32AVX512, mulScalarF32AVX512}, 64),
		triad: asmTriad32(triadF32AVX512, 64),
		axpy:  asmAxpy32(axpyF32AVX512, 64),
		sum:   asmSum32(sumF32AVX512, 64),
		dot:   asmDot32(dotF32AVX512, 64),
	}
}

func asmMicro64(f func(kc int, a, b, c *float64, ldc int, acc bool)) func(kc int, a, b, c []float64, ldc int, acc bool) {
	return func(kc int, a, b, c []float64, ldc int, acc bool) {
		f(kc, &a[0], &b[0], &c[0], ldc, acc)
	}
}

func asmMicro32(f func(kc int, a, b, c *float32, ldc int, acc bool)) func(kc int, a, b, c []float32, ldc int, acc bool) {
	return func(kc int, a, b, c []float32, ldc int, acc bool) {
		f(kc, &a[0], &b[0], &c[0], ldc, acc)
	}
}

// ntSplit decides whether a chunk of dst uses non-temporal stores and, if
// so, how many leading elements to process in Go so that the assembly
// starts 64-byte aligned.
func ntSplit[T float](dst []T) (nt bool, head int) {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if len(dst)*size < ntBytes {
		return false, 0
	}
	mis := int(uintptr(unsafe.Pointer(unsafe.SliceData(dst))) & 63)
	if mis%size != 0 {
		return false, 0
	}
	return true, (64 - mis) & 63 / size
}

func asmBin64(fs [4]func(dst, x, y *float64, n int, nt bool), block int) func(op int, dst, x, y []float64) {
	return func(op int, dst, x, y []float64) {
		n := len(dst)
		x, y = x[:n], y[:n]
		if n < block {
			binGo(op, dst, x, y)
			return
		}
		nt, i := ntSplit(dst)
		binGo(op, dst[:i], x[:i], y[:i])
		if nb := (n - i) &^ (block - 1); nb > 0 {
			fs[op](&dst[i], &x[i], &y[i], nb, nt)
			i += nb
		}
		binGo(op, dst[i:], x[i:], y[i:])
	}
}

func asmBin32(fs [4]func(dst, x, y *float32, n int, nt bool), block int) func(op int, dst, x, y []float32) {
	return func(op int, dst, x, y []float32) {
		n := len(dst)
		x, y = x[:n], y[:n]
		if n < block {
			binGo(op, dst, x, y)
			return
		}
		nt, i := ntSplit(dst)
		binGo(op, dst[:i], x[:i], y[:i])
		if nb := (n - i) &^ (block - 1); nb > 0 {
			fs[op](&dst[i], &x[i], &y[i], nb, nt)
			i += nb
		}
		binGo(op, dst[i:], x[i:], y[i:])
	}
}

func asmScal64(fs [2]func(dst, x *float64, s float64, n int, nt bool), block int) func(op int, dst, x []float64, s float64) {
	return func(op int, dst, x []float64, s float64) {
		n := len(dst)
		x = x[:n]
		if n < block {
			scalGo(op, dst, x, s)
			return
		}
		nt, i := ntSplit(dst)
		scalGo(op, dst[:i], x[:i], s)
		if nb := (n - i) &^ (block - 1); nb > 0 {
			fs[op](&dst[i], &x[i], s, nb, nt)
			i += nb
		}
		scalGo(op, dst[i:], x[i:], s)
	}
}

func asmScal32(fs [2]func(dst, x *float32, s float32, n int, nt bool), block int) func(op int, dst, x []float32, s float32) {
	return func(op int, dst, x []float32, s float32) {
		n := len(dst)
		x = x[:n]
		if n < block {
			scalGo(op, dst, x, s)
			return
		}
		nt, i := ntSplit(dst)
		scalGo(op, dst[:i], x[:i], s)
		if nb := (n - i) &^ (block - 1); nb > 0 {
			fs[op](&dst[i], &x[i], s, nb, nt)
			i += nb
		}
		scalGo(op, dst[i:], x[i:], s)
	}
}

func asmTriad64(f func(dst, b, c *float64, s float64, n int, nt bool), block int) func(dst, b, c []float64, s float64) {
	return func(dst, b, c []float64, s float64) {
		n := len(dst)
		b, c = b[:n], c[:n]
		nt, i := ntSplit(dst)
		triadFMA(dst[:i], b[:i], c[:i], s)
		if nb := (n - i) &^ (block - 1); nb > 0 {
			f(&dst[i], &b[i], &c[i], s, nb, nt)
			i += nb
		}
		triadFMA(dst[i:], b[i:], c[i:], s)
	}
}

func asmTriad32(f func(dst, b, c *float32, s float32, n int, nt bool), block int) func(dst, b, c []float32, s float32) {
	return func(dst, b, c []float32, s float32) {
		n := len(dst)
		b, c = b[:n], c[:n]
		nt, i := ntSplit(dst)
		triadFMA(dst[:i], b[:i], c[:i], s)
		if nb := (n - i) &^ (block - 1); nb > 0 {
			f(&dst[i], &b[i], &c[i], s, nb, nt)
			i += nb
		}
		triadFMA(dst[i:], b[i:], c[i:], s)
	}
}

func asmAxpy64(f func(alpha float64, x, y *float64, n int), block int) func(alpha float64, x, y []float64) {
	return func(alpha float64, x, y []float64) {
		n := len(y)
		x = x[:n]
		nb := n &^ (block - 1)
		if nb > 0 {
			f(alpha, &x[0], &y[0], nb)
		}
		axpyFMA(alpha, x[nb:], y[nb:])
	}
}

func asmAxpy32(f func(alpha float32, x, y *float32, n int), block int) func(alpha float32, x, y []float32) {
	return func(alpha float32, x, y []float32) {
		n := len(y)
		x = x[:n]
		nb := n &^ (block - 1)
		if nb > 0 {
			f(alpha, &x[0], &y[0], nb)
		}
		axpyFMA(alpha, x[nb:], y[nb:])
	}
}

func asmSum64(f func(x *float64, n int) float64, block int) func(x []float64) float64 {
	return func(x []float64) float64 {
		nb := len(x) &^ (block - 1)
		var s float64
		if nb > 0 {
			s = f(&x[0], nb)
		}
		return s + sumGo64(x[nb:])
	}
}

func asmSum32(f func(x *float32, n int) float64, block int) func(x []float32) float64 {
	return func(x []float32) float64 {
		nb := len(x) &^ (block - 1)
		var s float64
		if nb > 0 {
			s = f(&x[0], nb)
		}
		return s + sumGo32(x[nb:])
	}
}

func asmDot64(f func(x, y *float64, n int) float64, block int) func(x, y []float64) float64 {
	return func(x, y []float64) float64 {
		y = y[:len(x)]
		nb := len(x) &^ (block - 1)
		var s float64
		if nb > 0 {
			s = f(&x[0], &y[0], nb)
		}
		return s + dotGo64(x[nb:], y[nb:])
	}
}

func asmDot32(f func(x, y *float32, n int) float64, block int) func(x, y []float32) float64 {
	return func(x, y []float32) float64 {
		y = y[:len(x)]
		nb := len(x) &^ (block - 1)
		var s float64
		if nb > 0 {
			s = f(&x[0], &y[0], nb)
		}
		return s + dotGo32(x[nb:], y[nb:])
	}
}

// triadFMA and axpyFMA handle the scalar heads and tails of the SIMD
// kernels with fused multiply-add, so that every element of one call is
// rounded the same way.
func triadFMA[T float](dst, b, c []T, s T) {
	b, c = b[:len(dst)], c[:len(dst)]
	for i := range dst {
		dst[i] = fma(s, c[i], b[i])
	}
}

func axpyFMA[T float](alpha T, x, y []T) {
	x = x[:len(y)]
	for i := range y {
		y[i] = fma(alpha, x[i], y[i])
	}
}
