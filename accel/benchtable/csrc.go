package benchtable

// streamC is a STREAM-style benchmark: one kernel over n elements with
// OpenMP static scheduling, first touch done in parallel with the same
// schedule. It prints the median time in seconds over reps repetitions,
// the first dropped. REAL is double or float.
const streamC = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#ifndef REAL
#define REAL double
#endif

static int cmp(const void *x, const void *y) {
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: %s triad|add|axpy|sum|dot n reps\n", argv[0]);
		return 2;
	}
	const char *k = argv[1];
	long n = atol(argv[2]);
	int reps = atoi(argv[3]);
	if (n < 1 || reps < 2) {
		fprintf(stderr, "bad n or reps\n");
		return 2;
	}
	size_t bytes = ((size_t)n * sizeof(REAL) + 63) / 64 * 64;
	REAL *a = aligned_alloc(64, bytes), *b = aligned_alloc(64, bytes), *c = aligned_alloc(64, bytes);
	double *t = malloc(reps * sizeof(double));
	if (!a || !b || !c || !t) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	long i;
#pragma omp parallel for schedule(static)
	for (i = 0; i < n; i++) {
		a[i] = 0;
		b[i] = 1;
		c[i] = 2;
	}
	const REAL s = 3;
	volatile double sink = 0;
	for (int r = 0; r < reps; r++) {
		double t0 = omp_get_wtime();
		if (!strcmp(k, "triad")) {
#pragma omp parallel for schedule(static)
			for (i = 0; i < n; i++) a[i] = b[i] + s * c[i];
		} else if (!strcmp(k, "add")) {
#pragma omp parallel for schedule(static)
			for (i = 0; i < n; i++) a[i] = b[i] + c[i];
		} else if (!strcmp(k, "axpy")) {
#pragma omp parallel for schedule(static)
			for (i = 0; i < n; i++) c[i] += (REAL)1e-9 * b[i];
		} else if (!strcmp(k, "sum")) {
			REAL acc = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : acc)
			for (i = 0; i < n; i++) acc += b[i];
			sink += acc;
		} else if (!strcmp(k, "dot")) {
			REAL acc = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : acc)
			for (i = 0; i < n; i++) acc += b[i] * c[i];
			sink += acc;
		} else {
			fprintf(stderr, "unknown kernel %s\n", k);
			return 2;
		}
		t[r] = omp_get_wtime() - t0;
	}
	qsort(t + 1, reps - 1, sizeof(double), cmp);
	printf("median %.9f\n", t[1 + (reps - 1) / 2]);
	printf("threads %d\n", omp_get_max_threads());
	return sink == 12345.678 ? 3 : 0;
}
`

// naiveC is the seed's kernel in C: a parallel i-j-k triple loop with a
// scalar sum over k (what numba's @njit(parallel=True) version did).
const naiveC = `#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

static int cmp(const void *x, const void *y) {
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s n reps\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[1]), reps = atoi(argv[2]);
	if (n < 1 || reps < 2) {
		fprintf(stderr, "bad n or reps\n");
		return 2;
	}
	double *A = malloc(sizeof(double) * n * n), *B = malloc(sizeof(double) * n * n), *C = malloc(sizeof(double) * n * n);
	double *t = malloc(reps * sizeof(double));
	for (long i = 0; i < (long)n * n; i++) {
		A[i] = (double)(i % 7) - 3;
		B[i] = (double)(i % 5) - 2;
	}
	for (int r = 0; r < reps; r++) {
		double t0 = omp_get_wtime();
		int i;
#pragma omp parallel for schedule(static)
		for (i = 0; i < n; i++)
			for (int j = 0; j < n; j++) {
				double s = 0;
				for (int k = 0; k < n; k++) s += A[(long)i * n + k] * B[(long)k * n + j];
				C[(long)i * n + j] = s;
			}
		t[r] = omp_get_wtime() - t0;
	}
	qsort(t + 1, reps - 1, sizeof(double), cmp);
	printf("median %.9f\n", t[1 + (reps - 1) / 2]);
	printf("threads %d\n", omp_get_max_threads());
	return C[n + 1] == 12345.678 ? 3 : 0;
}
`

// gemmC times OpenBLAS cblas_dgemm (d) or cblas_sgemm (s) on square
// row-major matrices and reports the core type OpenBLAS selected.
const gemmC = `#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>

static int cmp(const void *x, const void *y) {
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: %s d|s n reps threads\n", argv[0]);
		return 2;
	}
	char dt = argv[1][0];
	if (dt != 'd' && dt != 's') {
		fprintf(stderr, "dtype must be d or s\n");
		return 2;
	}
	int n = atoi(argv[2]), reps = atoi(argv[3]), threads = atoi(argv[4]);
	if (n < 1 || reps < 2 || threads < 1) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	openblas_set_num_threads(threads);
	double *t = malloc(reps * sizeof(double));
	long nn = (long)n * n;
	double *A = malloc(sizeof(double) * nn), *B = malloc(sizeof(double) * nn), *C = malloc(sizeof(double) * nn);
	float *As = malloc(sizeof(float) * nn), *Bs = malloc(sizeof(float) * nn), *Cs = malloc(sizeof(float) * nn);
	for (long i = 0; i < nn; i++) {
		A[i] = (double)(i % 7) - 3;
		B[i] = (double)(i % 5) - 2;
		As[i] = (float)A[i];
		Bs[i] = (float)B[i];
	}
	for (int r = 0; r < reps; r++) {
		double t0 = now();
		if (dt == 'd')
			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n, 0.0, C, n);
		else
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, As, n, Bs, n, 0.0f, Cs, n);
		t[r] = now() - t0;
	}
	qsort(t + 1, reps - 1, sizeof(double), cmp);
	printf("median %.9f\n", t[1 + (reps - 1) / 2]);
	printf("core %s\n", openblas_get_corename());
	printf("threads %d\n", openblas_get_num_threads());
	return 0;
}
`
