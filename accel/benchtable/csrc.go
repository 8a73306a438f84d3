package benchtable

import _ "embed" // the C reference programs live in csrc/

// The C reference programs, compiled and run on the spot.
var (
	// streamC is a STREAM-style benchmark: one kernel over n elements with
	// OpenMP static scheduling, first touch done in parallel with the same
	// schedule. It prints the median time in seconds over reps repetitions,
	// the first dropped. REAL is double or float.
	//go:embed csrc/stream.c
	streamC string

	// naiveC is the seed's kernel in C: a parallel i-j-k triple loop with a
	// scalar sum over k (what numba's @njit(parallel=True) version did).
	//go:embed csrc/naive.c
	naiveC string

	// gemmC times OpenBLAS cblas_dgemm (d) or cblas_sgemm (s) on square
	// row-major matrices and reports the core type OpenBLAS selected.
	//go:embed csrc/gemm.c
	gemmC string
)
