package kern

// reduceGrain is the fixed chunk size of parallel reductions. It does not
// depend on the number of workers, so results are reproducible: the
// per-chunk partial sums are always added in the same order.
const reduceGrain = 1 << 16

// SumF64 returns the sum of x, accumulated in several vector (or scalar)
// partial sums and then in fixed-size chunks combined in order.
func SumF64(x []float64) float64 { return sum(x) }

// DotF64 returns the dot product of the first min(len(x), len(y)) elements
// of x and y.
func DotF64(x, y []float64) float64 { return dot(x, y) }

// SumF32 returns the sum of x. Elements are accumulated in float64 and the
// result is rounded to float32 once, so the error stays near one float32
// rounding even for 2^24 and more elements.
func SumF32(x []float32) float32 { return float32(sum(x)) }

// DotF32 returns the dot product of the first min(len(x), len(y)) elements
// of x and y, with products and sums formed in float64 and rounded to
// float32 once.
func DotF32(x, y []float32) float32 { return float32(dot(x, y)) }

// sum adds x up in float64, in parts of reduceGrain across the workers
// when it is long.
func sum[T float](x []T) float64 {
	f := table[T]().sum
	n := len(x)
	if n <= reduceGrain {
		return f(x)
	}
	parts := make([]float64, (n-1)/reduceGrain+1)
	parallelFor(numWorkers(), n, reduceGrain, func(_, lo, hi int) {
		parts[lo/reduceGrain] = f(x[lo:hi])
	})
	return sumGo64(parts)
}

// dot is sum for the products of x and y.
func dot[T float](x, y []T) float64 {
	n := min(len(x), len(y))
	x, y = x[:n], y[:n]
	f := table[T]().dot
	if n <= reduceGrain {
		return f(x, y)
	}
	parts := make([]float64, (n-1)/reduceGrain+1)
	parallelFor(numWorkers(), n, reduceGrain, func(_, lo, hi int) {
		parts[lo/reduceGrain] = f(x[lo:hi], y[lo:hi])
	})
	return sumGo64(parts)
}

func sumGo64(x []float64) float64 {
	var s0, s1, s2, s3, s4, s5, s6, s7 float64
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := x[i : i+8 : i+8]
		s0 += v[0]
		s1 += v[1]
		s2 += v[2]
		s3 += v[3]
		s4 += v[4]
		s5 += v[5]
		s6 += v[6]
		s7 += v[7]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

func sumGo32(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// dotGo is the Go dot product: four float64 accumulators (float32
// elements are widened first, which makes their products exact).
func dotGo[T float](x, y []T) float64 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a := x[i : i+4 : i+4]
		b := y[i : i+4 : i+4]
		s0 += float64(a[0]) * float64(b[0])
		s1 += float64(a[1]) * float64(b[1])
		s2 += float64(a[2]) * float64(b[2])
		s3 += float64(a[3]) * float64(b[3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i]) * float64(y[i])
	}
	return (s0 + s1) + (s2 + s3)
}
