#include <stdio.h>
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
