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
	gemm64[levelAVX2] = gemmImpl[float64]{mr: 6, nr: 8, kc: 256, mc: 72, nc: 2048, micro: asmMicro(gemmAVX2F64_6x8)}
	gemm32[levelAVX2] = gemmImpl[float32]{mr: 6, nr: 16, kc: 256, mc: 72, nc: 2048, micro: asmMicro(gemmAVX2F32_6x16)}
	tab64[levelAVX2] = asmKernels[float64]{
		bin:   [4]func(dst, x, y *float64, n int, nt bool){addF64AVX2, subF64AVX2, mulF64AVX2, divF64AVX2},
		scal:  [2]func(dst, x *float64, s float64, n int, nt bool){addScalarF64AVX2, mulScalarF64AVX2},
		triad: triadF64AVX2, axpy: axpyF64AVX2, sum: sumF64AVX2, dot: dotF64AVX2,
		block: 16, reduceBlock: 32,
	}.table()
	tab32[levelAVX2] = asmKernels[float32]{
		bin:   [4]func(dst, x, y *float32, n int, nt bool){addF32AVX2, subF32AVX2, mulF32AVX2, divF32AVX2},
		scal:  [2]func(dst, x *float32, s float32, n int, nt bool){addScalarF32AVX2, mulScalarF32AVX2},
		triad: triadF32AVX2, axpy: axpyF32AVX2, sum: sumF32AVX2, dot: dotF32AVX2,
		block: 32, reduceBlock: 32,
	}.table()
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512DQ || !cpu.X86.HasAVX512VL {
		return
	}
	maxLevel = levelAVX512
	gemm64[levelAVX512] = gemmImpl[float64]{mr: 12, nr: 16, kc: 256, mc: 144, nc: 2048, micro: asmMicro(gemmAVX512F64_12x16)}
	gemm32[levelAVX512] = gemmImpl[float32]{mr: 12, nr: 32, kc: 256, mc: 144, nc: 2048, micro: asmMicro(gemmAVX512F32_12x32)}
	tab64[levelAVX512] = asmKernels[float64]{
		bin:   [4]func(dst, x, y *float64, n int, nt bool){addF64AVX512, subF64AVX512, mulF64AVX512, divF64AVX512},
		scal:  [2]func(dst, x *float64, s float64, n int, nt bool){addScalarF64AVX512, mulScalarF64AVX512},
		triad: triadF64AVX512, axpy: axpyF64AVX512, sum: sumF64AVX512, dot: dotF64AVX512,
		block: 32, reduceBlock: 64,
	}.table()
	tab32[levelAVX512] = asmKernels[float32]{
		bin:   [4]func(dst, x, y *float32, n int, nt bool){addF32AVX512, subF32AVX512, mulF32AVX512, divF32AVX512},
		scal:  [2]func(dst, x *float32, s float32, n int, nt bool){addScalarF32AVX512, mulScalarF32AVX512},
		triad: triadF32AVX512, axpy: axpyF32AVX512, sum: sumF32AVX512, dot: dotF32AVX512,
		block: 64, reduceBlock: 64,
	}.table()
}

// asmMicro adapts a GEMM micro-kernel in assembly to slices.
func asmMicro[T float](f func(kc int, a, b, c *T, ldc int, acc bool)) func(kc int, a, b, c []T, ldc int, acc bool) {
	return func(kc int, a, b, c []T, ldc int, acc bool) {
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

// asmKernels are one level's element-wise and reduction kernels in
// assembly, for whole blocks of elements (block for the element-wise ones,
// reduceBlock for sum and dot); table wraps them to take slices, with the
// heads and tails in Go.
type asmKernels[T float] struct {
	bin         [4]func(dst, x, y *T, n int, nt bool)
	scal        [2]func(dst, x *T, s T, n int, nt bool)
	triad       func(dst, b, c *T, s T, n int, nt bool)
	axpy        func(alpha T, x, y *T, n int)
	sum         func(x *T, n int) float64
	dot         func(x, y *T, n int) float64
	block       int
	reduceBlock int
}

func (k asmKernels[T]) table() kernels[T] {
	return kernels[T]{
		bin: asmBin(k.bin, k.block), scal: asmScal(k.scal, k.block),
		triad: asmTriad(k.triad, k.block), axpy: asmAxpy(k.axpy, k.block),
		sum: asmSum(k.sum, k.reduceBlock), dot: asmDot(k.dot, k.reduceBlock),
	}
}

func asmBin[T float](fs [4]func(dst, x, y *T, n int, nt bool), block int) func(op int, dst, x, y []T) {
	return func(op int, dst, x, y []T) {
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

func asmScal[T float](fs [2]func(dst, x *T, s T, n int, nt bool), block int) func(op int, dst, x []T, s T) {
	return func(op int, dst, x []T, s T) {
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

func asmTriad[T float](f func(dst, b, c *T, s T, n int, nt bool), block int) func(dst, b, c []T, s T) {
	return func(dst, b, c []T, s T) {
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

func asmAxpy[T float](f func(alpha T, x, y *T, n int), block int) func(alpha T, x, y []T) {
	return func(alpha T, x, y []T) {
		n := len(y)
		x = x[:n]
		nb := n &^ (block - 1)
		if nb > 0 {
			f(alpha, &x[0], &y[0], nb)
		}
		axpyFMA(alpha, x[nb:], y[nb:])
	}
}

func asmSum[T float](f func(x *T, n int) float64, block int) func(x []T) float64 {
	return func(x []T) float64 {
		nb := len(x) &^ (block - 1)
		var s float64
		if nb > 0 {
			s = f(&x[0], nb)
		}
		return s + tableAt[T](levelGeneric).sum(x[nb:]) // the Go kernels, filled after archInit
	}
}

func asmDot[T float](f func(x, y *T, n int) float64, block int) func(x, y []T) float64 {
	return func(x, y []T) float64 {
		y = y[:len(x)]
		nb := len(x) &^ (block - 1)
		var s float64
		if nb > 0 {
			s = f(&x[0], &y[0], nb)
		}
		return s + tableAt[T](levelGeneric).dot(x[nb:], y[nb:])
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
